import { ApiError } from '../../schemas/errors.js';
import * as S from '../../schemas/backtest.js';
import { LIMITS } from '../../schemas/limits.js';
import { PlaceOrderBody } from '../../schemas/trade.js';
import { fmt, money } from '../../engine/core/money.js';
import { route } from '../router.js';
import { caller, P, positiveAmount } from './helpers.js';
import { orderOut } from './trade.js';
import { intervalMs, itemOut, orderListOut, sourceOfSession, stepOut } from './backtest-views.js';

/** Backtest lifecycle and trading at the virtual clock. Reads (market, account, results, lists) are in backtest-read.ts. */

export const B = `${P}/backtest`;

/** The fill rules, for the API page and skill.md. */
export const BACKTEST_FILL_RULES = [
  'Backtests use the live fill rules (fee, slippage, two-phase holds, side-aware triggers, a limit never fills worse than its price) on candles, without look-ahead:',
  '- The virtual clock starts at start_time (aligned down to candle_interval) and each step adds one candle_interval. At virtual time T only candles that have closed by T are visible: prices, market data, fills.',
  '- A market order placed at T fills at the close of the last candle closed by T, plus slippage and the fee. Slippage is the live formula, 0.1 × quantity / base volume of the candles closed in the 24 h before T, clamped to 0.01 %–10 %.',
  '- A resting order (limit, stop_loss, take_profit) is checked on each step against the candle that step reveals: one waiting for a fall (limit buy, stop_loss sell, take_profit buy) fires when the candle\'s low reaches its price, one waiting for a rise (limit sell, stop_loss buy, take_profit sell) when the high does. It fills at its price, or at the candle\'s open when the candle opened beyond it (a gap), plus slippage; a limit is then capped at its price. Orders a candle fires fill in the order they were placed; one whose funds no longer suffice is rejected and its hold released.',
  '- A missing candle keeps the last close and fires nothing.',
  '- After the last step the session completes: open orders are cancelled and positions sold at the last close (fee and slippage included), then metrics are computed. Cancelling stops it where it is, positions valued at the last close.',
  '- Only the risk limits the agent or account set explicitly apply (the live defaults do not); the daily loss limit counts virtual days.',
  '- Sessions are saved after every command and survive a restart; only the owner account (and, with an agent key or X-Agent-Id, only that agent) can see one.',
].join('\n');

const stepSummary = (what: string) => `${what} Answers StepResponse: virtual_time, step, total_steps, progress_pct, prices (last closes), orders_filled, portfolio, is_complete, remaining_steps, steps_executed.`;

export const backtestRoutes = [
  route({
    method: 'POST', path: `${B}/create`, auth: 'any', group: 'backtest', tag: 'backtest', body: S.CreateBody,
    summary: 'Create a backtest over stored candles for the caller\'s agent (agent key, X-Agent-Id or agent_id). pairs null = every pair with candles in the range. See the fill rules below.',
    description: BACKTEST_FILL_RULES,
    async handler({ body, principal, engine }) {
      const p = caller(principal);
      const start = Date.parse(body.start_time);
      const end = Date.parse(body.end_time);
      if (Number.isNaN(start)) throw new ApiError('VALIDATION_ERROR', 'start_time must be an ISO-8601 time.', { field: 'start_time' });
      if (Number.isNaN(end) || end <= start) throw new ApiError('VALIDATION_ERROR', 'end_time must be an ISO-8601 time after start_time.', { field: 'end_time' });
      const balance = body.starting_balance === undefined ? null : positiveAmount(body.starting_balance, 'starting_balance', LIMITS.backtest_balance_max);
      if (balance !== null && money(balance).lt(LIMITS.backtest_balance_min)) throw new ApiError('VALIDATION_ERROR', `starting_balance must be at least ${LIMITS.backtest_balance_min}.`, { field: 'starting_balance' });
      const feeRate = body.fee_rate === undefined ? null : fmt(money(body.fee_rate));
      if (feeRate !== null && money(feeRate).gt(LIMITS.fee_rate_max)) throw new ApiError('VALIDATION_ERROR', `fee_rate is a fraction between 0 and ${LIMITS.fee_rate_max}.`, { field: 'fee_rate' });
      const session = await engine.backtests.create(p, {
        start_ms: start, end_ms: end, starting_balance: balance, interval_ms: intervalMs(body.candle_interval, 60_000, 'candle_interval'),
        pairs: body.pairs ? [...new Set(body.pairs.map((s) => s.toUpperCase()))] : null, strategy_label: body.strategy_label ?? 'default',
        agent_id: body.agent_id ?? null, fee_rate: feeRate, exchange: body.exchange ?? 'binance',
      });
      return { ...itemOut(sourceOfSession(session)), estimated_pairs: session.config.pairs.length };
    },
  }),
  route({
    method: 'POST', path: `${B}/{session_id}/start`, auth: 'any', group: 'backtest', tag: 'backtest', params: S.SessionParams,
    summary: 'Load the candles and start the virtual clock at start_time. Starting a running session answers its current state.',
    async handler({ params, principal, engine }) {
      const r = await engine.backtests.start(caller(principal), params.session_id);
      return { ...itemOut(sourceOfSession(r.session)), virtual_time: new Date(r.virtual_time).toISOString(), prices: r.prices };
    },
  }),
  route({
    method: 'POST', path: `${B}/{session_id}/step`, auth: 'any', group: 'backtest', tag: 'backtest', params: S.SessionParams,
    summary: stepSummary('Advance one candle.'),
    async handler({ params, principal, engine }) {
      const r = await engine.backtests.step(caller(principal), params.session_id, 1, false);
      return stepOut(r.session, r, r.out, r.out.closed);
    },
  }),
  route({
    method: 'POST', path: `${B}/{session_id}/step/batch`, auth: 'any', group: 'backtest', tag: 'backtest', params: S.SessionParams, body: S.BatchBody,
    summary: stepSummary(`Advance up to ${LIMITS.batch_steps_max} candles (fewer at the end); orders_filled lists every order that filled or was rejected during the batch.`),
    async handler({ params, body, principal, engine }) {
      const r = await engine.backtests.step(caller(principal), params.session_id, body.steps, false);
      return stepOut(r.session, r, r.out, r.out.closed);
    },
  }),
  route({
    method: 'POST', path: `${B}/{session_id}/step/batch/fast`, auth: 'any', group: 'backtest', tag: 'backtest', params: S.SessionParams, body: S.FastBody,
    summary: stepSummary(`Advance up to ${LIMITS.fast_steps_max} candles in a worker thread; orders_filled is the last step's, or every one with include_intermediate_trades.`),
    async handler({ params, body, principal, engine }) {
      const r = await engine.backtests.step(caller(principal), params.session_id, body.steps, true);
      return stepOut(r.session, r, r.out, body.include_intermediate_trades ? r.out.closed : r.out.closed.slice(r.out.last_step_from));
    },
  }),
  route({
    method: 'POST', path: `${B}/{session_id}/cancel`, auth: 'any', group: 'backtest', tag: 'backtest', params: S.SessionParams,
    summary: 'Stop the session where it is (positions valued at the last close) and compute its results. A finished session answers as it is.',
    async handler({ params, principal, engine }) {
      return itemOut(sourceOfSession(await engine.backtests.cancel(caller(principal), params.session_id)));
    },
  }),
  route({
    method: 'POST', path: `${B}/{session_id}/trade/order`, auth: 'any', group: 'backtest', tag: 'backtest', params: S.SessionParams, body: PlaceOrderBody,
    summary: 'Place an order at the virtual clock (same body as /trade/order). A market order fills at the last close; others rest until a later candle reaches their price.',
    async handler({ params, body, principal, engine }) {
      const type = body.type ?? body.order_type ?? 'market';
      const rawPrice = body.price ?? body.trigger_price ?? body.stop_price ?? null;
      if (type === 'market' && rawPrice !== null) throw new ApiError('VALIDATION_ERROR', 'price must not be set for a market order.', { field: 'price' });
      if (type !== 'market' && rawPrice === null) throw new ApiError('VALIDATION_ERROR', `price (or trigger_price) is required for a ${type} order.`, { field: 'price' });
      const order = await engine.backtests.place(caller(principal), params.session_id, {
        symbol: body.symbol.toUpperCase(), side: body.side, type, quantity: positiveAmount(body.quantity, 'quantity'),
        price: rawPrice === null ? null : positiveAmount(rawPrice, body.price != null ? 'price' : 'trigger_price'), client_order_id: body.client_order_id ?? null,
      });
      return orderOut(order);
    },
  }),
  route({
    method: 'DELETE', path: `${B}/{session_id}/trade/order/{order_id}`, auth: 'any', group: 'backtest', tag: 'backtest', params: S.SessionOrderParams,
    summary: 'Cancel a resting order and release its hold; `cancelled` is false (and the order is answered as it is) when it was no longer open.',
    async handler({ params, principal, engine }) {
      const { order, cancelled } = await engine.backtests.cancelOrder(caller(principal), params.session_id, params.order_id);
      return { ...orderOut(order), cancelled, unlocked_amount: cancelled ? order.locked_amount ?? fmt(0) : fmt(0) };
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/trade/orders`, auth: 'any', group: 'backtest', tag: 'backtest', params: S.SessionParams,
    summary: 'Every order of the session, newest first.',
    async handler({ params, principal, engine }) {
      const s = await engine.backtests.get(caller(principal), params.session_id);
      const orders = [...s.orders.values()].reverse().map(orderListOut);
      return { orders, count: orders.length, total: orders.length };
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/trade/orders/open`, auth: 'any', group: 'backtest', tag: 'backtest', params: S.SessionParams,
    summary: 'Resting orders of the session, newest first.',
    async handler({ params, principal, engine }) {
      const s = await engine.backtests.get(caller(principal), params.session_id);
      const orders = Object.values(s.sim.wallet.open).reverse().map(orderListOut);
      return { orders, count: orders.length, total: orders.length };
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/trade/history`, auth: 'any', group: 'backtest', tag: 'backtest', params: S.SessionParams,
    summary: 'Fills of the session, newest first, with the order type and slippage; simulated_at is the virtual time of the fill.',
    async handler({ params, principal, engine }) {
      const s = await engine.backtests.get(caller(principal), params.session_id);
      const trades = [...s.trades].reverse().map((t) => {
        const o = s.orders.get(t.order_id);
        return { id: t.trade_id, ...t, type: o?.type ?? 'market', slippage_pct: o?.slippage_pct ?? null, simulated_at: t.executed_at };
      });
      return { trades, count: trades.length, total: trades.length };
    },
  }),
];

