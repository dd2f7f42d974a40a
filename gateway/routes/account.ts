import { Type } from '@sinclair/typebox';
import { ApiError } from '../../schemas/errors.js';
import { LIMITS } from '../../schemas/limits.js';
import { fmt, money } from '../../engine/core/money.js';
import { portfolioOf, positionsOf, sumBalances } from '../../engine/core/portfolio.js';
import type { WalletState } from '../../engine/core/wallet.js';
import type { Engine } from '../../engine/system.js';
import type { Principal } from '../../engine/identity/types.js';
import { route } from '../router.js';
import { caller, iso, P, positiveAmount, riskInput } from './helpers.js';
import { RiskProfileBody, RiskProfileOut } from '../../schemas/agents.js';
import { PnlQuery, ResetBody } from '../../schemas/trade.js';
import { battleOf } from './trade.js';
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

/** The wallets a caller sees: its agent's, or every active agent's of the account. */
async function walletsOf(engine: Engine, p: Principal): Promise<WalletState[]> {
  if (p.agent) return [await engine.trading.wallet(p.agent.id)];
  const { agents } = await engine.identity.listAgents(p.account.id, { includeArchived: false, limit: LIMITS.agents_page_max, offset: 0 });
  return Promise.all(agents.map((a) => engine.trading.wallet(a.id)));
}

/** Balances per asset over the caller's wallets (REST `/account/balance` and WebSocket `account.balance`). */
export async function balanceOf(engine: Engine, p: Principal) {
  const wallets = await walletsOf(engine, p);
  const equity = wallets.reduce((s, w) => s.plus(portfolioOf(w, priceOf(engine)).total_equity), money(0));
  return { balances: sumBalances(wallets), total_equity_usdt: fmt(equity) };
}

const priceOf = (engine: Engine) => (symbol: string) => engine.market.price(symbol)?.price;
const now = () => new Date().toISOString();
const PERIOD_DAYS = { '1d': 1, '7d': 7, '30d': 30, all: null } as const;

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
  route({
    method: 'GET', path: `${P}/account/balance`, auth: 'any', group: 'account', tag: 'account',
    summary: 'Per-asset available, locked and total, and total equity in USDT (positions at current prices).',
    handler: ({ principal, engine }) => balanceOf(engine, caller(principal)),
  }),
  route({
    method: 'GET', path: `${P}/account/positions`, auth: 'any', group: 'account', tag: 'account',
    summary: 'Open positions at current prices; average entry includes buy fees.',
    async handler({ principal, engine }) {
      const positions = (await walletsOf(engine, caller(principal))).flatMap((w) => positionsOf(w, priceOf(engine)));
      return { positions, total_unrealized_pnl: fmt(positions.reduce((s, p) => s.plus(p.unrealized_pnl), money(0))) };
    },
  }),
  route({
    method: 'GET', path: `${P}/account/portfolio`, auth: 'any', group: 'account', tag: 'account',
    summary: 'Cash, positions, realized and unrealized PnL, ROI.',
    async handler({ principal, engine }) {
      const views = (await walletsOf(engine, caller(principal))).map((w) => portfolioOf(w, priceOf(engine)));
      if (views.length === 1) return { ...views[0], timestamp: now() };
      const sum = (k: keyof (typeof views)[number]) => fmt(views.reduce((s, v) => s.plus(v[k] as string), money(0)));
      const start = money(sum('starting_balance'));
      const equity = money(sum('total_equity'));
      return {
        total_equity: fmt(equity), available_cash: sum('available_cash'), locked_cash: sum('locked_cash'), total_position_value: sum('total_position_value'),
        unrealized_pnl: sum('unrealized_pnl'), realized_pnl: sum('realized_pnl'), total_pnl: sum('total_pnl'),
        roi_pct: fmt(start.isZero() ? 0 : equity.minus(start).div(start).times(100)), starting_balance: fmt(start),
        positions: views.flatMap((v) => v.positions), timestamp: now(),
      };
    },
  }),
  route({
    method: 'GET', path: `${P}/account/pnl`, auth: 'any', group: 'account', tag: 'account', query: PnlQuery,
    summary: 'PnL of a period (1d, 7d, 30d, all): realized PnL, fees and win/loss counts over the period; unrealized now. Realized PnL is already net of fees, so net_pnl = total_pnl.',
    async handler({ query, principal, engine }) {
      const p = caller(principal);
      const period = query.period ?? 'all';
      const days = PERIOD_DAYS[period];
      const since = days === null ? null : new Date(Date.now() - days * 86_400_000).toISOString();
      const [r] = await engine.db.query<{ realized: string | null; fees: string | null; wins: number; losses: number; flat: number }>(
        `SELECT sum(t.realized_pnl) AS realized, sum(t.fee) AS fees,
                count(*) FILTER (WHERE t.realized_pnl > 0)::int AS wins, count(*) FILTER (WHERE t.realized_pnl < 0)::int AS losses,
                count(*) FILTER (WHERE t.realized_pnl = 0)::int AS flat
         FROM trades t JOIN agents a ON a.id = t.agent_id
         WHERE a.account_id = $1 AND ($2::uuid IS NULL OR t.agent_id = $2) AND ($3::timestamptz IS NULL OR t.executed_at >= $3)
           AND t.battle_id IS NOT DISTINCT FROM $4::uuid`,
        [p.account.id, p.agent?.id ?? null, since, battleOf(engine, p)],
      );
      const unrealized = (await walletsOf(engine, p)).reduce((s, w) => s.plus(portfolioOf(w, priceOf(engine)).unrealized_pnl), money(0));
      const realized = money(r.realized ?? 0);
      const closed = r.wins + r.losses + r.flat;
      const total = realized.plus(unrealized);
      return {
        period, realized_pnl: fmt(realized), unrealized_pnl: fmt(unrealized), total_pnl: fmt(total), fees_paid: fmt(r.fees ?? 0), net_pnl: fmt(total),
        winning_trades: r.wins, losing_trades: r.losses, win_rate: fmt(closed === 0 ? 0 : money(r.wins).div(closed).times(100)),
      };
    },
  }),
  route({
    method: 'GET', path: `${P}/account/risk-profile`, auth: 'any', group: 'account', tag: 'account', response: RiskProfileOut,
    summary: 'Effective risk limits of the caller.',
    handler({ principal, engine }) {
      const p = caller(principal);
      return engine.identity.effectiveRisk(p.account, p.agent);
    },
  }),
  route({
    method: 'PUT', path: `${P}/account/risk-profile`, auth: 'any', group: 'account', tag: 'account', body: RiskProfileBody, response: RiskProfileOut,
    summary: 'Set the three core limits: on the agent (agent key or X-Agent-Id), else on the account.',
    async handler({ body, principal, engine }) {
      const p = caller(principal);
      const profile = riskInput(body, 'body');
      if (p.agent) return engine.identity.effectiveRisk(p.account, await engine.identity.updateAgent(p.account, p.agent.id, { risk_profile: profile }));
      return engine.identity.effectiveRisk(await engine.identity.updateAccountRisk(p.account, profile), null);
    },
  }),
  route({
    method: 'POST', path: `${P}/account/reset`, auth: 'any', group: 'account', tag: 'account', body: ResetBody,
    summary: 'Start over: cancels resting orders, sells open positions at market (recorded as trades), restores the starting balance (or new_starting_balance) in a new session; history is kept. Needs "confirm": true.',
    async handler({ body, principal, engine }) {
      const p = caller(principal);
      if (body.confirm !== true) throw new ApiError('VALIDATION_ERROR', 'Send "confirm": true to reset.', { field: 'confirm' });
      const raw = body.new_starting_balance ?? body.starting_balance;
      const balance = raw === undefined ? undefined : positiveAmount(raw, body.new_starting_balance !== undefined ? 'new_starting_balance' : 'starting_balance');
      const agents = p.agent ? [p.agent] : (await engine.identity.listAgents(p.account.id, { includeArchived: false, limit: LIMITS.agents_page_max, offset: 0 })).agents;
      const results = [];
      for (const agent of agents) {
        const before = portfolioOf(await engine.trading.wallet(agent.id), priceOf(engine));
        const old = await engine.identity.currentSession(agent.id);
        const { session, closed } = await engine.trading.reset(p.account, agent.id, balance);
        results.push({
          agent_id: agent.id,
          previous_session: {
            session_id: old?.id ?? null, ending_equity: before.total_equity, total_pnl: fmt(money(before.total_equity).minus(before.starting_balance)),
            duration_days: old ? Math.floor((Date.now() - new Date(old.started_at).getTime()) / 86_400_000) : 0,
          },
          closed_positions: closed.map((o) => ({ symbol: o.symbol, quantity: o.quantity, price: o.executed_price, realized_pnl: o.realized_pnl })),
          new_session: { session_id: session.id, starting_balance: fmt(session.starting_balance), started_at: iso(session.started_at) },
        });
      }
      return { message: 'Account reset successful', ...results[0], agents: results };
    },
  }),
];
