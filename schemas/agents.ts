import { Type } from '@sinclair/typebox';
import { Amount, AmountOut, Nullable, SymbolName, Timestamp, Uuid } from './common.js';
import { LIMITS as L } from './limits.js';

const Name = Type.String({ minLength: 1, maxLength: L.display_name_chars_max });
const Color = Type.String({ pattern: '^#[0-9a-fA-F]{6}$' });
const Tags = Type.Array(Type.String({ maxLength: L.tag_chars_max }), { maxItems: L.tags_max });
const RiskValue = Type.Union([Type.Number(), Type.String({ maxLength: L.risk_value_chars_max })]);
/** Partial risk limits; bounds are checked by engine/core/risk-profile. */
export const RiskInput = Type.Record(Type.String(), RiskValue, { description: 'Risk limits to set (see GET risk-profile)' });
export const AgentType = Type.Union([Type.Literal('trading'), Type.Literal('analysis'), Type.Literal('risk'), Type.Literal('composite')]);
export const Instruments = Type.Array(SymbolName, { maxItems: L.instruments_max });
export const Actions = Type.Array(
  Type.Union([
    Type.Literal('market'), Type.Literal('trade'), Type.Literal('account'), Type.Literal('analytics'),
    Type.Literal('backtest'), Type.Literal('battle'), Type.Literal('agent'),
  ]),
  { maxItems: L.actions_max },
);

export const CreateAgentBody = Type.Object({
  display_name: Type.Optional(Name),
  name: Type.Optional(Name),
  starting_balance: Type.Optional(Amount),
  description: Type.Optional(Nullable(Type.String({ maxLength: L.description_chars_max }))),
  llm_model: Type.Optional(Nullable(Type.String({ maxLength: L.label_chars_max }))),
  framework: Type.Optional(Nullable(Type.String({ maxLength: L.label_chars_max }))),
  strategy_tags: Type.Optional(Tags),
  risk_profile: Type.Optional(RiskInput),
  risk_config: Type.Optional(RiskInput),
  color: Type.Optional(Nullable(Color)),
  agent_type: Type.Optional(AgentType),
  authorized_instruments: Type.Optional(Nullable(Instruments)),
  authorized_actions: Type.Optional(Nullable(Actions)),
});

export const UpdateAgentBody = Type.Object({
  display_name: Type.Optional(Name),
  name: Type.Optional(Name),
  description: Type.Optional(Nullable(Type.String({ maxLength: L.description_chars_max }))),
  llm_model: Type.Optional(Nullable(Type.String({ maxLength: L.label_chars_max }))),
  framework: Type.Optional(Nullable(Type.String({ maxLength: L.label_chars_max }))),
  strategy_tags: Type.Optional(Tags),
  risk_profile: Type.Optional(RiskInput),
  risk_config: Type.Optional(RiskInput),
  color: Type.Optional(Nullable(Color)),
  avatar_url: Type.Optional(Nullable(Type.String({ maxLength: L.avatar_url_chars_max }))),
  agent_type: Type.Optional(AgentType),
  authorized_instruments: Type.Optional(Nullable(Instruments)),
  authorized_actions: Type.Optional(Nullable(Actions)),
});

export const ListAgentsQuery = Type.Object({
  include_archived: Type.Optional(Type.Boolean()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.agents_page_max })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: L.agents_offset_max })),
});

export const CloneQuery = Type.Object({ new_name: Type.Optional(Name) });
export const ResetAgentBody = Type.Object({ starting_balance: Type.Optional(Amount) });

export const RiskProfileBody = Type.Object({
  max_position_size_pct: Type.Integer({ minimum: 1, maximum: L.risk_pct_max }),
  daily_loss_limit_pct: Type.Integer({ minimum: 1, maximum: L.risk_pct_max }),
  max_open_orders: Type.Integer({ minimum: 1, maximum: L.risk_open_orders_max }),
});

export const RiskProfileOut = Type.Object({
  max_position_size_pct: Type.Number(),
  daily_loss_limit_pct: Type.Number(),
  max_open_orders: Type.Integer(),
  max_order_size_pct: Type.Number(),
  min_order_size_usd: Type.Number(),
  order_rate_limit: Type.Integer(),
});

export const AgentResponse = Type.Object({
  id: Uuid,
  agent_id: Uuid,
  account_id: Uuid,
  display_name: Type.String(),
  name: Type.String(),
  description: Nullable(Type.String()),
  api_key_preview: Type.String(),
  starting_balance: AmountOut,
  llm_model: Nullable(Type.String()),
  framework: Nullable(Type.String()),
  strategy_tags: Type.Array(Type.String()),
  risk_profile: RiskProfileOut,
  avatar_url: Nullable(Type.String()),
  color: Nullable(Type.String()),
  status: Type.String(),
  agent_type: Type.String(),
  mode: Type.String(),
  authorized_instruments: Nullable(Type.Array(Type.String())),
  authorized_actions: Nullable(Type.Array(Type.String())),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const AgentCredentials = Type.Object({
  agent_id: Uuid,
  id: Uuid,
  api_key: Type.String(),
  display_name: Type.String(),
  name: Type.String(),
  starting_balance: AmountOut,
  created_at: Timestamp,
  message: Type.String(),
});

export const OnboardBody = Type.Object({
  owner_id: Type.String({ minLength: 1, maxLength: L.credential_chars_max }),
  agent_name: Name,
  agent_type: AgentType,
  description: Type.Optional(Type.String({ maxLength: L.description_chars_max })),
  authorized_instruments: Type.Optional(Instruments),
  authorized_actions: Type.Optional(Actions),
  max_position_size_pct: Type.Optional(RiskValue),
  max_daily_loss_pct: Type.Optional(RiskValue),
  starting_balance: Type.Optional(Amount),
});

export const ModeBody = Type.Object({
  mode: Type.Union([Type.Literal('sandbox'), Type.Literal('live'), Type.Literal('suspended'), Type.Literal('terminated')]),
  agent_id: Type.Optional(Uuid),
});
