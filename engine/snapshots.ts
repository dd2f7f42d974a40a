import type { Db, Queryable } from './store/db.js';
import type { Logger } from './log.js';
import type { MarketData } from './market/types.js';
import type { Trading } from './trading.js';
import { portfolioOf } from './core/portfolio.js';
import { parseStream } from './store/streams.js';
import { fmt, money } from './core/money.js';
import { sumSeries, type EquityPoint, type MetricsInput } from './core/metrics.js';
import { closedTrades, equityAt, equitySeries, insertSnapshots, sessionStarts, type SnapshotValues } from './store/snapshots-repo.js';

/** Equity points per agent a metrics window reads at most (thinned evenly beyond that). */
export const METRICS_POINTS_MAX = 5000;

/**
 * Records the equity of every loaded own wallet of an agent each `interval_ms` into `snapshots` (kind
 * 'periodic'): the series that analytics computes Sharpe, drawdown and history from. Wallets that are not
 * loaded are idle (nothing has touched them since start-up), so their equity only moves with the prices of
 * positions they hold; they get a row as soon as anything loads them. Reads in-memory wallet state and
 * current prices, never the journal.
 */
export class Snapshotter {
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly db: Db,
    private readonly trading: Trading,
    private readonly market: MarketData,
    /** 0 disables the timer; takeNow still works. */
    private readonly interval_ms: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.interval_ms <= 0 || this.timer) return;
    this.timer = setInterval(() => this.tick(), this.interval_ms);
    // The timer alone must not keep the process alive.
    this.timer.unref();
  }

  /** Stops the timer and waits for writes in flight, so the database can be closed right after. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.allSettled([...this.running]);
  }

  /**
   * Takes one snapshot now (or at `at`, for tests and back-fills) of the given agents (loading their
   * wallets) or of every loaded wallet. Returns the rows written.
   */
  takeNow(opts: { at?: Date; agentIds?: readonly string[] } = {}): Promise<number> {
    const p = this.take(opts.at ?? new Date(), opts.agentIds ?? this.ownWallets());
    this.running.add(p);
    return p.finally(() => this.running.delete(p));
  }

  /** Loaded wallets that are agents' own: battle wallets (`<battle>:<agent>`) have their battle's snapshots. */
  private ownWallets(): string[] {
    return this.trading.loadedAgents().filter((stream) => parseStream(stream).battle_id === null);
  }

  private async take(at: Date, agentIds: readonly string[]): Promise<number> {
    const priceOf = (symbol: string) => this.market.price(symbol)?.price;
    const rows: SnapshotValues[] = [];
    for (const id of agentIds) {
      const w = await this.trading.walletOf(id); // the agent's own wallet, even while it fights a battle
      const v = portfolioOf(w, priceOf);
      rows.push({
        agent_id: id, total_equity: v.total_equity, available_cash: v.available_cash,
        position_value: v.total_position_value, unrealized_pnl: v.unrealized_pnl, realized_pnl: v.realized_pnl,
      });
    }
    return rows.length === 0 ? 0 : insertSnapshots(this.db, 'periodic', at, rows);
  }

  /** A slow database must not pile up overlapping snapshots: a tick is skipped while the last one runs. */
  private tick(): void {
    if (this.ticking) return;
    this.ticking = true;
    this.takeNow()
      .catch((err) => this.log.error('snapshots.failed', { err: err as Error }))
      .finally(() => (this.ticking = false));
  }
}

export interface AgentPeriod {
  agent_id: string;
  input: MetricsInput;
  /** Equity points the window holds (after thinning). */
  snapshot_count: number;
}

/**
 * Metrics inputs of agents over a window ending `now`. The window starts at the later of `since` and the
 * agent's current session start (a reset starts a new history; `since` null = the whole session). The
 * starting balance is the equity at the window start: the last snapshot at or before `since` when the window
 * cuts into the session, else the session's starting balance.
 */
export async function periodInputs(db: Queryable, trading: Trading, agentIds: readonly string[], since: Date | null, now: Date): Promise<AgentPeriod[]> {
  if (agentIds.length === 0) return [];
  const sessions = await sessionStarts(db, agentIds);
  const cutsSession = (id: string) => since !== null && !(sessions.has(id) && sessions.get(id)! >= since);
  const fromOf = (id: string): Date | null => (cutsSession(id) ? since : (sessions.get(id) ?? null));
  const froms = agentIds.map(fromOf);
  const earliest = froms.includes(null) ? null : new Date(Math.min(...froms.map((f) => f!.getTime())));
  const atCut = since === null ? new Map<string, string>() : await equityAt(db, agentIds, 'periodic', since);
  const equity = new Map<string, EquityPoint[]>(agentIds.map((id) => [id, []]));
  for (const r of await equitySeries(db, agentIds, 'periodic', earliest, METRICS_POINTS_MAX)) {
    equity.get(r.agent_id)!.push({ t: new Date(r.taken_at).getTime(), equity: r.total_equity });
  }
  const trades = new Map<string, Array<{ t: number; realized_pnl: string }>>(agentIds.map((id) => [id, []]));
  for (const r of await closedTrades(db, agentIds, earliest)) trades.get(r.agent_id)!.push({ t: new Date(r.executed_at).getTime(), realized_pnl: r.realized_pnl });
  const out: AgentPeriod[] = [];
  for (const [i, id] of agentIds.entries()) {
    const from = froms[i]?.getTime() ?? -Infinity;
    const points = equity.get(id)!.filter((p) => p.t >= from);
    const start = (cutsSession(id) ? atCut.get(id) : undefined) ?? (await trading.walletOf(id)).starting_balance;
    out.push({
      agent_id: id,
      input: {
        starting_balance: start, equity: points, trades: trades.get(id)!.filter((tr) => tr.t >= from),
        period_start: Number.isFinite(from) ? from : undefined, period_end: now.getTime(),
      },
      snapshot_count: points.length,
    });
  }
  return out;
}

/** One account-wide input from per-agent ones: balances and equity summed (see sumSeries), trades merged. */
export function combineInputs(parts: readonly MetricsInput[]): MetricsInput {
  const starts = parts.map((p) => p.period_start).filter((t): t is number => t !== undefined);
  const ends = parts.map((p) => p.period_end).filter((t): t is number => t !== undefined);
  return {
    starting_balance: fmt(parts.reduce((s, p) => s.plus(p.starting_balance), money(0))),
    equity: sumSeries(parts.map((p) => p.equity), ['equity']),
    trades: parts.flatMap((p) => p.trades),
    period_start: starts.length === parts.length && starts.length > 0 ? Math.min(...starts) : undefined,
    period_end: ends.length > 0 ? Math.max(...ends) : undefined,
  };
}
