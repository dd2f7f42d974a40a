import { Type } from '@sinclair/typebox';
import { Amount, Nullable, Uuid } from './common.js';
import { PlaceOrderBody } from './trade.js';

/** Requests of /api/v1/battles and the limits they are checked against. */
export const BATTLE_LIMITS = {
  name_chars_max: 200,
  participants_max: 50,
  starting_balance_min: '1',
  starting_balance_max: '10000000',
  /** One year. */
  duration_minutes_max: 525_600,
  /** Seconds per candle a historical battle may use. */
  candle_intervals: [60, 300, 900, 3600, 14_400, 86_400] as readonly number[],
  batch_steps_max: 10_000,
  /** symbols × candle slots one battle may hold in memory (shared by all its participants). */
  series_cells_max: 4_000_000,
  list_page_max: 200,
  list_page_default: 50,
  replay_page_max: 100_000,
  replay_page_default: 10_000,
  replay_agents_max: 50,
} as const;

const Symbol = Type.String({ minLength: 2, maxLength: 20, pattern: '^[A-Za-z0-9]+$' });
/** Checked by the engine (so a bad value is reported under its own field name). */
const Interval = Type.Union([
  Type.Integer({ description: 'seconds: 60, 300, 900, 3600, 14400 or 86400' }),
  Type.String({ maxLength: 8, description: 'or a label: 1m, 5m, 15m, 1h, 4h, 1d' }),
]);
const Metric = Type.Union(['roi_pct', 'total_pnl', 'sharpe_ratio', 'win_rate', 'profit_factor'].map((m) => Type.Literal(m)));
const Mode = Type.Union([Type.Literal('live'), Type.Literal('historical')]);

export const BacktestConfigBody = Type.Object({
  start_time: Type.Optional(Type.String({ minLength: 10, maxLength: 40, description: 'ISO-8601' })),
  end_time: Type.Optional(Type.String({ minLength: 10, maxLength: 40, description: 'ISO-8601, after start_time' })),
  candle_interval: Type.Optional(Interval),
  pairs: Type.Optional(Nullable(Type.Array(Symbol, { maxItems: 100 }))),
});

export const CreateBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: BATTLE_LIMITS.name_chars_max }),
  battle_mode: Type.Optional(Mode),
  preset: Type.Optional(Nullable(Type.String({ maxLength: 50 }))),
  starting_balance: Type.Optional(Amount),
  duration_minutes: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: BATTLE_LIMITS.duration_minutes_max }))),
  ranking_metric: Type.Optional(Metric),
  backtest_config: Type.Optional(Nullable(BacktestConfigBody)),
  config: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

export const UpdateBody = Type.Partial(CreateBody);

export const BattleParams = Type.Object({ id: Uuid });
export const BattleAgentParams = Type.Object({ id: Uuid, agent_id: Uuid });
export const ParticipantBody = Type.Object({ agent_id: Uuid });

export const STATUSES = ['draft', 'pending', 'active', 'paused', 'completed', 'cancelled'] as const;
export const ListQuery = Type.Object({
  status: Type.Optional(Type.Union(STATUSES.map((s) => Type.Literal(s)))),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: BATTLE_LIMITS.list_page_max })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000 })),
});

export const BatchBody = Type.Object({ steps: Type.Optional(Type.Integer({ minimum: 1, maximum: BATTLE_LIMITS.batch_steps_max })) });

/** The live order body plus the participant it is for. */
export const BattleOrderBody = Type.Composite([PlaceOrderBody, Type.Object({ agent_id: Uuid })]);

export const ReplayQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: BATTLE_LIMITS.replay_page_max })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000 })),
});

export const ReplayBody = Type.Object({
  override_config: Type.Optional(Nullable(Type.Record(Type.String(), Type.Unknown()))),
  agent_ids: Type.Optional(Nullable(Type.Array(Uuid, { maxItems: BATTLE_LIMITS.replay_agents_max }))),
});
