import type { RiskProfile } from '../core/risk-profile.js';

export type AccountStatus = 'active' | 'suspended' | 'archived';
export type AgentStatus = 'active' | 'paused' | 'archived';
export type AgentType = 'trading' | 'analysis' | 'risk' | 'composite';
export type AgentMode = 'sandbox' | 'suspended' | 'terminated';

export const AGENT_TYPES: readonly AgentType[] = ['trading', 'analysis', 'risk', 'composite'];
/** Route groups an agent key can be limited to through `authorized_actions`. */
export const ACTION_GROUPS = ['market', 'trade', 'account', 'analytics', 'backtest', 'battle', 'agent'] as const;
export type ActionGroup = (typeof ACTION_GROUPS)[number];

export interface Account {
  id: string;
  display_name: string;
  email: string | null;
  owner_ref: string | null;
  status: AccountStatus;
  starting_balance: string;
  risk_profile: Partial<RiskProfile>;
  api_key_preview: string;
  created_at: Date;
  updated_at: Date;
}

export interface Agent {
  id: string;
  account_id: string;
  display_name: string;
  description: string | null;
  api_key_preview: string;
  starting_balance: string;
  llm_model: string | null;
  framework: string | null;
  strategy_tags: string[];
  risk_profile: Partial<RiskProfile>;
  color: string | null;
  avatar_url: string | null;
  status: AgentStatus;
  agent_type: AgentType;
  mode: AgentMode;
  authorized_instruments: string[] | null;
  authorized_actions: ActionGroup[] | null;
  created_at: Date;
  updated_at: Date;
}

/** Who is calling: always an account, and an agent when the key (or X-Agent-Id) names one. */
export interface Principal {
  account: Account;
  agent: Agent | null;
  via: 'agent_key' | 'account_key' | 'jwt';
}

export interface TradingSession {
  id: string;
  agent_id: string;
  starting_balance: string;
  started_at: Date;
}

export interface NewAgentInput {
  display_name: string;
  starting_balance?: string;
  description?: string | null;
  llm_model?: string | null;
  framework?: string | null;
  strategy_tags?: string[];
  risk_profile?: Partial<RiskProfile>;
  color?: string | null;
  agent_type?: AgentType;
  authorized_instruments?: string[] | null;
  authorized_actions?: ActionGroup[] | null;
}

export type AgentPatch = Partial<
  Pick<Agent, 'display_name' | 'description' | 'llm_model' | 'framework' | 'strategy_tags' | 'color' | 'avatar_url' | 'agent_type' | 'authorized_instruments' | 'authorized_actions'>
> & { risk_profile?: Partial<RiskProfile> };
