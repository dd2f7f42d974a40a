import { Type } from '@sinclair/typebox';
import { Amount, Nullable, Offset, SymbolName as Symbol, Uuid } from './common.js';
import { LIMITS as L } from './limits.js';
import { PlaceOrderBody } from './trade.js';

/** Requests of /api/v1/battles; the bounds they are checked against are in LIMITS. */

/** Checked by the engine (so a bad value is reported under its own field name). */
const Interval = Type.Union([
  Type.Integer({ description: 'seconds: 60, 300, 900, 3600, 14400 or 86400' }),
  Type.String({ maxLength: L.interval_chars_max, description: 'or a label: 1m, 5m, 15m, 1h, 4h, 1d' }),
]);
const Metric = Type.Union(['roi_pct', 'total_pnl', 'sharpe_ratio', 'win_rate', 'profit_factor'].map((m) => Type.Literal(m)));
const Mode = Type.Union([Type.Literal('live'), Type.Literal('historical')]);

export const BacktestConfigBody = Type.Object({
  start_time: Type.Optional(Type.String({ minLength: L.time_chars_min, maxLength: L.time_chars_max, description: 'ISO-8601' })),
  end_time: Type.Optional(Type.String({ minLength: L.time_chars_min, maxLength: L.time_chars_max, description: 'ISO-8601, after start_time' })),
  candle_interval: Type.Optional(Interval),
  pairs: Type.Optional(Nullable(Type.Array(Symbol, { maxItems: L.pairs_max }))),
});

export const CreateBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: L.battle_name_chars_max }),
  battle_mode: Type.Optional(Mode),
  preset: Type.Optional(Nullable(Type.String({ maxLength: L.preset_chars_max }))),
  starting_balance: Type.Optional(Amount),
  duration_minutes: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: L.duration_minutes_max }))),
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
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.battles_page_max })),
  offset: Type.Optional(Offset),
});

export const BatchBody = Type.Object({ steps: Type.Optional(Type.Integer({ minimum: 1, maximum: L.batch_steps_max })) });

/** The live order body plus the participant it is for. */
export const BattleOrderBody = Type.Composite([PlaceOrderBody, Type.Object({ agent_id: Uuid })]);

export const ReplayQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.battle_replay_page_max })),
  offset: Type.Optional(Offset),
});

export const ReplayBody = Type.Object({
  override_config: Type.Optional(Nullable(Type.Record(Type.String(), Type.Unknown()))),
  agent_ids: Type.Optional(Nullable(Type.Array(Uuid, { maxItems: L.replay_agents_max }))),
});
