import { Type } from '@sinclair/typebox';
import { Amount, Nullable, Offset, SymbolName as Symbol, Uuid } from './common.js';
import { LIMITS as L } from './limits.js';

/** Requests of /api/v1/backtest; the bounds they are checked against are in LIMITS. */

/** How backtests (and historical battles) run: engine settings, not request bounds. */
export const BACKTEST_TUNING = {
  /** Batches of at least this many candle-steps (steps × symbols), and every `fast` batch, run in a worker. */
  worker_cells_min: 100_000,
  /** Tasks waiting for a worker before new ones are refused (piscina maxQueue). */
  worker_queue_max: 256,
  /** Candles of history loaded before start_time (for indicators and the 24 h volume); at least a day. */
  warmup_slots_min: 100,
} as const;

/** Seconds per candle, and the label each is also accepted as (the battle docs send "1m"). */
export const CANDLE_INTERVALS: Record<string, number> = { '1m': 60, '5m': 300, '15m': 900, '1h': 3600, '4h': 14_400, '1d': 86_400 };

const Interval = Type.Union([
  Type.Integer({ description: 'seconds: 60, 300, 900, 3600, 14400 or 86400' }),
  Type.String({ pattern: '^(\\d+|1m|5m|15m|1h|4h|1d)$', description: 'or a label: 1m, 5m, 15m, 1h, 4h, 1d' }),
]);

export const CreateBody = Type.Object({
  start_time: Type.String({ minLength: L.time_chars_min, maxLength: L.time_chars_max, description: 'ISO-8601; aligned down to the candle interval' }),
  end_time: Type.String({ minLength: L.time_chars_min, maxLength: L.time_chars_max, description: 'ISO-8601, after start_time' }),
  starting_balance: Type.Optional(Amount),
  candle_interval: Type.Optional(Interval),
  pairs: Type.Optional(Nullable(Type.Array(Symbol, { maxItems: L.pairs_max }))),
  strategy_label: Type.Optional(Type.String({ maxLength: L.label_chars_max })),
  agent_id: Type.Optional(Nullable(Uuid)),
  exchange: Type.Optional(Type.String({ maxLength: L.exchange_chars_max, pattern: '^[a-z][a-z0-9_]*$' })),
  fee_rate: Type.Optional(Amount),
});

export const SessionParams = Type.Object({ session_id: Uuid });
export const SessionSymbolParams = Type.Object({ session_id: Uuid, symbol: Type.String({ minLength: 1, maxLength: L.path_symbol_chars_max }) });
export const SessionOrderParams = Type.Object({ session_id: Uuid, order_id: Uuid });

export const BatchBody = Type.Object({ steps: Type.Integer({ minimum: 1, maximum: L.batch_steps_max }) });
export const FastBody = Type.Object({
  steps: Type.Integer({ minimum: 1, maximum: L.fast_steps_max }),
  include_intermediate_trades: Type.Optional(Type.Boolean()),
});

export const CandlesQuery = Type.Object({
  interval: Type.Optional(Interval),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.backtest_candles_page_max })),
});
export const EquityQuery = Type.Object({ interval: Type.Optional(Type.Integer({ minimum: 1, description: 'every Nth snapshot' })) });
export const PageQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.backtest_trades_page_max })),
  offset: Type.Optional(Offset),
});

export const STATUSES = ['created', 'running', 'completed', 'cancelled', 'failed'] as const;
export const SORT_KEYS = ['created_at', 'roi_pct', 'sharpe_ratio', 'total_trades', 'total_pnl', 'max_drawdown_pct', 'win_rate', 'strategy_label', 'status'] as const;
export const BEST_METRICS = ['roi_pct', 'sharpe_ratio', 'sortino_ratio', 'max_drawdown_pct', 'win_rate', 'profit_factor', 'total_trades', 'total_pnl'] as const;

export const ListQuery = Type.Object({
  strategy_label: Type.Optional(Type.String({ maxLength: L.label_chars_max })),
  status: Type.Optional(Type.Union(STATUSES.map((s) => Type.Literal(s)))),
  agent_id: Type.Optional(Uuid),
  sort_by: Type.Optional(Type.Union(SORT_KEYS.map((s) => Type.Literal(s)))),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.backtests_page_max })),
  offset: Type.Optional(Offset),
});
export const CompareQuery = Type.Object({ sessions: Type.String({ minLength: 1, maxLength: L.query_list_chars_max, description: 'comma-separated session ids (at least 2)' }) });
export const BestQuery = Type.Object({
  metric: Type.Optional(Type.String({ description: BEST_METRICS.join(', ') })),
  strategy_label: Type.Optional(Type.String({ maxLength: L.label_chars_max })),
});
