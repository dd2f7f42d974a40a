import type { Queryable } from './db.js';
import type { JournalEvent } from './journal.js';
import type { BalanceRec, OrderRec, WalletEvent } from '../core/wallet.js';

/**
 * Keeps the queryable tables (orders, trades, balances, positions) in step with wallet events, inside the
 * journal's own commit: what is durable in the journal is exactly what the tables show.
 */
export async function projectWalletEvents(q: Queryable, events: readonly JournalEvent[]): Promise<void> {
  for (const je of events) {
    const e = je.payload as WalletEvent;
    const agent = je.stream;
    switch (e.type) {
      case 'order.placed':
        await upsertOrder(q, agent, e.order);
        await upsertBalances(q, agent, e.balances);
        break;
      case 'order.cancelled':
      case 'order.rejected':
        await upsertOrder(q, agent, e.order);
        await upsertBalances(q, agent, e.balances);
        break;
      case 'order.filled': {
        await upsertOrder(q, agent, e.order);
        const t = e.trade;
        await q.query(
          `INSERT INTO trades (id, order_id, agent_id, symbol, side, quantity, price, quote_amount, fee, realized_pnl, executed_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
          [t.trade_id, t.order_id, agent, t.symbol, t.side, t.quantity, t.price, t.quote_amount, t.fee, t.realized_pnl, t.executed_at],
        );
        await upsertBalances(q, agent, e.balances);
        const p = e.position;
        await q.query(
          `INSERT INTO positions (agent_id, symbol, quantity, avg_entry_price, total_cost, realized_pnl, opened_at, updated_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
           ON CONFLICT (agent_id, symbol) DO UPDATE SET quantity = $3, avg_entry_price = $4, total_cost = $5, realized_pnl = $6, opened_at = $7, updated_at = $8`,
          [agent, p.symbol, p.quantity, p.avg_entry_price, p.total_cost, p.realized_pnl, p.opened_at, t.executed_at],
        );
        break;
      }
      default:
        break; // wallet.funded / wallet.reset rows are written with their own transaction (identity service)
    }
  }
}

async function upsertOrder(q: Queryable, agent: string, o: OrderRec): Promise<void> {
  await q.query(
    `INSERT INTO orders (id, agent_id, client_order_id, symbol, side, type, quantity, price, status, locked_amount,
       executed_price, executed_qty, slippage_pct, fee, reject_reason, created_at, filled_at, cancelled_at)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)
     ON CONFLICT (id) DO UPDATE SET status = $9, executed_price = $11, executed_qty = $12, slippage_pct = $13, fee = $14,
       reject_reason = $15, filled_at = $17, cancelled_at = $18`,
    [o.order_id, agent, o.client_order_id, o.symbol, o.side, o.type, o.quantity, o.price, o.status, o.locked_amount,
      o.executed_price, o.executed_qty, o.slippage_pct, o.fee, o.reject_reason, o.created_at, o.filled_at, o.cancelled_at],
  );
}

async function upsertBalances(q: Queryable, agent: string, balances: Record<string, BalanceRec>): Promise<void> {
  for (const [asset, b] of Object.entries(balances)) {
    await q.query(
      `INSERT INTO balances (agent_id, asset, available, locked, updated_at) VALUES ($1,$2,$3,$4, now())
       ON CONFLICT (agent_id, asset) DO UPDATE SET available = $3, locked = $4, updated_at = now()`,
      [agent, asset, b.available, b.locked],
    );
  }
}
