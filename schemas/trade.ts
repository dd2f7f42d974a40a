import { Type } from '@sinclair/typebox';
import { Amount, Nullable, Offset, SymbolName as Symbol, Uuid } from './common.js';
import { LIMITS as L } from './limits.js';

const OrderTypeName = Type.Union([Type.Literal('market'), Type.Literal('limit'), Type.Literal('stop_loss'), Type.Literal('take_profit')]);
const SideName = Type.Union([Type.Literal('buy'), Type.Literal('sell')]);

/** Accepts `type` or `order_type`, and `price`, `trigger_price` or `stop_price` for the trigger price. */
export const PlaceOrderBody = Type.Object({
  symbol: Symbol,
  side: SideName,
  type: Type.Optional(OrderTypeName),
  order_type: Type.Optional(OrderTypeName),
  quantity: Amount,
  price: Type.Optional(Nullable(Amount)),
  trigger_price: Type.Optional(Nullable(Amount)),
  stop_price: Type.Optional(Nullable(Amount)),
  client_order_id: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: L.client_order_id_chars_max, pattern: '^[A-Za-z0-9._:-]+$' }))),
});

export const OrderIdParams = Type.Object({ order_id: Uuid });

export const ListOrdersQuery = Type.Object({
  status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('filled'), Type.Literal('cancelled'), Type.Literal('rejected')])),
  symbol: Type.Optional(Symbol),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.orders_page_max })),
  offset: Type.Optional(Offset),
});

export const OpenOrdersQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.open_orders_page_max })),
  offset: Type.Optional(Offset),
});

export const HistoryQuery = Type.Object({
  symbol: Type.Optional(Symbol),
  side: Type.Optional(SideName),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.trade_history_page_max })),
  offset: Type.Optional(Offset),
});

export const PnlQuery = Type.Object({
  period: Type.Optional(Type.Union([Type.Literal('1d'), Type.Literal('7d'), Type.Literal('30d'), Type.Literal('all')])),
});

export const ResetBody = Type.Object({
  confirm: Type.Optional(Type.Boolean()),
  new_starting_balance: Type.Optional(Amount),
  starting_balance: Type.Optional(Amount),
});
