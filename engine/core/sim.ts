import { createHash } from 'node:crypto';
import { Decimal } from 'decimal.js';
import { fmt, money } from './money.js';
import { closePosition, fill, placeOrder, QUOTE, release, triggerDirection, type Decision, type MarketCtx, type PlaceInput } from './orders.js';
import type { RiskProfile } from './risk-profile.js';
import { applyEvent, emptyWallet, type OrderRec, type TradeRec, type WalletEvent, type WalletState } from './wallet.js';
import type { Pair } from '../market/types.js';
import { closeAt, fromScaled, levelOf, seriesView, volume24h, type Series, type SeriesLayout } from './series.js';

/**
 * The backtest step: one pure function from (state, candles, n) to the next state, used by the main thread
 * for small steps and by workers for large batches. The fill rules are the live ones (engine/core/orders.ts)
 * applied to candles without look-ahead:
 * - at virtual time T only candles that closed by T are visible; T = start + step × interval;
 * - a market order placed at T fills at the close of the last candle closed by T (plus the live slippage,
 *   sized by the 24 h volume of the candles closed by T, and the fee);
 * - step k+1 reveals the candle [T, T+interval): a resting order fires when that candle's low (orders waiting
 *   for a fall) or high (waiting for a rise) reaches its level, at the candle's open when the candle opened
 *   beyond the level (a gap), else at the level; a limit still never fills worse than its price;
 * - orders a candle fires fill in the order they were placed; one that cannot be paid is rejected, hold released.
 * Money stays Decimal inside fill/place; the loop itself compares only exact scaled integers (series.ts).
 */
export interface SimConfig {
  session_id: string;
  fee_rate: string;
  /** Virtual time at step 0 (the session's start), epoch ms. */
  start_ms: number;
  total_steps: number;
  /** Slot of the candle that opens at start_ms; the slots before it are warm-up history. */
  warmup: number;
  /** Equity is snapshotted every this many steps, after any fill, and at the end. */
  snapshot_every: number;
  /** Index-aligned with the series' symbols. */
  pairs: Pair[];
}

export interface SimState {
  step: number;
  wallet: WalletState;
  /** Virtual times of orders accepted in the last minute, for the order-rate risk limit. */
  recent: number[];
  finished: boolean;
}

export interface Snapshot {
  t: number;
  total_equity: string;
  available_cash: string;
  locked_cash: string;
  position_value: string;
  unrealized_pnl: string;
  realized_pnl: string;
}

export interface StepOut {
  state: SimState;
  /** Orders that reached a final state (filled, or rejected/cancelled), in the order it happened. */
  closed: OrderRec[];
  trades: TradeRec[];
  snapshots: Snapshot[];
  /** closed.slice(last_step_from) are the last step's orders. */
  last_step_from: number;
  steps_executed: number;
}

const MINUTE_MS = 60_000;

/**
 * Backtests enforce only the risk limits an agent or account set explicitly (merged over this): the live
 * defaults (25 % per position, 50 open orders…) would silently cap a strategy that never asked for them.
 */
export const BACKTEST_RISK_BASE: Readonly<RiskProfile> = Object.freeze({
  max_position_size_pct: 100, daily_loss_limit_pct: 100, max_open_orders: 1_000_000, max_order_size_pct: 100, min_order_size_usd: 0, order_rate_limit: 1_000_000,
});

export function initialState(agentId: string, startingBalance: string, sessionId: string): SimState {
  const wallet = applyEvent(emptyWallet(agentId), { type: 'wallet.funded', asset: 'USDT', amount: fmt(startingBalance), session_id: sessionId });
  return { step: 0, wallet, recent: [], finished: false };
}

/** A UUID-shaped id derived from a seed, so a fill gets the same id in a worker and in the main thread. */
export function derivedId(seed: string): string {
  const h = createHash('sha1').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const virtualTime = (cfg: SimConfig, series: Series, state: SimState): number => cfg.start_ms + state.step * series.interval_ms;
/** The slot of the last candle closed at the state's virtual time. */
const lastSlot = (cfg: SimConfig, state: SimState): number => cfg.warmup + state.step - 1;

export function priceOf(series: Series, cfg: SimConfig, state: SimState): (symbol: string) => string | undefined {
  const j = lastSlot(cfg, state);
  return (symbol) => {
    const s = series.symbols.indexOf(symbol);
    return s < 0 ? undefined : closeAt(series, s, j);
  };
}

function ctx(series: Series, cfg: SimConfig, state: SimState, sym: number, price: string): MarketCtx {
  const j = lastSlot(cfg, state);
  return {
    pair: cfg.pairs[sym], price, volume24h: volume24h(series, sym, j), fee_rate: cfg.fee_rate,
    now: new Date(virtualTime(cfg, series, state)), priceOf: priceOf(series, cfg, state),
  };
}

const apply = (w: WalletState, events: WalletEvent[]) => {
  for (const e of events) applyEvent(w, e);
};

function record(out: StepOut, d: Decision & { ok: true }): void {
  for (const e of d.events) {
    if (e.type === 'order.filled') out.trades.push(e.trade);
    if (e.type !== 'order.placed' && 'order' in e) out.closed.push(e.order);
  }
}

/**
 * Equity at the state's clock, valued as portfolio.ts values it (each position's value and PnL rounded to
 * 8 places, an unpriced one at its average entry) but computing only the sums a snapshot keeps: this runs
 * every virtual hour and after every fill, so it must stay a handful of Decimal operations per position.
 */
export function snapshot(series: Series, cfg: SimConfig, state: SimState): Snapshot {
  const w = state.wallet;
  const cash = w.balances[QUOTE] ?? { available: '0', locked: '0' };
  const price = priceOf(series, cfg, state);
  let value = money(0);
  let unrealized = money(0);
  for (const p of Object.values(w.positions)) {
    const mv = money(p.quantity).times(price(p.symbol) ?? p.avg_entry_price);
    value = value.plus(mv.toDecimalPlaces(8, Decimal.ROUND_HALF_UP));
    unrealized = unrealized.plus(mv.minus(p.total_cost).toDecimalPlaces(8, Decimal.ROUND_HALF_UP));
  }
  return {
    t: virtualTime(cfg, series, state), total_equity: fmt(value.plus(cash.available).plus(cash.locked)), available_cash: fmt(cash.available),
    locked_cash: fmt(cash.locked), position_value: fmt(value), unrealized_pnl: fmt(unrealized), realized_pnl: fmt(w.realized_total),
  };
}

const flat = (w: WalletState): boolean => {
  for (const _ in w.positions) return false;
  return true;
};

/** Places an order at the state's virtual time, against the last close known then. */
export function placeAt(state: SimState, series: Series, cfg: SimConfig, input: PlaceInput, risk: RiskProfile): Decision {
  const sym = series.symbols.indexOf(input.symbol);
  if (sym < 0) return { ok: false, code: 'INVALID_SYMBOL', message: `${input.symbol} is not a pair of this backtest.`, details: { symbol: input.symbol, pairs: series.symbols } };
  const price = closeAt(series, sym, lastSlot(cfg, state));
  const T = virtualTime(cfg, series, state);
  if (price === undefined) return { ok: false, code: 'PRICE_NOT_AVAILABLE', message: `No ${input.symbol} candle has closed by ${new Date(T).toISOString()}.`, details: { symbol: input.symbol } };
  state.recent = state.recent.filter((t) => t > T - MINUTE_MS);
  const d = placeOrder(state.wallet, input, ctx(series, cfg, state, sym, price), risk, state.recent.length);
  if (d.ok) {
    apply(state.wallet, d.events);
    state.recent.push(T);
  }
  return d;
}

export function cancelAt(state: SimState, series: Series, cfg: SimConfig, orderId: string): Decision {
  const order = state.wallet.open[orderId];
  if (!order) return { ok: false, code: 'ORDER_NOT_CANCELLABLE', message: 'Order is not open.', details: { order_id: orderId } };
  const e = release(state.wallet, order, new Date(virtualTime(cfg, series, state)), 'cancelled');
  apply(state.wallet, [e]);
  return { ok: true, events: [e], order: e.order };
}

/** Fires the open orders of one symbol that the candle at slot j reaches. */
function fire(state: SimState, series: Series, cfg: SimConfig, sym: number, j: number, out: StepOut): void {
  const i = sym * series.length + j;
  const symbol = series.symbols[sym];
  for (const order of Object.values(state.wallet.open)) {
    if (order.symbol !== symbol || order.price === null) continue;
    const level = levelOf(order.price);
    const down = triggerDirection(order) === 'down';
    if (down ? !(series.low[i] <= level) : !(series.high[i] >= level)) continue;
    const ref = fromScaled(down ? Math.min(series.open[i], level) : Math.max(series.open[i], level));
    let d = fill(state.wallet, order, ctx(series, cfg, state, sym, ref), derivedId(`trade:${order.order_id}`));
    if (!d.ok) {
      const e = release(state.wallet, order, new Date(virtualTime(cfg, series, state)), 'rejected', d.code.toLowerCase());
      d = { ok: true, events: [e], order: e.order };
    }
    apply(state.wallet, d.events);
    record(out, d);
  }
}

/** Per symbol, the highest level waiting for a fall and the lowest waiting for a rise (±Infinity when none). */
function levels(state: SimState, series: Series, down: Float64Array, up: Float64Array): void {
  down.fill(-Infinity);
  up.fill(Infinity);
  for (const o of Object.values(state.wallet.open)) {
    const s = series.symbols.indexOf(o.symbol);
    if (s < 0 || o.price === null) continue;
    const level = levelOf(o.price);
    if (triggerDirection(o) === 'down') down[s] = Math.max(down[s], level);
    else up[s] = Math.min(up[s], level);
  }
}

/** Advances up to n steps (fewer when the session ends). Mutates and returns `state`. */
export function step(state: SimState, series: Series, cfg: SimConfig, n: number): StepOut {
  const out: StepOut = { state, closed: [], trades: [], snapshots: [], last_step_from: 0, steps_executed: 0 };
  const nSym = series.symbols.length;
  const L = series.length;
  const { low, high } = series;
  const down = new Float64Array(nSym);
  const up = new Float64Array(nSym);
  levels(state, series, down, up);
  for (let k = 0; k < n && state.step < cfg.total_steps; k++) {
    const j = cfg.warmup + state.step;
    state.step += 1;
    out.steps_executed += 1;
    out.last_step_from = out.closed.length;
    let hit = false;
    // The hot loop: two comparisons per candle; NaN (a missing candle) compares false and fires nothing.
    for (let s = 0, i = j; s < nSym; s++, i += L) {
      if (low[i] <= down[s] || high[i] >= up[s]) {
        fire(state, series, cfg, s, j, out);
        hit = true;
      }
    }
    if (hit) levels(state, series, down, up);
    if (hit || state.step % cfg.snapshot_every === 0 || state.step === cfg.total_steps) {
      // Without positions and fills nothing can have moved equity since the last snapshot of this batch.
      const prev = out.snapshots[out.snapshots.length - 1];
      out.snapshots.push(prev && !hit && flat(state.wallet) ? { ...prev, t: virtualTime(cfg, series, state) } : snapshot(series, cfg, state));
    }
  }
  if (state.step === cfg.total_steps && !state.finished) finish(state, series, cfg, out);
  return out;
}

/** The end of the data (or a battle stopped early): open orders are cancelled and positions sold at the last close, so results are realized. */
export function finish(state: SimState, series: Series, cfg: SimConfig, out: StepOut): void {
  const now = new Date(virtualTime(cfg, series, state));
  for (const order of Object.values(state.wallet.open)) {
    const e = release(state.wallet, order, now, 'cancelled', 'backtest_completed');
    apply(state.wallet, [e]);
    out.closed.push(e.order);
  }
  // In the session's pair order, so the closing fills come out in a stable, documented order.
  for (const [sym, symbol] of series.symbols.entries()) {
    const price = state.wallet.positions[symbol] ? closeAt(series, sym, lastSlot(cfg, state)) : undefined;
    if (price === undefined) continue;
    const id = derivedId(`close:${cfg.session_id}:${symbol}`);
    const d = closePosition(state.wallet, symbol, ctx(series, cfg, state, sym, price), { order_id: id, trade_id: derivedId(`trade:${id}`) });
    if (!d?.ok) continue;
    apply(state.wallet, d.events);
    record(out, d);
  }
  state.finished = true;
  const last = out.snapshots[out.snapshots.length - 1];
  const final = snapshot(series, cfg, state);
  if (last && last.t === final.t) out.snapshots[out.snapshots.length - 1] = final;
  else out.snapshots.push(final);
}

/** What a worker gets: the candles as a shared buffer (not copied), and a copy of the state to advance. */
export interface StepTask {
  buffer: SharedArrayBuffer | ArrayBuffer;
  layout: SeriesLayout;
  cfg: SimConfig;
  state: SimState;
  n: number;
}

export const runTask = (task: StepTask): StepOut => step(task.state, seriesView(task.buffer, task.layout), task.cfg, task.n);
