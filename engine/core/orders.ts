import { Decimal } from 'decimal.js';
import type { ErrorCode } from '../../schemas/errors.js';
import type { Pair } from '../market/types.js';
import { fmt, money, Money } from './money.js';
import type { RiskProfile } from './risk-profile.js';
import type { BalanceRec, OrderRec, PositionRec, Side, WalletEvent, WalletState } from './wallet.js';

/** The rules of order placement, fills and cancels: pure functions from state and inputs to events. */
export const QUOTE = 'USDT';
export const SLIPPAGE_MIN = money('0.0001');
export const SLIPPAGE_MAX = money('0.1');
export const SLIPPAGE_FACTOR = money('0.1');

export interface MarketCtx {
  pair: Pair;
  /** Current reference price of the order's symbol. */
  price: string;
  /** Rolling 24 h base volume of the symbol ('0' when unknown). */
  volume24h: string;
  fee_rate: string;
  now: Date;
  priceOf(symbol: string): string | undefined;
}

export interface PlaceInput {
  order_id: string;
  trade_id: string;
  client_order_id: string | null;
  symbol: string;
  side: Side;
  type: OrderRec['type'];
  quantity: string;
  price: string | null;
}

export type Rejection = { ok: false; code: ErrorCode; message: string; details: Record<string, unknown> };
export type Decision = { ok: true; events: WalletEvent[]; order: OrderRec } | Rejection;

const reject = (code: ErrorCode, message: string, details: Record<string, unknown> = {}): Rejection => ({ ok: false, code, message, details });
const riskReject = (reason: string, message: string, details: Record<string, unknown> = {}) => reject('ORDER_REJECTED', message, { reason, ...details });

const bal = (s: WalletState, asset: string) => s.balances[asset] ?? { available: '0', locked: '0' };
const baseOf = (p: Pair) => p.base_asset;
const utcDay = (d: Date) => d.toISOString().slice(0, 10);

/** Cash plus every position at its current price (its average entry price when unpriced). */
export function equity(s: WalletState, priceOf: (symbol: string) => string | undefined): Decimal {
  const c = bal(s, QUOTE);
  let total = money(c.available).plus(c.locked);
  for (const p of Object.values(s.positions)) total = total.plus(money(p.quantity).times(priceOf(p.symbol) ?? p.avg_entry_price));
  return total;
}

/** Size-based slippage: 0.1 × order size / 24 h volume, clamped to [0.01 %, 10 %]. */
export function slippage(qty: Decimal, volume24h: string): Decimal {
  const v = money(volume24h);
  if (v.lte(0)) return SLIPPAGE_MIN;
  return Decimal.min(SLIPPAGE_MAX, Decimal.max(SLIPPAGE_MIN, SLIPPAGE_FACTOR.times(qty).div(v)));
}

/** The hold for a resting order: buys hold quote at the order price plus fee, sells hold the base quantity. */
export function holdFor(side: Side, qty: Decimal, price: Decimal, feeRate: Decimal): Decimal {
  return side === 'buy' ? qty.times(price).times(feeRate.plus(1)).toDecimalPlaces(8, Decimal.ROUND_UP) : qty;
}

function checkQuantity(pair: Pair, qty: Decimal, notionalPrice: Decimal): Rejection | null {
  if (qty.lt(pair.min_qty)) return reject('INVALID_QUANTITY', `Quantity is below the minimum ${pair.min_qty}.`, { quantity: fmt(qty), min_qty: pair.min_qty });
  const step = money(pair.step_size);
  if (step.gt(0) && !qty.mod(step).isZero()) return reject('INVALID_QUANTITY', `Quantity must be a multiple of the step size ${pair.step_size}.`, { quantity: fmt(qty), step_size: pair.step_size });
  const notional = qty.times(notionalPrice);
  if (notional.lt(pair.min_notional)) return reject('INVALID_QUANTITY', `Order value ${fmt(notional)} is below the minimum notional ${pair.min_notional}.`, { notional: fmt(notional), min_notional: pair.min_notional });
  return null;
}

/** Risk limits, in order; the first failure rejects. `recent` = orders accepted in the last minute. */
export function checkRisk(s: WalletState, input: PlaceInput, m: MarketCtx, risk: RiskProfile, recent: number): Rejection | null {
  const day = utcDay(m.now);
  const lossToday = s.day.date === day ? money(s.day.realized) : money(0);
  const lossLimit = money(s.starting_balance).times(risk.daily_loss_limit_pct).div(100);
  if (lossToday.lt(0) && lossToday.abs().gte(lossLimit)) {
    return reject('DAILY_LOSS_LIMIT', 'Daily loss limit reached: trading is halted until 00:00 UTC.', { realized_today: fmt(lossToday), limit: fmt(lossLimit) });
  }
  if (recent >= risk.order_rate_limit) return riskReject('rate_limit_exceeded', `At most ${risk.order_rate_limit} orders per minute.`, { limit: risk.order_rate_limit });
  const qty = money(input.quantity);
  const est = qty.times(m.price);
  if (est.lt(risk.min_order_size_usd)) return riskReject('order_too_small', `Order value ${fmt(est)} USDT is below the minimum ${risk.min_order_size_usd} USDT.`);
  const eq = equity(s, m.priceOf);
  if (est.gt(eq.times(risk.max_order_size_pct).div(100))) {
    return riskReject('order_too_large', `Order value ${fmt(est)} USDT exceeds ${risk.max_order_size_pct}% of equity ${fmt(eq)} USDT.`);
  }
  if (input.side === 'buy') {
    const held = money(s.positions[input.symbol]?.quantity ?? 0).times(m.price);
    const pct = eq.gt(0) ? held.plus(est).div(eq).times(100) : money(100);
    if (pct.gt(risk.max_position_size_pct)) {
      return riskReject('position_limit_exceeded', `${input.symbol} position would be ${pct.toFixed(2)}% of equity (limit ${risk.max_position_size_pct}%).`, { position_pct: pct.toFixed(2) });
    }
  }
  if (input.type !== 'market' && Object.keys(s.open).length >= risk.max_open_orders) {
    return riskReject('max_open_orders_exceeded', `At most ${risk.max_open_orders} open orders.`, { limit: risk.max_open_orders });
  }
  return null;
}

const insufficient = (asset: string, required: Decimal, available: string) =>
  reject('INSUFFICIENT_BALANCE', `Not enough ${asset}. Required: ${fmt(required)}, Available: ${fmt(available)}`, { asset, required: fmt(required), available: fmt(available) });

function newOrder(input: PlaceInput, now: Date): OrderRec {
  return {
    order_id: input.order_id, client_order_id: input.client_order_id, symbol: input.symbol, side: input.side, type: input.type,
    quantity: fmt(input.quantity), price: input.price === null ? null : fmt(input.price), status: 'pending', locked_amount: null, lock_asset: null,
    executed_price: null, executed_qty: null, slippage_pct: null, fee: null, total_cost: null, realized_pnl: null, reject_reason: null,
    created_at: now.toISOString(), filled_at: null, cancelled_at: null,
  };
}

/** Validates and places an order: a market order fills at once; others hold funds and rest. */
export function placeOrder(s: WalletState, input: PlaceInput, m: MarketCtx, risk: RiskProfile, recent: number): Decision {
  const qty = money(input.quantity);
  const limit = input.price === null ? null : money(input.price);
  const bad = checkQuantity(m.pair, qty, limit ?? money(m.price)) ?? checkRisk(s, input, m, risk, recent);
  if (bad) return bad;
  const order = newOrder(input, m.now);
  if (input.type === 'market') return fill(s, order, m, input.trade_id);
  const feeRate = money(m.fee_rate);
  const asset = input.side === 'buy' ? QUOTE : baseOf(m.pair);
  const hold = holdFor(input.side, qty, limit!, feeRate);
  const b = bal(s, asset);
  if (money(b.available).lt(hold)) return insufficient(asset, hold, b.available);
  order.locked_amount = fmt(hold);
  order.lock_asset = asset;
  const balances = { [asset]: { available: fmt(money(b.available).minus(hold)), locked: fmt(money(b.locked).plus(hold)) } };
  return { ok: true, order, events: [{ type: 'order.placed', order, balances }] };
}


/**
 * Fills an order at the reference price with slippage and fee. A resting order pays from its hold and
 * gets back what the hold did not use; a limit never fills worse than its price.
 */
export function fill(s: WalletState, order: OrderRec, m: MarketCtx, tradeId: string): Decision {
  const qty = money(order.quantity);
  const feeRate = money(m.fee_rate);
  const frac = slippage(qty, m.volume24h);
  const ref = money(m.price);
  let exec = (order.side === 'buy' ? ref.times(frac.plus(1)) : ref.times(money(1).minus(frac))).toDecimalPlaces(8, Decimal.ROUND_HALF_UP);
  if (order.type === 'limit' && order.price !== null) exec = order.side === 'buy' ? Decimal.min(exec, order.price) : Decimal.max(exec, order.price);
  const gross = qty.times(exec).toDecimalPlaces(8, Decimal.ROUND_HALF_UP);
  const fee = gross.times(feeRate).toDecimalPlaces(8, Decimal.ROUND_HALF_UP);
  const base = baseOf(m.pair);
  const cash = bal(s, QUOTE);
  const coin = bal(s, base);
  const hold = order.locked_amount === null ? money(0) : money(order.locked_amount);
  const pos = s.positions[order.symbol];
  const posQty = money(pos?.quantity ?? 0);
  const posCost = money(pos?.total_cost ?? 0);
  const now = m.now.toISOString();
  let balances: Record<string, BalanceRec>;
  let position: PositionRec;
  let realized: Decimal | null = null;
  if (order.side === 'buy') {
    const cost = gross.plus(fee);
    const available = money(cash.available).plus(hold).minus(cost);
    if (available.lt(0)) return insufficient(QUOTE, cost, fmt(money(cash.available).plus(hold)));
    balances = {
      [QUOTE]: { available: fmt(available), locked: fmt(money(cash.locked).minus(hold)) },
      [base]: { available: fmt(money(coin.available).plus(qty)), locked: coin.locked },
    };
    const newQty = posQty.plus(qty);
    const newCost = posCost.plus(cost);
    position = {
      symbol: order.symbol, quantity: fmt(newQty), total_cost: fmt(newCost), avg_entry_price: fmt(newCost.div(newQty)),
      realized_pnl: pos?.realized_pnl ?? fmt(0), opened_at: pos?.opened_at ?? now,
    };
  } else {
    const fromLock = order.locked_amount !== null;
    const free = money(coin.available);
    if (!fromLock && free.lt(qty)) return insufficient(base, qty, coin.available);
    balances = {
      [QUOTE]: { available: fmt(money(cash.available).plus(gross).minus(fee)), locked: cash.locked },
      [base]: fromLock
        ? { available: coin.available, locked: fmt(money(coin.locked).minus(qty)) }
        : { available: fmt(free.minus(qty)), locked: coin.locked },
    };
    const avg = money(pos?.avg_entry_price ?? exec);
    realized = exec.minus(avg).times(qty).minus(fee).toDecimalPlaces(8, Decimal.ROUND_HALF_UP);
    const newQty = Decimal.max(0, posQty.minus(qty));
    position = {
      symbol: order.symbol, quantity: fmt(newQty), total_cost: fmt(newQty.times(avg)), avg_entry_price: fmt(avg),
      realized_pnl: fmt(money(pos?.realized_pnl ?? 0).plus(realized)), opened_at: pos?.opened_at ?? now,
    };
  }
  const filled: OrderRec = {
    ...order, status: 'filled', executed_price: fmt(exec), executed_qty: fmt(qty), slippage_pct: frac.times(100).toFixed(6, Decimal.ROUND_HALF_UP),
    fee: fmt(fee), total_cost: fmt(order.side === 'buy' ? gross.plus(fee) : gross.minus(fee)),
    realized_pnl: realized === null ? null : fmt(realized), filled_at: now,
  };
  const date = utcDay(m.now);
  const dayRealized = (s.day.date === date ? money(s.day.realized) : money(0)).plus(realized ?? 0);
  return {
    ok: true,
    order: filled,
    events: [{
      type: 'order.filled', order: filled, balances, position,
      trade: { trade_id: tradeId, order_id: order.order_id, symbol: order.symbol, side: order.side, quantity: fmt(qty), price: fmt(exec), quote_amount: fmt(gross), fee: fmt(fee), realized_pnl: filled.realized_pnl, executed_at: now },
      realized_total: fmt(money(s.realized_total).plus(realized ?? 0)),
      day: { date, realized: fmt(dayRealized) },
    }],
  };
}

/**
 * Sells a whole position at market, as a reset does before it restores the starting balance: no risk or
 * size checks (closing is always allowed), same slippage, fee and realized PnL as any market sell.
 */
export function closePosition(s: WalletState, symbol: string, m: MarketCtx, ids: { order_id: string; trade_id: string }): Decision | null {
  const pos = s.positions[symbol];
  if (!pos || money(pos.quantity).lte(0)) return null;
  const order = newOrder({ ...ids, client_order_id: null, symbol, side: 'sell', type: 'market', quantity: pos.quantity, price: null }, m.now);
  return fill(s, order, m, ids.trade_id);
}

/** Releases a resting order's hold; `rejected` marks a triggered order that could not be paid for. */
export function release(s: WalletState, order: OrderRec, now: Date, status: 'cancelled' | 'rejected', reason: string | null = null): Extract<WalletEvent, { type: 'order.cancelled' | 'order.rejected' }> {
  const balances: Record<string, BalanceRec> = {};
  if (order.lock_asset && order.locked_amount) {
    const b = bal(s, order.lock_asset);
    balances[order.lock_asset] = { available: fmt(money(b.available).plus(order.locked_amount)), locked: fmt(money(b.locked).minus(order.locked_amount)) };
  }
  const done: OrderRec = { ...order, status, cancelled_at: now.toISOString(), reject_reason: reason };
  return { type: status === 'cancelled' ? 'order.cancelled' : 'order.rejected', order: done, balances };
}

/** Whether a tick at `price` fires a resting order, side-aware. */
export function triggers(order: Pick<OrderRec, 'type' | 'side' | 'price'>, price: string): boolean {
  if (order.price === null || order.type === 'market') return false;
  const p = new Money(price);
  const fallsTo = p.lte(order.price);
  const risesTo = p.gte(order.price);
  switch (order.type) {
    case 'limit':
      return order.side === 'buy' ? fallsTo : risesTo;
    case 'stop_loss':
      return order.side === 'sell' ? fallsTo : risesTo;
    case 'take_profit':
      return order.side === 'sell' ? risesTo : fallsTo;
  }
}

/** The direction a resting order waits for: 'down' fires when price ≤ level, 'up' when price ≥ level. */
export function triggerDirection(order: Pick<OrderRec, 'type' | 'side'>): 'down' | 'up' {
  const down = (order.type === 'limit' && order.side === 'buy') || (order.type === 'stop_loss' && order.side === 'sell') || (order.type === 'take_profit' && order.side === 'buy');
  return down ? 'down' : 'up';
}
