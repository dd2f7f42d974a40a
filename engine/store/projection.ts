import type { Projector } from './journal.js';

/**
 * Keeps the queryable tables (orders, trades, balances, positions) in step with wallet events, in the
 * journal's own statement: what is durable in the journal is exactly what the tables show. The rows are
 * read in SQL from the journal batch itself (`$1`, a JSON array of {s: stream, t: type, p: payload}), so the
 * data crosses to the database once. Within a batch the last state of each order, balance and position wins.
 * Balances and positions describe main wallets only; a battle wallet (stream `<battle>:<agent>`) lives in its
 * journal stream, while its orders and trades are kept with their battle_id.
 */
export const projectWalletEvents: Projector = () => ({ ctes: [EVENTS, ORDERS, TRADES, BALANCES, POSITIONS], params: [] });

const EVENTS = `ev AS (
  SELECT a.n, a.e->>'t' AS t, a.e->'p' AS p,
    CASE WHEN strpos(a.e->>'s', ':') > 0 THEN split_part(a.e->>'s', ':', 2) ELSE a.e->>'s' END::uuid AS agent_id,
    CASE WHEN strpos(a.e->>'s', ':') > 0 THEN split_part(a.e->>'s', ':', 1)::uuid END AS battle_id
  FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(e, n)
  WHERE a.e->>'t' IN ('order.placed', 'order.cancelled', 'order.rejected', 'order.filled'))`;

const ORDERS = `o AS (INSERT INTO orders (id, agent_id, client_order_id, symbol, side, type, quantity, price, status, locked_amount,
    executed_price, executed_qty, slippage_pct, fee, reject_reason, created_at, filled_at, cancelled_at, battle_id)
  SELECT DISTINCT ON (x.order_id) x.order_id, ev.agent_id, x.client_order_id, x.symbol, x.side, x.type, x.quantity, x.price, x.status,
    x.locked_amount, x.executed_price, x.executed_qty, x.slippage_pct, x.fee, x.reject_reason, x.created_at, x.filled_at, x.cancelled_at, ev.battle_id
  FROM ev, jsonb_to_record(ev.p->'order') AS x(order_id uuid, client_order_id text, symbol text, side text, type text, quantity numeric,
    price numeric, status text, locked_amount numeric, executed_price numeric, executed_qty numeric, slippage_pct numeric, fee numeric,
    reject_reason text, created_at timestamptz, filled_at timestamptz, cancelled_at timestamptz)
  ORDER BY x.order_id, ev.n DESC
  ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, executed_price = EXCLUDED.executed_price, executed_qty = EXCLUDED.executed_qty,
    slippage_pct = EXCLUDED.slippage_pct, fee = EXCLUDED.fee, reject_reason = EXCLUDED.reject_reason, filled_at = EXCLUDED.filled_at,
    cancelled_at = EXCLUDED.cancelled_at)`;

const TRADES = `tr AS (INSERT INTO trades (id, order_id, agent_id, symbol, side, quantity, price, quote_amount, fee, realized_pnl, executed_at, battle_id)
  SELECT x.trade_id, x.order_id, ev.agent_id, x.symbol, x.side, x.quantity, x.price, x.quote_amount, x.fee, x.realized_pnl, x.executed_at, ev.battle_id
  FROM ev, jsonb_to_record(ev.p->'trade') AS x(trade_id uuid, order_id uuid, symbol text, side text, quantity numeric, price numeric,
    quote_amount numeric, fee numeric, realized_pnl numeric, executed_at timestamptz)
  WHERE ev.t = 'order.filled')`;

const BALANCES = `ba AS (INSERT INTO balances (agent_id, asset, available, locked, updated_at)
  SELECT DISTINCT ON (ev.agent_id, b.key) ev.agent_id, b.key, (b.value->>'available')::numeric, (b.value->>'locked')::numeric, now()
  FROM ev, jsonb_each(ev.p->'balances') AS b
  WHERE ev.battle_id IS NULL
  ORDER BY ev.agent_id, b.key, ev.n DESC
  ON CONFLICT (agent_id, asset) DO UPDATE SET available = EXCLUDED.available, locked = EXCLUDED.locked, updated_at = now())`;

const POSITIONS = `po AS (INSERT INTO positions (agent_id, symbol, quantity, avg_entry_price, total_cost, realized_pnl, opened_at, updated_at)
  SELECT DISTINCT ON (ev.agent_id, x.symbol) ev.agent_id, x.symbol, x.quantity, x.avg_entry_price, x.total_cost, x.realized_pnl, x.opened_at,
    (ev.p->'trade'->>'executed_at')::timestamptz
  FROM ev, jsonb_to_record(ev.p->'position') AS x(symbol text, quantity numeric, avg_entry_price numeric, total_cost numeric,
    realized_pnl numeric, opened_at timestamptz)
  WHERE ev.t = 'order.filled' AND ev.battle_id IS NULL
  ORDER BY ev.agent_id, x.symbol, ev.n DESC
  ON CONFLICT (agent_id, symbol) DO UPDATE SET quantity = EXCLUDED.quantity, avg_entry_price = EXCLUDED.avg_entry_price,
    total_cost = EXCLUDED.total_cost, realized_pnl = EXCLUDED.realized_pnl, opened_at = EXCLUDED.opened_at, updated_at = EXCLUDED.updated_at)`;
