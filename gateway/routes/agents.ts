import { Type } from '@sinclair/typebox';
import { ApiError } from '../../schemas/errors.js';
import { AgentIdParams, Uuid } from '../../schemas/common.js';
import * as S from '../../schemas/agents.js';
import { LIMITS } from '../../schemas/limits.js';
import { fmt, money } from '../../engine/core/money.js';
import { validateRiskProfile, type RiskProfile } from '../../engine/core/risk-profile.js';
import type { Account, Agent, NewAgentInput } from '../../engine/identity/types.js';
import type { IdentityService } from '../../engine/identity/service.js';
import { Reply, route } from '../router.js';
import { caller, iso, P, positiveAmount, riskInput } from './helpers.js';
import { skillMarkdown } from '../docs.js';

const A = `${P}/agents`;

export function agentOut(agent: Agent, account: Account, identity: IdentityService) {
  return {
    id: agent.id, agent_id: agent.id, account_id: agent.account_id, display_name: agent.display_name, name: agent.display_name,
    description: agent.description, api_key_preview: agent.api_key_preview, starting_balance: fmt(agent.starting_balance),
    llm_model: agent.llm_model, framework: agent.framework, strategy_tags: agent.strategy_tags,
    risk_profile: identity.effectiveRisk(account, agent), avatar_url: agent.avatar_url, color: agent.color, status: agent.status,
    agent_type: agent.agent_type, mode: agent.mode, authorized_instruments: agent.authorized_instruments,
    authorized_actions: agent.authorized_actions, created_at: iso(agent.created_at), updated_at: iso(agent.updated_at),
  };
}

const credentials = (agent: Agent, apiKey: string) => ({
  agent_id: agent.id, id: agent.id, api_key: apiKey, display_name: agent.display_name, name: agent.display_name,
  starting_balance: fmt(agent.starting_balance), created_at: iso(agent.created_at),
  message: 'Save your API key now. It will not be shown again (GET /agents/{id}/api-key retrieves it with a JWT).',
});

/** Trims a name; one that is blank after trimming is refused (the schema's minLength counts spaces). */
function agentName(value: string, field: string): string {
  const name = value.trim();
  if (!name) throw new ApiError('VALIDATION_ERROR', `${field} must not be blank.`, { field });
  return name;
}

/** The onboarding body's risk fields, validated under the names the client sent. */
function onboardRisk(body: typeof S.OnboardBody.static): Partial<RiskProfile> {
  const fields = [['max_position_size_pct', 'max_position_size_pct'], ['max_daily_loss_pct', 'daily_loss_limit_pct']] as const;
  const out: Partial<RiskProfile> = {};
  for (const [from, to] of fields) {
    if (body[from] === undefined) continue;
    const r = validateRiskProfile({ [to]: body[from] });
    if (!r.ok) throw new ApiError('VALIDATION_ERROR', `${from} ${r.reason}.`, { field: from });
    Object.assign(out, r.value);
  }
  return out;
}

/** Accepts every spelling the documents use: display_name|name, risk_profile|risk_config. */
function agentInput(body: typeof S.CreateAgentBody.static | typeof S.UpdateAgentBody.static): Partial<NewAgentInput> & { avatar_url?: string | null } {
  const out: Record<string, unknown> = {};
  const name = body.display_name ?? body.name;
  if (name !== undefined) out.display_name = agentName(name, body.display_name !== undefined ? 'display_name' : 'name');
  const risk = body.risk_profile ?? body.risk_config;
  if (risk !== undefined) out.risk_profile = riskInput(risk, body.risk_profile ? 'risk_profile' : 'risk_config');
  for (const k of ['description', 'llm_model', 'framework', 'strategy_tags', 'color', 'agent_type', 'avatar_url'] as const) {
    if (k in body && (body as Record<string, unknown>)[k] !== undefined) out[k] = (body as Record<string, unknown>)[k];
  }
  if (body.authorized_instruments !== undefined) out.authorized_instruments = body.authorized_instruments?.map((s) => s.toUpperCase()) ?? null;
  if (body.authorized_actions !== undefined) out.authorized_actions = body.authorized_actions;
  return out;
}

const withSummary = async (agents: Agent[], account: Account, identity: IdentityService) => {
  const sums = await identity.summaries(agents.map((a) => a.id));
  return agents.map((a) => {
    const s = sums.get(a.id) ?? { cash: '0', trades: 0 };
    const equity = money(s.cash);
    const pnl = equity.minus(a.starting_balance);
    return {
      ...agentOut(a, account, identity), equity: fmt(equity), total_pnl: fmt(pnl),
      roi_pct: fmt(pnl.div(a.starting_balance).times(100)), trade_count: s.trades,
    };
  });
};

export const agentRoutes = [
  route({
    method: 'POST', path: A, auth: 'jwt', group: 'agent', tag: 'agents', status: 201,
    summary: 'Create an agent with its own API key (shown once), wallet and risk profile.',
    body: S.CreateAgentBody, response: S.AgentCredentials,
    async handler({ body, principal, engine }) {
      const p = caller(principal);
      const input = agentInput(body);
      if (!input.display_name) throw new ApiError('VALIDATION_ERROR', 'display_name (or name) is required.', { field: 'display_name' });
      if (body.starting_balance !== undefined) input.starting_balance = positiveAmount(body.starting_balance, 'starting_balance');
      const { agent, agentKey } = await engine.identity.createAgent(p.account, input as NewAgentInput);
      return credentials(agent, agentKey);
    },
  }),
  route({
    method: 'GET', path: A, auth: 'jwt', group: 'agent', tag: 'agents',
    summary: 'List the account\'s agents; `total` counts all matching agents, not just this page.',
    query: S.ListAgentsQuery,
    async handler({ query, principal, engine }) {
      const p = caller(principal);
      const r = await engine.identity.listAgents(p.account.id, {
        includeArchived: query.include_archived ?? false, limit: query.limit ?? LIMITS.agents_page_default, offset: query.offset ?? 0,
      });
      return { agents: r.agents.map((a) => agentOut(a, p.account, engine.identity)), total: r.total, limit: query.limit ?? LIMITS.agents_page_default, offset: query.offset ?? 0 };
    },
  }),
  route({
    method: 'GET', path: `${A}/overview`, auth: 'jwt', group: 'agent', tag: 'agents',
    summary: 'Active agents with equity, PnL, ROI and trade count.',
    async handler({ principal, engine }) {
      const p = caller(principal);
      const r = await engine.identity.listAgents(p.account.id, { includeArchived: false, limit: LIMITS.agents_page_max, offset: 0 });
      return { agents: await withSummary(r.agents, p.account, engine.identity), total: r.total };
    },
  }),
  route({
    method: 'GET', path: `${A}/list`, auth: 'any', group: 'agent', tag: 'agents',
    summary: 'Agents of the caller\'s owner (works with an agent key).',
    async handler({ principal, engine }) {
      const p = caller(principal);
      const r = await engine.identity.listAgents(p.account.id, { includeArchived: false, limit: LIMITS.agents_page_max, offset: 0 });
      return {
        owner_id: p.account.owner_ref ?? p.account.id,
        agents: r.agents.map((a) => ({ ...agentOut(a, p.account, engine.identity), agent_name: a.display_name })),
        total: r.total,
      };
    },
  }),
  route({
    method: 'POST', path: `${A}/register`, auth: 'optional', group: 'agent', tag: 'agents', status: 201,
    summary: 'Onboarding without an account: a new owner_id gets a new account; an existing owner_id needs that owner\'s credentials.',
    body: S.OnboardBody,
    async handler({ body, principal, engine }) {
      const risk = onboardRisk(body);
      const input: NewAgentInput = {
        display_name: agentName(body.agent_name, 'agent_name'), description: body.description ?? null, agent_type: body.agent_type, risk_profile: risk,
        authorized_instruments: body.authorized_instruments?.map((s) => s.toUpperCase()) ?? null,
        authorized_actions: body.authorized_actions ?? null,
        ...(body.starting_balance !== undefined && { starting_balance: positiveAmount(body.starting_balance, 'starting_balance') }),
      };
      const owner = await engine.identity.accountByOwnerRef(body.owner_id);
      if (owner) {
        if (!principal) throw new ApiError('INVALID_API_KEY', 'This owner_id exists: authenticate as its owner to add agents.', { field: 'owner_id' });
        if (principal.account.id !== owner.id) throw new ApiError('PERMISSION_DENIED', 'This owner_id belongs to another account.', { field: 'owner_id' });
        const { agent, agentKey } = await engine.identity.createAgent(owner, input);
        return onboarded(agent, agentKey, null);
      }
      const r = await engine.identity.register({ display_name: body.owner_id, owner_ref: body.owner_id, first_agent: input, starting_balance: input.starting_balance });
      return onboarded(r.agent, r.agentKey, { account_id: r.account.id, api_key: r.apiKey, api_secret: r.apiSecret });
    },
  }),
  route({
    method: 'PUT', path: `${A}/mode`, auth: 'any', group: 'agent', tag: 'agents',
    summary: 'Set an agent\'s mode: sandbox, suspended or terminated (final). Live mode is refused: there are no real brokers.',
    body: S.ModeBody,
    async handler({ body, principal, engine }) {
      const p = caller(principal);
      const agent = body.agent_id && !p.agent ? await engine.identity.ownedAgent(p.account, body.agent_id) : p.agent;
      if (!agent) throw new ApiError('VALIDATION_ERROR', 'Name the agent: use its key, X-Agent-Id, or agent_id.', { field: 'agent_id' });
      if (body.agent_id && body.agent_id !== agent.id) throw new ApiError('PERMISSION_DENIED', 'An agent key can only change its own mode.', { field: 'agent_id' });
      const updated = await engine.identity.setMode(agent, body.mode);
      return { agent_id: updated.id, mode: updated.mode, previous_mode: agent.mode };
    },
  }),
  route({
    method: 'GET', path: `${A}/{agent_id}`, auth: 'jwt', group: 'agent', tag: 'agents', params: AgentIdParams, response: S.AgentResponse,
    summary: 'One agent of the account.',
    async handler({ params, principal, engine }) {
      const p = caller(principal);
      return agentOut(await engine.identity.ownedAgent(p.account, params.agent_id), p.account, engine.identity);
    },
  }),
  route({
    method: 'PUT', path: `${A}/{agent_id}`, auth: 'jwt', group: 'agent', tag: 'agents', params: AgentIdParams, body: S.UpdateAgentBody, response: S.AgentResponse,
    summary: 'Partial update: only the fields sent change; risk_profile/risk_config keys merge into the agent\'s profile.',
    async handler({ params, body, principal, engine }) {
      const p = caller(principal);
      const agent = await engine.identity.updateAgent(p.account, params.agent_id, agentInput(body));
      return agentOut(agent, p.account, engine.identity);
    },
  }),
  route({
    method: 'DELETE', path: `${A}/{agent_id}`, auth: 'jwt', group: 'agent', tag: 'agents', params: AgentIdParams, status: 204,
    summary: 'Delete an agent and all its data, permanently.',
    async handler({ params, principal, engine }) {
      await engine.journal.flush();
      await engine.identity.deleteAgent(caller(principal).account, params.agent_id);
      engine.trading.evict(params.agent_id);
      return new Reply(204, '');
    },
  }),
  route({
    method: 'POST', path: `${A}/{agent_id}/clone`, auth: 'jwt', group: 'agent', tag: 'agents', params: AgentIdParams, query: S.CloneQuery, status: 201,
    summary: 'A new agent with the same configuration, a fresh wallet and a new key.', response: S.AgentCredentials,
    async handler({ params, query, principal, engine }) {
      const { agent, agentKey } = await engine.identity.cloneAgent(caller(principal).account, params.agent_id, query.new_name === undefined ? undefined : agentName(query.new_name, 'new_name'));
      return credentials(agent, agentKey);
    },
  }),
  route({
    method: 'POST', path: `${A}/{agent_id}/reset`, auth: 'jwt', group: 'agent', tag: 'agents', params: AgentIdParams, body: S.ResetAgentBody, response: S.AgentResponse,
    summary: 'Cancel resting orders, sell open positions at market, then restore the starting balance (optionally a new one) in a new trading session; history is kept.',
    async handler({ params, body, principal, engine }) {
      const p = caller(principal);
      const balance = body.starting_balance === undefined ? undefined : positiveAmount(body.starting_balance, 'starting_balance');
      const { agent, session, closed } = await engine.trading.reset(p.account, params.agent_id, balance);
      return {
        ...agentOut(agent, p.account, engine.identity), session_id: session.id,
        closed_positions: closed.map((o) => ({ symbol: o.symbol, quantity: o.quantity, price: o.executed_price, realized_pnl: o.realized_pnl })),
      };
    },
  }),
  route({
    method: 'POST', path: `${A}/{agent_id}/archive`, auth: 'jwt', group: 'agent', tag: 'agents', params: AgentIdParams, response: S.AgentResponse,
    summary: 'Archive (soft delete): hidden from lists, its key stops working at once.',
    async handler({ params, principal, engine }) {
      const p = caller(principal);
      const agent = await engine.identity.archiveAgent(p.account, params.agent_id);
      await engine.trading.cancelAllOf(agent.id);
      return agentOut(agent, p.account, engine.identity);
    },
  }),
  route({
    method: 'GET', path: `${A}/{agent_id}/api-key`, auth: 'jwt', group: 'agent', tag: 'agents', params: AgentIdParams,
    summary: 'The agent\'s full API key (kept encrypted at rest).',
    response: Type.Object({ agent_id: Uuid, api_key: Type.String(), message: Type.String() }),
    async handler({ params, principal, engine }) {
      const key = await engine.identity.agentKey(caller(principal).account, params.agent_id);
      return { agent_id: params.agent_id.toLowerCase(), api_key: key, message: 'Current API key for this agent.' };
    },
  }),
  route({
    method: 'POST', path: `${A}/{agent_id}/regenerate-key`, auth: 'jwt', group: 'agent', tag: 'agents', params: AgentIdParams,
    summary: 'Issue a new key; the old one stops working at once.',
    response: Type.Object({ agent_id: Uuid, api_key: Type.String(), message: Type.String() }),
    async handler({ params, principal, engine }) {
      const key = await engine.identity.regenerateKey(caller(principal).account, params.agent_id);
      return { agent_id: params.agent_id.toLowerCase(), api_key: key, message: 'API key regenerated. Save it now; the old key no longer works.' };
    },
  }),
  route({
    method: 'GET', path: `${A}/{agent_id}/risk-profile`, auth: 'jwt', group: 'agent', tag: 'agents', params: AgentIdParams, response: S.RiskProfileOut,
    summary: 'Effective risk limits: the agent\'s own over the account\'s over the defaults.',
    async handler({ params, principal, engine }) {
      const p = caller(principal);
      return engine.identity.effectiveRisk(p.account, await engine.identity.ownedAgent(p.account, params.agent_id));
    },
  }),
  route({
    method: 'PUT', path: `${A}/{agent_id}/risk-profile`, auth: 'jwt', group: 'agent', tag: 'agents', params: AgentIdParams,
    body: S.RiskProfileBody, response: S.RiskProfileOut,
    summary: 'Set the three core risk limits (all required); takes effect on the next order.',
    async handler({ params, body, principal, engine }) {
      const p = caller(principal);
      const agent = await engine.identity.updateAgent(p.account, params.agent_id, { risk_profile: riskInput(body, 'body') });
      return engine.identity.effectiveRisk(p.account, agent);
    },
  }),
  route({
    method: 'GET', path: `${A}/{agent_id}/skill.md`, auth: 'jwt', group: 'agent', tag: 'agents', params: AgentIdParams,
    contentType: 'text/markdown; charset=utf-8',
    summary: 'A Markdown skill file for an LLM agent: its header and key, then the API reference.',
    async handler({ params, principal, engine }) {
      const p = caller(principal);
      const agent = await engine.identity.ownedAgent(p.account, params.agent_id);
      const key = await engine.identity.agentKey(p.account, agent.id);
      return new Reply(200, skillMarkdown(agent, key), 'text/markdown; charset=utf-8');
    },
  }),
];

function onboarded(agent: Agent, apiKey: string, account: { account_id: string; api_key: string; api_secret: string } | null) {
  return {
    agent_id: agent.id, agent_name: agent.display_name, agent_type: agent.agent_type, mode: agent.mode, api_key: apiKey,
    account_id: agent.account_id, created_at: iso(agent.created_at),
    ...(account && { account: { ...account, message: 'New owner: save the account API key and secret; they log in to manage agents.' } }),
  };
}

