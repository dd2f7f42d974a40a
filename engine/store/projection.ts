import type { Queryable } from './db.js';
import type { JournalEvent } from './journal.js';
import { parseStream } from './streams.js';
import type { BalanceRec, OrderRec, PositionRec, TradeRec, WalletEvent } from '../core/wallet.js';

/**
 * Keeps the queryable tables (orders, trades, balances, positions) in step with wallet events, inside the
 * journal's own commit: what is durable in the journal is exactly what the tables show. A batch is folded
 * first (the last state of each order, balance and position wins), then written with one bulk statement
 * per table, so a commit costs the same few statements however many events it carries.
 */
export async function projectWalletEvents(q: Queryable, events: readonly JournalEvent[]): Promise<void> {
  const orders = new Map<string, [Owner, OrderRec]>();
  const balances = new Map<string, [string, string, BalanceRec]>();
  const positions = new Map<string, [string, PositionRec, string]>();
  const trades: Array<[Owner, TradeRec]> = [];
  for (const je of events) {
    const e = je.payload as WalletEvent;
    if (!('order' in e)) continue; // wallet.funded / wallet.reset rows are written in their own transaction (identity service)
    const owner = parseStream(je.stream);
    orders.set(e.order.order_id, [owner, e.order]);
    if (e.type === 'order.filled') trades.push([owner, e.trade]);
    // Balances and positions tables describe main wallets; a battle wallet's live in its journal stream.
    if (owner.battle_id !== null) continue;
    const agent = owner.agent_id;
    for (const [asset, b] of Object.entries(e.balances)) balances.set(`${agent}/${asset}`, [agent, asset, b]);
    if (e.type === 'order.filled') positions.set(`${agent}/${e.position.symbol}`, [agent, e.position, e.trade.executed_at]);
  }
  if (orders.size > 0) await upsertOrders(q, [...orders.values()]);
  if (trades.length > 0) await insertTrades(q, trades);
  if (balances.size > 0) await upsertBalances(q, [...balances.values()]);
  if (positions.size > 0) await upsertPositions(q, [...positions.values()]);
}

const cols = <T>(rows: T[], ...pick: Array<(r: T) => unknown>) => pick.map((f) => rows.map(f));

type Owner = { agent_id: string; battle_id: string | null };

function upsertOrders(q: Queryable, rows: Array<[Owner, OrderRec]>) {
  return q.query(
    `INSERT INTO orders (id, agent_id, client_order_id, symbol, side, type, quantity, price, status, locked_amount,
       executed_price, executed_qty, slippage_pct, fee, reject_reason, created_at, filled_at, cancelled_at, battle_id)
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::numeric[], $8::numeric[],
       $9::text[], $10::numeric[], $11::numeric[], $12::numeric[], $13::numeric[], $14::numeric[], $15::text[],
       $16::timestamptz[], $17::timestamptz[], $18::timestamptz[], $19::uuid[])
     ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, executed_price = EXCLUDED.executed_price,
       executed_qty = EXCLUDED.executed_qty, slippage_pct = EXCLUDED.slippage_pct, fee = EXCLUDED.fee,
       reject_reason = EXCLUDED.reject_reason, filled_at = EXCLUDED.filled_at, cancelled_at = EXCLUDED.cancelled_at`,
    cols(rows,
      ([, o]) => o.order_id, ([w]) => w.agent_id, ([, o]) => o.client_order_id, ([, o]) => o.symbol, ([, o]) => o.side, ([, o]) => o.type,
      ([, o]) => o.quantity, ([, o]) => o.price, ([, o]) => o.status, ([, o]) => o.locked_amount, ([, o]) => o.executed_price,
      ([, o]) => o.executed_qty, ([, o]) => o.slippage_pct, ([, o]) => o.fee, ([, o]) => o.reject_reason, ([, o]) => o.created_at,
      ([, o]) => o.filled_at, ([, o]) => o.cancelled_at, ([w]) => w.battle_id),
  );
}

function insertTrades(q: Queryable, rows: Array<[Owner, TradeRec]>) {
  return q.query(
    `INSERT INTO trades (id, order_id, agent_id, symbol, side, quantity, price, quote_amount, fee, realized_pnl, executed_at, battle_id)
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::numeric[], $7::numeric[], $8::numeric[],
       $9::numeric[], $10::numeric[], $11::timestamptz[], $12::uuid[])`,
    cols(rows,
      ([, t]) => t.trade_id, ([, t]) => t.order_id, ([w]) => w.agent_id, ([, t]) => t.symbol, ([, t]) => t.side, ([, t]) => t.quantity,
      ([, t]) => t.price, ([, t]) => t.quote_amount, ([, t]) => t.fee, ([, t]) => t.realized_pnl, ([, t]) => t.executed_at, ([w]) => w.battle_id),
  );
}

function upsertBalances(q: Queryable, rows: Array<[string, string, BalanceRec]>) {
  return q.query(
    `INSERT INTO balances (agent_id, asset, available, locked, updated_at)
     SELECT a, s, av, l, now() FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::numeric[]) AS u(a, s, av, l)
     ON CONFLICT (agent_id, asset) DO UPDATE SET available = EXCLUDED.available, locked = EXCLUDED.locked, updated_at = now()`,
    cols(rows, ([a]) => a, ([, s]) => s, ([, , b]) => b.available, ([, , b]) => b.locked),
  );
}

function upsertPositions(q: Queryable, rows: Array<[string, PositionRec, string]>) {
  return q.query(
    `INSERT INTO positions (agent_id, symbol, quantity, avg_entry_price, total_cost, realized_pnl, opened_at, updated_at)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[], $7::timestamptz[], $8::timestamptz[])
     ON CONFLICT (agent_id, symbol) DO UPDATE SET quantity = EXCLUDED.quantity, avg_entry_price = EXCLUDED.avg_entry_price,
       total_cost = EXCLUDED.total_cost, realized_pnl = EXCLUDED.realized_pnl, opened_at = EXCLUDED.opened_at, updated_at = EXCLUDED.updated_at`,
    cols(rows,
      ([a]) => a, ([, p]) => p.symbol, ([, p]) => p.quantity, ([, p]) => p.avg_entry_price, ([, p]) => p.total_cost,
      ([, p]) => p.realized_pnl, ([, p]) => p.opened_at, ([, , at]) => at),
  );
}
