import { Type } from '@sinclair/typebox';
import { Uuid } from './common.js';
import { LIMITS as L } from './limits.js';

/**
 * WebSocket frames of `/ws/v1`. Control frames carry `action` (or `type`); order-entry requests carry
 * `id` + `method` + `params`, in the shape of Binance's WebSocket API.
 */

const Symbol = Type.String({ minLength: 1, maxLength: L.ws_symbol_chars_max });

/** `{"channel":"ticker","symbol":"BTCUSDT"}` and `{"channel":"ticker:BTCUSDT"}` are both accepted. */
export const SubscribeFrame = Type.Object({
  action: Type.Optional(Type.String()),
  type: Type.Optional(Type.String()),
  channel: Type.String({ minLength: 1, maxLength: L.ws_channel_chars_max }),
  symbol: Type.Optional(Symbol),
  interval: Type.Optional(Type.String({ maxLength: L.interval_chars_max })),
  battle_id: Type.Optional(Type.String({ maxLength: L.ws_battle_id_chars_max })),
  agent_id: Type.Optional(Uuid),
});

export const AuthFrame = Type.Object({
  action: Type.Optional(Type.String()),
  type: Type.Optional(Type.String()),
  api_key: Type.String({ minLength: 1, maxLength: L.ws_api_key_chars_max }),
  agent_id: Type.Optional(Uuid),
});

export const WS_METHODS = ['order.place', 'order.cancel', 'order.status', 'orders.open', 'orders.cancel_all', 'account.balance'] as const;

export const RequestFrame = Type.Object({
  id: Type.Union([Type.String({ maxLength: L.ws_request_id_chars_max }), Type.Integer()]),
  method: Type.String({ maxLength: L.ws_method_chars_max }),
  params: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

export const OrderRefParams = Type.Object({ order_id: Uuid });
export const OpenOrdersParams = Type.Object({ symbol: Type.Optional(Symbol) });
export const NoParams = Type.Object({});
