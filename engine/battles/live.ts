import { ApiError } from '../../schemas/errors.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../log.js';
import type { MarketData } from '../market/types.js';
import type { Trading } from '../trading.js';
import { battleStream } from '../store/streams.js';
import { closedTrades, snapshotRows } from '../store/battles-repo.js';
import { fmt, money } from '../core/money.js';
import { portfolioOf } from '../core/portfolio.js';
import { liveTimeUp, participantOf, RUNNING, type Battle, type RankInput } from '../core/battle-rules.js';
import type { SnapshotRow } from '../core/battle-sim.js';
import { nextSnapshotAt, type Entry, type Registry } from './registry.js';

/**
 * The I/O side of live battles: participants trade battle wallets (journal streams `<battle>:<agent>`)
 * through the ordinary trading engine at real-time prices; these helpers value those wallets and gather
 * what the ranking needs from the store.
 */
export const streamsOf = (b: Battle): string[] => b.participants.map((p) => battleStream(b.id, p.agent_id));

/** Every participant's battle wallet valued at the current prices, as equity points at `t`. */
export async function liveRows(trading: Trading, market: MarketData, b: Battle, t: number): Promise<SnapshotRow[]> {
  const priceOf = (s: string) => market.price(s)?.price;
  const rows: SnapshotRow[] = [];
  for (const p of b.participants) {
    const w = await trading.walletOf(battleStream(b.id, p.agent_id));
    const v = portfolioOf(w, priceOf);
    rows.push({
      agent_id: p.agent_id, trade_count: w.trade_count,
      snap: {
        t, total_equity: v.total_equity, available_cash: v.available_cash, locked_cash: v.locked_cash, position_value: v.total_position_value,
        unrealized_pnl: v.unrealized_pnl, realized_pnl: v.realized_pnl,
      },
    });
  }
  return rows;
}

/** Ranking inputs: the stored equity curve plus the points in `now`, and the closed fills of each battle wallet. */
export async function liveInputs(db: Db, b: Battle, now: readonly SnapshotRow[]): Promise<RankInput[]> {
  const stored = await snapshotRows(db, b.id, null);
  const trades = await closedTrades(db, b.id);
  return b.participants.map((p) => {
    const mine = [...stored, ...now].filter((r) => r.agent_id === p.agent_id);
    const last = now.find((r) => r.agent_id === p.agent_id);
    return {
      agent_id: p.agent_id, agent_name: p.agent_name, starting_balance: p.snapshot_balance ?? b.config.starting_balance,
      trade_count: last?.trade_count ?? mine[mine.length - 1]?.trade_count ?? 0,
      equity: mine.map((r) => ({ t: r.snap.t, equity: r.snap.total_equity })),
      trades: trades.get(p.agent_id) ?? [],
    };
  });
}

/** The clock looks this often for snapshots that are due and battles whose time is up. */
const CLOCK_TICK_MS_MAX = 250;

export interface LiveOptions {
  /** Live battles snapshot every participant's equity this often, counted from the battle's start. */
  snapshot_interval_ms: number;
  /** Wall-clock length of one `duration_minutes` minute (60 000; tests shorten it). */
  minute_ms: number;
}

/**
 * The clock of live battles (a timer of the registry, never an XState `after`, which a restore would lose):
 * it snapshots each running battle's wallets on the battle's own 5-second grid and completes a battle once
 * its duration has passed. Stopping and cancelling go through here too, since both must first close the
 * battle wallets to new orders and cancel the resting ones.
 */
export class LiveClock {
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;

  constructor(
    private readonly reg: Registry,
    private readonly db: Db,
    private readonly trading: Trading,
    private readonly market: MarketData,
    private readonly opts: LiveOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), Math.min(CLOCK_TICK_MS_MAX, this.opts.snapshot_interval_ms));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    if (this.ticking) return;
    this.ticking = true;
    const now = Date.now();
    const due = [...this.reg.entries.values()].filter((e) => e.battle.mode === 'live' && RUNNING.has(e.battle.status) && !e.closing);
    Promise.allSettled(due.map((e) => this.step(e, now).catch((err) => this.log.error('battle.clock_failed', { battle_id: e.battle.id, err: err as Error }))))
      .finally(() => (this.ticking = false));
  }

  private async step(e: Entry, now: number): Promise<void> {
    if (liveTimeUp(e.battle, now, this.opts.minute_ms)) {
      await this.reg.exclusive(e, () => this.stopLive(e, new Date(now)));
      return;
    }
    if (now < e.nextSnap) return;
    e.nextSnap = nextSnapshotAt(e.battle, now, this.opts.snapshot_interval_ms);
    await this.reg.exclusive(e, async () => {
      if (!RUNNING.has(e.battle.status)) return;
      const rows = await liveRows(this.trading, this.market, e.battle, now);
      this.reg.send(e, (reply) => ({ type: 'battle.snapshot', rows, now: new Date(now), reply }));
      await this.reg.persist(e);
      this.reg.emit(e.battle, 'battle:update', { battle_id: e.battle.id, timestamp: new Date(now).toISOString(), participants: rows.map((r) => liveStanding(e.battle, r)) });
    });
  }

  /** Funds the battle wallets and routes the participants' trading to them. Runs inside `exclusive`, before the actor begins. */
  async open(e: Entry): Promise<void> {
    const b = e.battle;
    for (const p of b.participants) {
      const other = this.reg.liveBattleOf(p.agent_id);
      if (other && other !== b.id) {
        throw new ApiError('BATTLE_INVALID_STATE', `Agent ${p.agent_name} is already in the active live battle ${other}; an agent plays one live battle at a time.`, { agent_id: p.agent_id, battle_id: other });
      }
    }
    for (const s of streamsOf(b)) await this.trading.openWallet(s, b.config.starting_balance, b.id);
  }

  /** After the actor began: routes trading, and the first equity point (each starting balance, at the start). */
  async begun(e: Entry): Promise<void> {
    this.reg.routeLive(e.battle);
    const t = Date.parse(e.battle.started_at!);
    e.rt.snaps.push(...(await liveRows(this.trading, this.market, e.battle, t)));
    e.nextSnap = t + this.opts.snapshot_interval_ms;
  }

  /** Stops a live battle: orders refused, resting orders cancelled, wallets valued, ranked. Runs inside `exclusive`. */
  async stopLive(e: Entry, now: Date): Promise<Battle> {
    this.reg.send(e, (reply) => ({ type: 'battle.stop', now, reply }));
    if (e.battle.status === 'completed') return e.battle;
    e.closing = true;
    try {
      for (const s of streamsOf(e.battle)) await this.trading.cancelAllOf(s);
      const rows = await liveRows(this.trading, this.market, e.battle, now.getTime());
      const finals = await liveInputs(this.db, e.battle, rows);
      this.reg.send(e, (reply) => ({ type: 'battle.conclude', finals, rows, now, reply }));
    } catch (err) {
      this.reg.send(e, (reply) => ({ type: 'battle.abort', reply }));
      throw err;
    } finally {
      e.closing = false;
    }
    this.reg.unroute(e.battle);
    await this.reg.persist(e);
    return e.battle;
  }

  /** Cancels resting orders of the battle wallets (before a live battle is cancelled). */
  async closeOrders(e: Entry): Promise<void> {
    e.closing = true;
    try {
      for (const s of streamsOf(e.battle)) await this.trading.cancelAllOf(s);
    } finally {
      e.closing = false;
    }
  }
}

/** One participant's line in a live `battle:update`. */
function liveStanding(b: Battle, r: SnapshotRow) {
  const p = participantOf(b, r.agent_id)!;
  const start = money(p.snapshot_balance ?? b.config.starting_balance);
  const pnl = money(r.snap.total_equity).minus(start);
  return { agent_id: r.agent_id, agent_name: p.agent_name, equity: r.snap.total_equity, pnl: fmt(pnl), roi_pct: fmt(start.isZero() ? 0 : pnl.div(start).times(100)), trade_count: r.trade_count };
}
