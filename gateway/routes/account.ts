import { Type } from '@sinclair/typebox';
import { fmt } from '../../engine/core/money.js';
import { route } from '../router.js';
import { caller, iso, P } from './helpers.js';
import { RiskProfileOut } from '../../schemas/agents.js';
import { AmountOut, Timestamp, Uuid } from '../../schemas/common.js';

const AccountInfo = Type.Object({
  account_id: Uuid,
  agent_id: Type.Union([Uuid, Type.Null()]),
  display_name: Type.String(),
  status: Type.String(),
  starting_balance: AmountOut,
  current_session: Type.Object({ session_id: Uuid, started_at: Timestamp }),
  risk_profile: RiskProfileOut,
  created_at: Timestamp,
});

export const accountRoutes = [
  route({
    method: 'GET', path: `${P}/account/info`, auth: 'any', group: 'account', tag: 'account', response: AccountInfo,
    summary: 'The caller: account (or agent, with an agent key or X-Agent-Id), its current session and effective risk limits.',
    async handler({ principal, engine }) {
      const { account, agent } = caller(principal);
      const session = agent ? await engine.identity.currentSession(agent.id) : await engine.identity.latestAccountSession(account.id);
      return {
        account_id: account.id,
        agent_id: agent?.id ?? null,
        display_name: agent?.display_name ?? account.display_name,
        status: agent ? (agent.status === 'archived' ? 'archived' : agent.mode === 'sandbox' ? 'active' : agent.mode) : account.status,
        starting_balance: fmt(session?.starting_balance ?? agent?.starting_balance ?? account.starting_balance),
        current_session: session
          ? { session_id: session.id, started_at: iso(session.started_at) }
          : { session_id: account.id, started_at: iso(account.created_at) },
        risk_profile: engine.identity.effectiveRisk(account, agent),
        created_at: iso(agent?.created_at ?? account.created_at),
      };
    },
  }),
];
