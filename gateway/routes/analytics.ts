import { fmt } from '../../engine/core/money.js';
import { computeMetrics, rankBy, sumSeries, type Metrics } from '../../engine/core/metrics.js';
import type { Agent, Principal } from '../../engine/identity/types.js';
import { combineInputs, periodInputs } from '../../engine/snapshots.js';
import { hasSnapshots, historyBuckets } from '../../engine/store/snapshots-repo.js';
import type { Engine } from '../../engine/system.js';
import * as S from '../../schemas/analytics.js';
import { LIMITS } from '../../schemas/limits.js';
import { route } from '../router.js';
import { caller, iso, P } from './helpers.js';

const A = `${P}/analytics`;

/** The agents a caller's analytics cover: its own agent, or every active agent of the account. */
async function scope(engine: Engine, p: Principal): Promise<Agent[]> {
  if (p.agent) return [p.agent];
  return (await engine.identity.listAgents(p.account.id, { includeArchived: false, limit: LIMITS.agents_page_max, offset: 0 })).agents;
}

const sinceOf = (period: S.Period, now: Date): Date | null => {
  const days = S.PERIOD_DAYS[period];
  return days === null ? null : new Date(now.getTime() - days * 86_400_000);
};

/** The client parses these as numbers, so an undefined value is reported as zero (the reference does too). */
const orZero = (v: string | null): string => v ?? fmt(0);

const HISTORY_KEYS = ['total_equity', 'available_cash', 'position_value', 'unrealized_pnl', 'realized_pnl'] as const;

export const analyticsRoutes = [
  route({
    method: 'GET', path: `${A}/performance`, auth: 'any', group: 'analytics', tag: 'analytics', query: S.PerformanceQuery, response: S.PerformanceOut,
    summary: 'Sharpe, Sortino, drawdown, win rate, profit factor and streaks over a period (1d, 7d, 30d, 90d, all = the current session), from equity snapshots and closed trades; account-wide without an agent.',
    async handler({ query, principal, engine }) {
      const p = caller(principal);
      const period = query.period ?? 'all';
      const now = new Date();
      const parts = await periodInputs(engine.db, engine.trading, (await scope(engine, p)).map((a) => a.id), sinceOf(period, now), now);
      const input = parts.length === 1 ? parts[0].input : combineInputs(parts.map((x) => x.input));
      const m = computeMetrics(input);
      return {
        period, agent_id: p.agent?.id ?? null,
        sharpe_ratio: orZero(m.sharpe_ratio), sortino_ratio: orZero(m.sortino_ratio), max_drawdown_pct: m.max_drawdown_pct,
        max_drawdown_duration_days: Math.floor(m.max_drawdown_duration_s / 86_400),
        win_rate: orZero(m.win_rate), profit_factor: orZero(m.profit_factor), avg_win: orZero(m.avg_win), avg_loss: orZero(m.avg_loss),
        best_trade: orZero(m.best_trade), worst_trade: orZero(m.worst_trade), total_trades: m.total_trades,
        avg_trades_per_day: m.trades_per_day, current_streak: m.current_streak,
        starting_equity: fmt(input.starting_balance), final_equity: m.final_equity, total_pnl: m.total_pnl, roi_pct: m.roi_pct,
        period_start: iso(new Date(input.period_start ?? now.getTime())), period_end: iso(now),
        snapshot_count: input.equity.length, metrics: m,
      };
    },
  }),
  route({
    method: 'GET', path: `${A}/portfolio/history`, auth: 'any', group: 'analytics', tag: 'analytics', query: S.HistoryQuery, response: S.HistoryOut,
    summary: 'Equity snapshots, oldest first: the last snapshot of each interval (1m, 5m, 1h, 1d), the latest `limit` intervals. One is taken on demand when none exists yet.',
    async handler({ query, principal, engine }) {
      const p = caller(principal);
      const interval = query.interval ?? '1h';
      const limit = query.limit ?? LIMITS.equity_history_page_default;
      const ids = (await scope(engine, p)).map((a) => a.id);
      if (ids.length > 0 && !(await hasSnapshots(engine.db, ids, 'periodic'))) await engine.snapshots.takeNow({ agentIds: ids });
      const rows = ids.length === 0 ? [] : await historyBuckets(engine.db, ids, 'periodic', S.INTERVAL_SECONDS[interval], limit);
      // Account-wide: agents summed per interval; the time shown is the latest snapshot in that interval.
      const latest = new Map<number, Date>();
      for (const r of rows) {
        const seen = latest.get(r.bucket);
        if (!seen || r.taken_at > seen) latest.set(r.bucket, r.taken_at);
      }
      const perAgent = ids.map((id) => rows.filter((r) => r.agent_id === id).map((r) => ({ ...r, t: r.bucket })));
      const summed = sumSeries(perAgent, HISTORY_KEYS).slice(-limit);
      return {
        account_id: p.account.id, agent_id: p.agent?.id ?? null, interval,
        snapshots: summed.map((r) => ({ time: iso(latest.get(r.t)!), ...Object.fromEntries(HISTORY_KEYS.map((k) => [k, r[k]])) })),
      };
    },
  }),
  route({
    method: 'GET', path: `${A}/leaderboard`, auth: 'any', group: 'analytics', tag: 'analytics', query: S.LeaderboardQuery, response: S.LeaderboardOut,
    summary: 'The agents of the caller\'s account ranked by ROI (or `metric`: total_pnl, sharpe_ratio, win_rate, profit_factor) over a period; ties go to higher ROI, then PnL, then agent id.',
    async handler({ query, principal, engine }) {
      const p = caller(principal);
      const period = query.period ?? '30d';
      const metric = query.metric ?? 'roi_pct';
      const now = new Date();
      const agents = (await engine.identity.listAgents(p.account.id, { includeArchived: false, limit: LIMITS.agents_page_max, offset: 0 })).agents;
      const parts = await periodInputs(engine.db, engine.trading, agents.map((a) => a.id), sinceOf(period, now), now);
      const rows = parts.map((x) => ({ id: x.agent_id, metrics: computeMetrics(x.input) }));
      const byId = new Map<string, { agent: Agent; metrics: Metrics }>(rows.map((r, i) => [r.id, { agent: agents[i], metrics: r.metrics }]));
      return {
        period, metric,
        rankings: rankBy(metric, rows).slice(0, query.limit ?? LIMITS.leaderboard_page_default).map(({ id, rank, value }) => {
          const { agent, metrics: m } = byId.get(id)!;
          return {
            rank, agent_id: id, account_id: p.account.id, display_name: agent.display_name, value,
            roi_pct: m.roi_pct, total_pnl: m.total_pnl, sharpe_ratio: orZero(m.sharpe_ratio), win_rate: orZero(m.win_rate),
            total_trades: m.total_trades, final_equity: m.final_equity, metrics: m,
          };
        }),
      };
    },
  }),
];
