import { Type } from '@sinclair/typebox';
import { Uuid } from './common.js';

/**
 * WebSocket frames of `/ws/v1`. Control frames carry `action` (or `type`); order-entry requests carry
 * `id` + `method` + `params`, in the shape of Binance's WebSocket API.
 */

const Symbol = Type.String({ minLength: 1, maxLength: 24 });

/** `{"channel":"ticker","symbol":"BTCUSDT"}` and `{"channel":"ticker:BTCUSDT"}` are both accepted. */
export const SubscribeFrame = Type.Object({
  action: Type.Optional(Type.String()),
  type: Type.Optional(Type.String()),
  channel: Type.String({ minLength: 1, maxLength: 128 }),
  symbol: Type.Optional(Symbol),
  interval: Type.Optional(Type.String({ maxLength: 8 })),
  battle_id: Type.Optional(Type.String({ maxLength: 64 })),
  agent_id: Type.Optional(Uuid),
});

export const AuthFrame = Type.Object({
  action: Type.Optional(Type.String()),
  type: Type.Optional(Type.String()),
  api_key: Type.String({ minLength: 1, maxLength: 256 }),
  agent_id: Type.Optional(Uuid),
});

export const WS_METHODS = ['order.place', 'order.cancel', 'order.status', 'orders.open', 'orders.cancel_all', 'account.balance'] as const;

export const RequestFrame = Type.Object({
  id: Type.Union([Type.String({ maxLength: 128 }), Type.Integer()]),
  method: Type.String({ maxLength: 64 }),
  params: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

export const OrderRefParams = Type.Object({ order_id: Uuid });
export const OpenOrdersParams = Type.Object({ symbol: Type.Optional(Symbol) });
export const NoParams = Type.Object({});
