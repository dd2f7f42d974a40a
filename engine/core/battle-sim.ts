import { createHash } from 'node:crypto';
import { pushSnapshot } from './backtest.js';
import type { Battle, HistState, RankInput } from './battle-rules.js';
import { fmt, money } from './money.js';
import { portfolioOf } from './portfolio.js';
import { finish, initialState, priceOf, step, virtualTime, type SimConfig, type SimState, type Snapshot, type StepOut } from './sim.js';
import type { Series } from './series.js';
import type { OrderRec, TradeRec } from './wallet.js';
import type { Pair } from '../market/types.js';

/**
 * A historical battle is one candle series and one sim state per participant, all advanced by the same n:
 * participants trade independent wallets, so stepping each by n is the shared clock. These functions are
 * the battle's use of engine/core/sim.ts, plus the bookkeeping of what a step produced. Pure.
 */
export interface HistClock {
  series: Series;
  /** Per participant: the same candles and rules, its own session id (so derived order ids never collide). */
  cfgs: Record<string, SimConfig>;
}

/** What a participant did: every order's last state, its fills and its equity points. */
export interface Ledger {
  orders: Map<string, OrderRec>;
  trades: TradeRec[];
  snapshots: Snapshot[];
}

export type LogEntry = { agent_id: string; kind: 'order'; body: OrderRec } | { agent_id: string; kind: 'trade'; body: TradeRec };
export interface SnapshotRow {
  agent_id: string;
  snap: Snapshot;
  trade_count: number;
}
/** Domain events for subscribers (the gateway's `battle:update`, `battle:trade`, `battle:status`). */
export interface BattleEmit {
  type: 'update' | 'trade' | 'status';
  data: Record<string, unknown>;
}

/** Everything the actor holds besides the battle itself; `unsaved`, `snaps` and `outbox` are drained by the registry once durable. */
export interface BattleRuntime {
  clock: HistClock | null;
  ledgers: Record<string, Ledger>;
  unsaved: LogEntry[];
  snaps: SnapshotRow[];
  outbox: BattleEmit[];
}

export const emptyRuntime = (): BattleRuntime => ({ clock: null, ledgers: {}, unsaved: [], snaps: [], outbox: [] });
export const emptyLedger = (): Ledger => ({ orders: new Map(), trades: [], snapshots: [] });

const HOUR_MS = 3_600_000;

export function simConfigs(battleId: string, h: HistState, pairs: Pair[]): Record<string, SimConfig> {
  const out: Record<string, SimConfig> = {};
  for (const agent of Object.keys(h.sims)) {
    out[agent] = {
      session_id: `${battleId}:${agent}`, fee_rate: h.fee_rate, start_ms: h.start_ms, total_steps: h.total_steps, warmup: h.warmup,
      snapshot_every: Math.max(1, Math.round(HOUR_MS / h.interval_ms)), pairs,
    };
  }
  return out;
}

export function initialSims(battleId: string, agents: readonly string[], startingBalance: string): Record<string, SimState> {
  return Object.fromEntries(agents.map((a) => [a, initialState(a, startingBalance, battleId)]));
}

export const histStep = (h: HistState): number => Object.values(h.sims)[0]?.step ?? 0;
export const histFinished = (h: HistState): boolean => Object.values(h.sims).every((s) => s.finished);

export function histTime(h: HistState, clock: HistClock | null): number {
  return h.start_ms + histStep(h) * (clock?.series.interval_ms ?? h.interval_ms);
}

export function stepAll(h: HistState, clock: HistClock, n: number): Record<string, StepOut> {
  const outs: Record<string, StepOut> = {};
  for (const [agent, sim] of Object.entries(h.sims)) outs[agent] = step(sim, clock.series, clock.cfgs[agent], n);
  return outs;
}

/** Ends every participant where the clock is: open orders cancelled, positions sold at the last close. */
export function closeAll(h: HistState, clock: HistClock): Record<string, StepOut> {
  const outs: Record<string, StepOut> = {};
  for (const [agent, sim] of Object.entries(h.sims)) {
    const out: StepOut = { state: sim, closed: [], trades: [], snapshots: [], last_step_from: 0, steps_executed: 0 };
    if (!sim.finished) finish(sim, clock.series, clock.cfgs[agent], out);
    outs[agent] = out;
  }
  return outs;
}

/** Records what a step (or an order) produced for one participant, queues it for the store and subscribers. */
export function keep(b: Battle, rt: BattleRuntime, agent: string, out: StepOut): void {
  b.hist!.sims[agent] = out.state;
  const ledger = (rt.ledgers[agent] ??= emptyLedger());
  for (const o of out.closed) keepOrder(rt, agent, o);
  for (const t of out.trades) {
    ledger.trades.push(t);
    rt.unsaved.push({ agent_id: agent, kind: 'trade', body: t });
    rt.outbox.push({ type: 'trade', data: tradeData(b.id, agent, t) });
  }
  for (const s of out.snapshots) {
    pushSnapshot(ledger.snapshots, s);
    rt.snaps.push({ agent_id: agent, snap: s, trade_count: out.state.wallet.trade_count });
  }
}

export function keepOrder(rt: BattleRuntime, agent: string, o: OrderRec): void {
  (rt.ledgers[agent] ??= emptyLedger()).orders.set(o.order_id, o);
  rt.unsaved.push({ agent_id: agent, kind: 'order', body: o });
}

export const tradeData = (battleId: string, agentId: string, t: TradeRec) => ({
  battle_id: battleId, agent_id: agentId, trade_id: t.trade_id, order_id: t.order_id, symbol: t.symbol, side: t.side, quantity: t.quantity,
  price: t.price, fee: t.fee, realized_pnl: t.realized_pnl, timestamp: t.executed_at,
});

/** Last closes at the shared virtual time (symbols without a candle yet are left out). */
export function histPrices(h: HistState, clock: HistClock): Record<string, string> {
  const [agent, sim] = Object.entries(h.sims)[0] ?? [];
  const out: Record<string, string> = {};
  if (!agent) return out;
  const price = priceOf(clock.series, clock.cfgs[agent], sim);
  for (const s of h.pairs) {
    const v = price(s);
    if (v !== undefined) out[s] = v;
  }
  return out;
}

export interface Standing {
  agent_id: string;
  equity: string;
  pnl: string;
  roi_pct: string;
  trade_count: number;
}

/** Each participant valued at the given prices, in join order. */
export function standings(b: Battle, sims: Record<string, SimState>, prices: Record<string, string>): Standing[] {
  return b.participants.map((p) => {
    const w = sims[p.agent_id].wallet;
    const v = portfolioOf(w, (s) => prices[s]);
    const start = money(w.starting_balance);
    const pnl = money(v.total_equity).minus(start);
    return { agent_id: p.agent_id, equity: v.total_equity, pnl: fmt(pnl), roi_pct: fmt(start.isZero() ? 0 : pnl.div(start).times(100)), trade_count: w.trade_count };
  });
}

/** Inputs of the ranking: each participant's equity curve and closed trades (plus `now`, a current point, for live standings). */
export function histInputs(b: Battle, ledgers: Record<string, Ledger>, now?: Record<string, Snapshot>): RankInput[] {
  return b.participants.map((p) => {
    const sim = b.hist!.sims[p.agent_id];
    const l = ledgers[p.agent_id] ?? emptyLedger();
    const snaps = now?.[p.agent_id] ? [...l.snapshots, now[p.agent_id]] : l.snapshots;
    return {
      agent_id: p.agent_id, agent_name: p.agent_name, starting_balance: sim.wallet.starting_balance, trade_count: sim.wallet.trade_count,
      equity: snaps.map((s) => ({ t: s.t, equity: s.total_equity })),
      trades: l.trades.filter((t) => t.realized_pnl !== null).map((t) => ({ t: Date.parse(t.executed_at), realized_pnl: t.realized_pnl! })),
    };
  });
}

export const virtualNow = (h: HistState, clock: HistClock): number => {
  const [agent, sim] = Object.entries(h.sims)[0];
  return virtualTime(clock.cfgs[agent], clock.series, sim);
};

/** Sorted-key JSON: the same value always gives the same text. */
function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

/**
 * A digest of what a historical battle produced, independent of its ids (battle, order and trade ids differ
 * between two runs of the same battle): per participant in join order its balances, positions, fills and
 * equity curve, and the ranking by join position. Equal hashes mean equal fills, equity and ranking.
 */
export function battleHash(b: Battle, ledgers: Record<string, Ledger>): string {
  const index = new Map(b.participants.map((p, i) => [p.agent_id, i]));
  const strip = <T extends object>(o: T, keys: string[]) => Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
  const parts = b.participants.map((p) => {
    const sim = b.hist?.sims[p.agent_id];
    const l = ledgers[p.agent_id] ?? emptyLedger();
    return {
      step: sim?.step, balances: sim?.wallet.balances, positions: sim?.wallet.positions, realized: sim?.wallet.realized_total,
      open: Object.values(sim?.wallet.open ?? {}).map((o) => strip(o, ['order_id', 'client_order_id'])),
      trades: l.trades.map((t) => strip(t, ['trade_id', 'order_id'])),
      equity: l.snapshots,
    };
  });
  const ranking = (b.rankings ?? []).map((r) => ({ ...strip(r, ['agent_id', 'agent_name']), who: index.get(r.agent_id) }));
  return createHash('sha256').update(canonical({ parts, ranking })).digest('hex');
}
