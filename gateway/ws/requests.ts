import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Static } from '@sinclair/typebox';
import { ApiError } from '../../schemas/errors.js';
import { PlaceOrderBody } from '../../schemas/trade.js';
import { NoParams, OpenOrdersParams, OrderRefParams, WS_METHODS } from '../../schemas/ws.js';
import type { ActionGroup, Principal } from '../../engine/identity/types.js';
import type { Engine } from '../../engine/system.js';
import { assertAction } from '../auth.js';
import { assertValid } from '../router.js';
import { balanceOf } from '../routes/account.js';
import { orderOut, placeFromBody } from '../routes/trade.js';
import { fmt, money } from '../../engine/core/money.js';

/**
 * Order entry over the socket: `{"id","method","params"}` → `{"id","status","result"}` or
 * `{"id","status","error"}`. Each method runs the same code as its REST route, so rules and codes match.
 */

const check = {
  place: TypeCompiler.Compile(PlaceOrderBody),
  ref: TypeCompiler.Compile(OrderRefParams),
  open: TypeCompiler.Compile(OpenOrdersParams),
  none: TypeCompiler.Compile(NoParams),
};

type Method = (typeof WS_METHODS)[number];

const agentOf = (p: Principal) => {
  if (!p.agent) throw new ApiError('VALIDATION_ERROR', 'Use an agent key, or connect with ?agent_id=<uuid> / send agent_id in the auth frame.', { field: 'agent_id' });
  return p.agent;
};

const METHODS: Record<Method, { group: ActionGroup; run: (engine: Engine, p: Principal, params: Record<string, unknown>) => Promise<unknown> }> = {
  'order.place': {
    group: 'trade',
    async run(engine, p, params) {
      assertValid(check.place, params, 'params');
      return orderOut(await placeFromBody(engine, p, params as Static<typeof PlaceOrderBody>));
    },
  },
  'order.cancel': {
    group: 'trade',
    async run(engine, p, params) {
      assertValid(check.ref, params, 'params');
      const o = await engine.trading.cancel(p, params.order_id as string);
      return { ...orderOut(o), unlocked_amount: o.locked_amount ?? fmt(0) };
    },
  },
  'order.status': {
    group: 'trade',
    async run(engine, p, params) {
      assertValid(check.ref, params, 'params');
      return orderOut(await engine.trading.getOrder(p, params.order_id as string));
    },
  },
  'orders.open': {
    group: 'trade',
    async run(engine, p, params) {
      assertValid(check.open, params, 'params');
      const symbol = (params.symbol as string | undefined)?.toUpperCase();
      const open = Object.values((await engine.trading.wallet(agentOf(p).id)).open)
        .filter((o) => !symbol || o.symbol === symbol)
        .sort((a, b) => b.created_at.localeCompare(a.created_at));
      return { orders: open.map(orderOut), total: open.length };
    },
  },
  'orders.cancel_all': {
    group: 'trade',
    async run(engine, p, params) {
      assertValid(check.none, params, 'params');
      const cancelled = await engine.trading.cancelAll(p);
      const unlocked = cancelled.filter((o) => o.lock_asset === 'USDT').reduce((s, o) => s.plus(o.locked_amount ?? 0), money(0));
      return { cancelled_count: cancelled.length, total_unlocked: fmt(unlocked), orders: cancelled.map(orderOut) };
    },
  },
  'account.balance': {
    group: 'account',
    async run(engine, p, params) {
      assertValid(check.none, params, 'params');
      return balanceOf(engine, p);
    },
  },
};

export async function runMethod(engine: Engine, p: Principal, method: string, params: Record<string, unknown>): Promise<unknown> {
  const m = METHODS[method as Method];
  if (!m || !Object.hasOwn(METHODS, method)) {
    throw new ApiError('UNKNOWN_ACTION', `Unknown method '${method}'. Valid methods: ${WS_METHODS.join(', ')}.`, { method });
  }
  assertAction(p, m.group);
  return m.run(engine, p, params);
}
