/**
 * Wallet state and its events. Events carry the resulting values (balances, position, order), so applying
 * one is a plain assignment: replaying a journal rebuilds exactly the state that was acknowledged.
 * Amounts are decimal strings here (the persisted form); arithmetic happens in orders.ts with Decimal.
 */
export type Side = 'buy' | 'sell';
export type OrderType = 'market' | 'limit' | 'stop_loss' | 'take_profit';
export type OrderStatus = 'pending' | 'filled' | 'cancelled' | 'rejected';

export interface OrderRec {
  order_id: string;
  client_order_id: string | null;
  symbol: string;
  side: Side;
  type: OrderType;
  quantity: string;
  price: string | null;
  status: OrderStatus;
  locked_amount: string | null;
  lock_asset: string | null;
  executed_price: string | null;
  executed_qty: string | null;
  slippage_pct: string | null;
  fee: string | null;
  total_cost: string | null;
  realized_pnl: string | null;
  reject_reason: string | null;
  created_at: string;
  filled_at: string | null;
  cancelled_at: string | null;
}

export interface TradeRec {
  trade_id: string;
  order_id: string;
  symbol: string;
  side: Side;
  quantity: string;
  price: string;
  quote_amount: string;
  fee: string;
  realized_pnl: string | null;
  executed_at: string;
}

export interface BalanceRec {
  available: string;
  locked: string;
}

export interface PositionRec {
  symbol: string;
  quantity: string;
  avg_entry_price: string;
  total_cost: string;
  realized_pnl: string;
  opened_at: string;
}

export interface WalletState {
  agent_id: string;
  session_id: string | null;
  starting_balance: string;
  balances: Record<string, BalanceRec>;
  positions: Record<string, PositionRec>;
  open: Record<string, OrderRec>;
  /** client_order_id → order_id (idempotent retries): for life in backtests and battle sims; a live wallet keeps the newest in this map and the rest in a filter (engine/trading.ts). */
  client_ids: Record<string, string>;
  realized_total: string;
  /** Realized PnL of one UTC day (the daily loss limit's input). */
  day: { date: string; realized: string };
  trade_count: number;
}

export type WalletEvent =
  | { type: 'wallet.funded' | 'wallet.reset'; asset: string; amount: string; session_id: string; at?: string }
  | { type: 'order.placed'; order: OrderRec; balances: Record<string, BalanceRec> }
  | { type: 'order.cancelled' | 'order.rejected'; order: OrderRec; balances: Record<string, BalanceRec> }
  | { type: 'order.filled'; order: OrderRec; trade: TradeRec; balances: Record<string, BalanceRec>; position: PositionRec; realized_total: string; day: { date: string; realized: string } };

export function emptyWallet(agentId: string): WalletState {
  return {
    agent_id: agentId, session_id: null, starting_balance: '0', balances: {}, positions: {}, open: {}, client_ids: {},
    realized_total: '0', day: { date: '', realized: '0' }, trade_count: 0,
  };
}

const ZERO = /^0(\.0+)?$/;
export const isZero = (s: string): boolean => ZERO.test(s);

/** Applies one event in place and returns the same state. */
export function applyEvent(s: WalletState, e: WalletEvent): WalletState {
  switch (e.type) {
    case 'wallet.funded':
    case 'wallet.reset':
      if (e.type === 'wallet.reset') {
        s.balances = {};
        s.positions = {};
        s.open = {};
      }
      s.balances[e.asset] = { available: e.amount, locked: '0' };
      s.session_id = e.session_id;
      s.starting_balance = e.amount;
      return s;
    case 'order.placed':
      s.open[e.order.order_id] = e.order;
      if (e.order.client_order_id) s.client_ids[e.order.client_order_id] = e.order.order_id;
      Object.assign(s.balances, e.balances);
      return s;
    case 'order.cancelled':
    case 'order.rejected':
      delete s.open[e.order.order_id];
      if (e.order.client_order_id) s.client_ids[e.order.client_order_id] = e.order.order_id;
      Object.assign(s.balances, e.balances);
      return s;
    case 'order.filled':
      delete s.open[e.order.order_id];
      if (e.order.client_order_id) s.client_ids[e.order.client_order_id] = e.order.order_id;
      Object.assign(s.balances, e.balances);
      if (isZero(e.position.quantity)) delete s.positions[e.position.symbol];
      else s.positions[e.position.symbol] = e.position;
      s.realized_total = e.realized_total;
      s.day = e.day;
      s.trade_count += 1;
      return s;
  }
}
