import { Type } from '@sinclair/typebox';
import { Amount, Nullable, Uuid } from './common.js';

/** Requests of /api/v1/backtest and the limits they are checked against. */

export const BACKTEST_LIMITS = {
  batch_steps_max: 10_000,
  fast_steps_max: 100_000,
  /** symbols × candle slots one session may hold in memory (5 float64 columns each: 40 bytes per cell). */
  series_cells_max: 4_000_000,
  /** Batches of at least this many candle-steps (steps × symbols), and every `fast` batch, run in a worker. */
  worker_cells_min: 100_000,
  /** Tasks waiting for a worker before new ones are refused (piscina maxQueue). */
  worker_queue_max: 256,
  list_page_max: 200,
  list_page_default: 50,
  trades_page_max: 10_000,
  trades_page_default: 1_000,
  candles_page_max: 1_000,
  candles_page_default: 100,
  compare_sessions_max: 50,
  starting_balance_min: '1',
  starting_balance_max: '10000000',
  fee_rate_max: '0.1',
  /** Candles of history loaded before start_time (for indicators and the 24 h volume); at least a day. */
  warmup_slots_min: 100,
} as const;

/** Seconds per candle, and the label each is also accepted as (the battle docs send "1m"). */
export const CANDLE_INTERVALS: Record<string, number> = { '1m': 60, '5m': 300, '15m': 900, '1h': 3600, '4h': 14_400, '1d': 86_400 };

const Symbol = Type.String({ minLength: 2, maxLength: 20, pattern: '^[A-Za-z0-9]+$' });
const Interval = Type.Union([
  Type.Integer({ description: 'seconds: 60, 300, 900, 3600, 14400 or 86400' }),
  Type.String({ pattern: '^(\\d+|1m|5m|15m|1h|4h|1d)$', description: 'or a label: 1m, 5m, 15m, 1h, 4h, 1d' }),
]);

export const CreateBody = Type.Object({
  start_time: Type.String({ minLength: 10, maxLength: 40, description: 'ISO-8601; aligned down to the candle interval' }),
  end_time: Type.String({ minLength: 10, maxLength: 40, description: 'ISO-8601, after start_time' }),
  starting_balance: Type.Optional(Amount),
  candle_interval: Type.Optional(Interval),
  pairs: Type.Optional(Nullable(Type.Array(Symbol, { maxItems: 100 }))),
  strategy_label: Type.Optional(Type.String({ maxLength: 100 })),
  agent_id: Type.Optional(Nullable(Uuid)),
  exchange: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,19}$' })),
  fee_rate: Type.Optional(Amount),
});

export const SessionParams = Type.Object({ session_id: Uuid });
export const SessionSymbolParams = Type.Object({ session_id: Uuid, symbol: Type.String({ minLength: 1, maxLength: 30 }) });
export const SessionOrderParams = Type.Object({ session_id: Uuid, order_id: Uuid });

export const BatchBody = Type.Object({ steps: Type.Integer({ minimum: 1, maximum: BACKTEST_LIMITS.batch_steps_max }) });
export const FastBody = Type.Object({
  steps: Type.Integer({ minimum: 1, maximum: BACKTEST_LIMITS.fast_steps_max }),
  include_intermediate_trades: Type.Optional(Type.Boolean()),
});

export const CandlesQuery = Type.Object({
  interval: Type.Optional(Interval),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: BACKTEST_LIMITS.candles_page_max })),
});
export const EquityQuery = Type.Object({ interval: Type.Optional(Type.Integer({ minimum: 1, description: 'every Nth snapshot' })) });
export const PageQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: BACKTEST_LIMITS.trades_page_max })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000 })),
});

export const STATUSES = ['created', 'running', 'completed', 'cancelled', 'failed'] as const;
export const SORT_KEYS = ['created_at', 'roi_pct', 'sharpe_ratio', 'total_trades', 'total_pnl', 'max_drawdown_pct', 'win_rate', 'strategy_label', 'status'] as const;
export const BEST_METRICS = ['roi_pct', 'sharpe_ratio', 'sortino_ratio', 'max_drawdown_pct', 'win_rate', 'profit_factor', 'total_trades', 'total_pnl'] as const;

export const ListQuery = Type.Object({
  strategy_label: Type.Optional(Type.String({ maxLength: 100 })),
  status: Type.Optional(Type.Union(STATUSES.map((s) => Type.Literal(s)))),
  agent_id: Type.Optional(Uuid),
  sort_by: Type.Optional(Type.Union(SORT_KEYS.map((s) => Type.Literal(s)))),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: BACKTEST_LIMITS.list_page_max })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000 })),
});
export const CompareQuery = Type.Object({ sessions: Type.String({ minLength: 1, maxLength: 4000, description: 'comma-separated session ids (at least 2)' }) });
export const BestQuery = Type.Object({
  metric: Type.Optional(Type.String({ description: BEST_METRICS.join(', ') })),
  strategy_label: Type.Optional(Type.String({ maxLength: 100 })),
});
