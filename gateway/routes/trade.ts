import type { Static } from '@sinclair/typebox';
import { ApiError } from '../../schemas/errors.js';
import type { Engine } from '../../engine/system.js';
import type { Principal } from '../../engine/identity/types.js';
import * as S from '../../schemas/trade.js';
import { LIMITS } from '../../schemas/limits.js';
import { fmt, money } from '../../engine/core/money.js';
import type { OrderRec } from '../../engine/core/wallet.js';
import { fromRow, type OrderRow } from '../../engine/trading.js';
import { page } from '../../engine/store/db.js';
import { route } from '../router.js';
import { caller, iso, P, positiveAmount } from './helpers.js';

const T = `${P}/trade`;

interface TradeRow {
  id: string; order_id: string; agent_id: string; symbol: string; side: string; quantity: string; price: string;
  quote_amount: string; fee: string; realized_pnl: string | null; executed_at: Date;
}

/** Every key always present (null when it does not apply), in the union of the reference's and the client's names. */
export function orderOut(o: OrderRec) {
  return {
    order_id: o.order_id, client_order_id: o.client_order_id, status: o.status, symbol: o.symbol, side: o.side, type: o.type,
    quantity: o.quantity, requested_quantity: o.quantity, price: o.price, locked_amount: o.locked_amount,
    executed_price: o.executed_price, executed_quantity: o.executed_qty, executed_qty: o.executed_qty, slippage_pct: o.slippage_pct,
    fee: o.fee, total_cost: o.total_cost, realized_pnl: o.realized_pnl, reject_reason: o.reject_reason,
    created_at: o.created_at, filled_at: o.filled_at, cancelled_at: o.cancelled_at,
  };
}


/** The one translation of an order request (REST body or WebSocket `order.place` params) into a trading command. */
export function placeFromBody(engine: Engine, p: Principal, body: Static<typeof S.PlaceOrderBody>): Promise<OrderRec> {
  const type = body.type ?? body.order_type ?? 'market';
  const rawPrice = body.price ?? body.trigger_price ?? body.stop_price ?? null;
  if (type === 'market' && rawPrice !== null) throw new ApiError('VALIDATION_ERROR', 'price must not be set for a market order.', { field: 'price' });
  if (type !== 'market' && rawPrice === null) throw new ApiError('VALIDATION_ERROR', `price (or trigger_price) is required for a ${type} order.`, { field: 'price' });
  return engine.trading.place(p, {
    symbol: body.symbol.toUpperCase(), side: body.side, type, quantity: positiveAmount(body.quantity, 'quantity'),
    price: rawPrice === null ? null : positiveAmount(rawPrice, body.price != null ? 'price' : 'trigger_price'),
    client_order_id: body.client_order_id ?? null,
  });
}

/** Listings show the wallet the caller trades on now: an agent's battle wallet during a live battle, else its own. */
export const battleOf = (engine: Engine, p: Principal): string | null => (p.agent ? engine.trading.route(p.agent.id).battle_id : null);

export const tradeRoutes = [
  route({
    method: 'POST', path: `${T}/order`, auth: 'any', group: 'trade', tag: 'trade', status: 201, body: S.PlaceOrderBody,
    summary: 'Place a market, limit, stop_loss or take_profit order. Market orders fill at once; others hold funds and rest until a tick crosses their price. A repeated client_order_id returns the first order.',
    async handler({ body, principal, engine }) {
      return orderOut(await placeFromBody(engine, caller(principal), body));
    },
  }),
  route({
    method: 'GET', path: `${T}/order/{order_id}`, auth: 'any', group: 'trade', tag: 'trade', params: S.OrderIdParams,
    summary: 'One order of the caller (404 for anyone else\'s).',
    async handler({ params, principal, engine }) {
      return orderOut(await engine.trading.getOrder(caller(principal), params.order_id));
    },
  }),
  route({
    method: 'DELETE', path: `${T}/order/{order_id}`, auth: 'any', group: 'trade', tag: 'trade', params: S.OrderIdParams,
    summary: 'Cancel a resting order and release its hold.',
    async handler({ params, principal, engine }) {
      const o = await engine.trading.cancel(caller(principal), params.order_id);
      return { ...orderOut(o), unlocked_amount: o.locked_amount ?? fmt(0) };
    },
  }),
  route({
    method: 'GET', path: `${T}/orders/open`, auth: 'any', group: 'trade', tag: 'trade', query: S.OpenOrdersQuery,
    summary: 'Resting orders, newest first; `total` counts them all.',
    async handler({ query, principal, engine }) {
      const p = caller(principal);
      if (!p.agent) throw new ApiError('VALIDATION_ERROR', 'Use an agent key or X-Agent-Id.', { field: 'X-Agent-Id' });
      const open = Object.values((await engine.trading.wallet(p.agent.id)).open).sort((a, b) => b.created_at.localeCompare(a.created_at));
      const limit = query.limit ?? LIMITS.open_orders_page_default;
      const offset = query.offset ?? 0;
      return { orders: open.slice(offset, offset + limit).map(orderOut), total: open.length, limit, offset };
    },
  }),
  route({
    method: 'DELETE', path: `${T}/orders/open`, auth: 'any', group: 'trade', tag: 'trade',
    summary: 'Cancel every resting order of the agent.',
    async handler({ principal, engine }) {
      const cancelled = await engine.trading.cancelAll(caller(principal));
      const unlocked = cancelled.filter((o) => o.lock_asset === 'USDT').reduce((s, o) => s.plus(o.locked_amount ?? 0), money(0));
      return { cancelled_count: cancelled.length, total_unlocked: fmt(unlocked), orders: cancelled.map(orderOut) };
    },
  }),
  route({
    method: 'GET', path: `${T}/orders`, auth: 'any', group: 'trade', tag: 'trade', query: S.ListOrdersQuery,
    summary: 'Orders with filters, newest first; `total` is the true count.',
    async handler({ query, principal, engine }) {
      const p = caller(principal);
      const limit = query.limit ?? LIMITS.orders_page_default;
      const offset = query.offset ?? 0;
      const where = `a.account_id = $1 AND ($2::uuid IS NULL OR o.agent_id = $2) AND ($3::text IS NULL OR o.status = $3) AND ($4::text IS NULL OR o.symbol = $4)
        AND o.battle_id IS NOT DISTINCT FROM $5::uuid`;
      const args = [p.account.id, p.agent?.id ?? null, query.status ?? null, query.symbol?.toUpperCase() ?? null, battleOf(engine, p)];
      const { rows, total } = await page<OrderRow>(engine.db, { select: 'o.*', from: 'orders o JOIN agents a ON a.id = o.agent_id', where, order: 'o.created_at DESC, o.id' }, args, limit, offset);
      return { orders: rows.map((r) => orderOut(fromRow(r))), total, limit, offset };
    },
  }),
  route({
    method: 'GET', path: `${T}/history`, auth: 'any', group: 'trade', tag: 'trade', query: S.HistoryQuery,
    summary: 'Fills, newest first; `total` is the true count; `total` per trade is quote amount plus fee for buys, minus fee for sells.',
    async handler({ query, principal, engine }) {
      const p = caller(principal);
      const limit = query.limit ?? LIMITS.trade_history_page_default;
      const offset = query.offset ?? 0;
      const where = `a.account_id = $1 AND ($2::uuid IS NULL OR t.agent_id = $2) AND ($3::text IS NULL OR t.symbol = $3) AND ($4::text IS NULL OR t.side = $4)
        AND t.battle_id IS NOT DISTINCT FROM $5::uuid`;
      const args = [p.account.id, p.agent?.id ?? null, query.symbol?.toUpperCase() ?? null, query.side ?? null, battleOf(engine, p)];
      const { rows, total } = await page<TradeRow>(engine.db, { select: 't.*', from: 'trades t JOIN agents a ON a.id = t.agent_id', where, order: 't.executed_at DESC, t.id' }, args, limit, offset);
      return {
        trades: rows.map((t) => ({
          trade_id: t.id, order_id: t.order_id, agent_id: t.agent_id, symbol: t.symbol, side: t.side, quantity: t.quantity, price: t.price,
          quote_amount: t.quote_amount, fee: t.fee, total: fmt(t.side === 'buy' ? money(t.quote_amount).plus(t.fee) : money(t.quote_amount).minus(t.fee)),
          realized_pnl: t.realized_pnl, executed_at: iso(t.executed_at),
        })),
        total, limit, offset,
      };
    },
  }),
];
