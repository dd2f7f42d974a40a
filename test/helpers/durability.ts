import { money } from '../../engine/core/money.js';
import { applyEvent, emptyWallet, type OrderRec, type TradeRec, type WalletEvent, type WalletState } from '../../engine/core/wallet.js';
import type { Db } from '../../engine/store/db.js';

/**
 * Durability checks shared by the crash, shutdown and fault tests: an agent's wallet as the API shows it, as
 * its journal stream replays from the first event, and as the projection tables hold it, must all agree, and
 * every order a client was told about must be in the journal.
 */

/** Check name → what broke (empty lists are fine). */
export type Problems = Record<string, string[]>;

export interface Answer {
  status: number;
  body: any;
}

/** One HTTP call; null when no complete answer came back (the server died with the request in flight). */
export async function call(base: string, method: string, path: string, headers: Record<string, string>, body?: unknown, timeout_ms = 10_000): Promise<Answer | null> {
  try {
    const res = await fetch(base + path, {
      method,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeout_ms),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  } catch {
    return null;
  }
}

export async function must(base: string, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<any> {
  const a = await call(base, method, path, headers, body);
  if (!a || a.status >= 300) throw new Error(`${method} ${path}: ${a ? `${a.status} ${JSON.stringify(a.body)}` : 'no answer'}`);
  return a.body;
}

/** What the API answers about one agent. */
export interface View {
  orders: any[];
  open: any[];
  trades: any[];
  balances: any[];
  positions: any[];
  portfolio: any;
}

export async function pages(base: string, path: string, key: Record<string, string>, field: string, limit: number): Promise<any[]> {
  const out: any[] = [];
  for (let offset = 0; ; offset += limit) {
    const b = await must(base, 'GET', `${path}${path.includes('?') ? '&' : '?'}limit=${limit}&offset=${offset}`, key);
    out.push(...b[field]);
    if (out.length >= b.total || b[field].length === 0) return out;
  }
}

export async function viewOf(base: string, key: Record<string, string>): Promise<View> {
  return {
    orders: await pages(base, '/api/v1/trade/orders', key, 'orders', 500),
    open: await pages(base, '/api/v1/trade/orders/open', key, 'orders', 200),
    trades: await pages(base, '/api/v1/trade/history', key, 'trades', 500),
    balances: (await must(base, 'GET', '/api/v1/account/balance', key)).balances,
    positions: (await must(base, 'GET', '/api/v1/account/positions', key)).positions,
    portfolio: await must(base, 'GET', '/api/v1/account/portfolio', key),
  };
}

export const eq = (x: unknown, y: unknown) => (x === null || y === null || x === undefined || y === undefined ? x == y : money(x as string).eq(y as string));
export const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string).toISOString());

export interface Replay {
  wallet: WalletState;
  orders: Map<string, OrderRec>;
  trades: TradeRec[];
  malformed: string[];
}

/** The wallet rebuilt from the first event of its stream, the way the engine loads it. */
export async function replay(db: Db, stream: string): Promise<Replay> {
  const rows = await db.query<{ seq: number; type: WalletEvent['type']; payload: WalletEvent }>(`SELECT seq, type, payload FROM journal WHERE stream = $1 ORDER BY seq`, [stream]);
  const wallet = emptyWallet(stream);
  const orders = new Map<string, OrderRec>();
  const trades: TradeRec[] = [];
  const malformed: string[] = [];
  for (const row of rows) {
    const e = { ...row.payload, type: row.type } as WalletEvent;
    if ('order' in e) {
      const before = orders.get(e.order.order_id);
      if (e.type === 'order.placed' ? before !== undefined : before !== undefined && before.status !== 'pending') {
        malformed.push(`seq ${row.seq}: ${e.type} for ${e.order.order_id} after it was ${before!.status}`);
      }
      if (e.type !== 'order.placed' && before === undefined && e.order.type !== 'market') malformed.push(`seq ${row.seq}: ${e.type} for never-placed ${e.order.order_id}`);
      orders.set(e.order.order_id, e.order);
    }
    if (e.type === 'order.filled') trades.push(e.trade);
    applyEvent(wallet, e);
  }
  return { wallet, orders, trades, malformed };
}

export interface Stored extends Replay {
  balances: Array<{ asset: string; available: string; locked: string }>;
  orderRows: Array<Record<string, any>>;
  tradeRows: Array<Record<string, any>>;
  positionRows: Array<{ symbol: string; quantity: string; total_cost: string }>;
}

/** An agent's journal stream and projection rows, read straight from the database. */
export async function readStored(db: Db, agentId: string): Promise<Stored> {
  return {
    ...(await replay(db, agentId)),
    balances: await db.query(`SELECT asset, available::text, locked::text FROM balances WHERE agent_id = $1`, [agentId]),
    orderRows: await db.query(`SELECT id, status, locked_amount::text, executed_price::text, executed_qty::text, fee::text, filled_at, cancelled_at FROM orders WHERE agent_id = $1`, [agentId]),
    tradeRows: await db.query(`SELECT id, order_id, quantity::text, price::text, quote_amount::text, fee::text FROM trades WHERE agent_id = $1`, [agentId]),
    positionRows: await db.query(`SELECT symbol, quantity::text, total_cost::text FROM positions WHERE agent_id = $1`, [agentId]),
  };
}

const ZERO = { available: '0', locked: '0' };

/** Every acknowledged order (id → the order as acked) is in the journal, and the projection tables equal the replay. */
export function checkTables(placed: ReadonlyMap<string, { client_order_id?: string | null }>, s: Stored): Problems {
  const { wallet, orders, trades } = s;
  const p: Problems = { malformed: s.malformed, acked_not_in_journal: [], table_balances: [], table_orders: [], table_trades: [], table_positions: [] };
  for (const [id, o] of placed) if (!orders.has(id)) p.acked_not_in_journal.push(`${o.client_order_id} ${id}`);
  for (const asset of new Set([...Object.keys(wallet.balances), ...s.balances.map((b) => b.asset)])) {
    const w = wallet.balances[asset] ?? ZERO;
    const row = s.balances.find((b) => b.asset === asset) ?? ZERO;
    if (!eq(w.available, row.available) || !eq(w.locked, row.locked)) p.table_balances.push(`${asset}: journal ${w.available}/${w.locked}, table ${row.available}/${row.locked}`);
  }
  for (const row of s.orderRows) {
    const o = orders.get(row.id);
    if (!o) p.table_orders.push(`${row.id} (${row.status}) is not in the journal`);
    else if (o.status !== row.status || !eq(o.locked_amount, row.locked_amount) || !eq(o.executed_price, row.executed_price) || !eq(o.executed_qty, row.executed_qty) || !eq(o.fee, row.fee) || iso(o.filled_at) !== iso(row.filled_at) || iso(o.cancelled_at) !== iso(row.cancelled_at)) {
      p.table_orders.push(`${row.id}: journal ${o.status}, table ${JSON.stringify(row)}`);
    }
  }
  if (s.orderRows.length !== orders.size) p.table_orders.push(`journal has ${orders.size} orders, table ${s.orderRows.length}`);
  const tradeById = new Map(s.tradeRows.map((r) => [r.id, r]));
  for (const tr of trades) {
    const row = tradeById.get(tr.trade_id);
    if (!row || row.order_id !== tr.order_id || !eq(row.quantity, tr.quantity) || !eq(row.price, tr.price) || !eq(row.quote_amount, tr.quote_amount) || !eq(row.fee, tr.fee)) {
      p.table_trades.push(`${tr.trade_id}: journal ${JSON.stringify(tr)}, table ${JSON.stringify(row)}`);
    }
  }
  if (s.tradeRows.length !== trades.length) p.table_trades.push(`journal ${trades.length} fills, table ${s.tradeRows.length}`);
  for (const row of s.positionRows) {
    const pos = wallet.positions[row.symbol]; // a position sold to zero leaves the wallet but keeps a row at 0
    if (!eq(pos?.quantity ?? '0', row.quantity) || !eq(pos?.total_cost ?? '0', row.total_cost)) p.table_positions.push(`${row.symbol}: journal ${JSON.stringify(pos)}, table ${JSON.stringify(row)}`);
  }
  for (const sym of Object.keys(wallet.positions)) if (!s.positionRows.some((r) => r.symbol === sym)) p.table_positions.push(`${sym}: no table row`);
  return p;
}

/** What the server answers equals the wallet replayed from the first event of its journal stream. */
export function checkApiAgainstJournal(s: Replay, v: View): Problems {
  const { wallet } = s;
  const p: Problems = { api_balances: [], api_open: [], api_positions: [], api_trades: [] };
  for (const asset of new Set([...Object.keys(wallet.balances), ...v.balances.map((b) => b.asset)])) {
    const w = wallet.balances[asset] ?? ZERO;
    const api = v.balances.find((b) => b.asset === asset) ?? ZERO;
    if (!eq(w.available, api.available) || !eq(w.locked, api.locked)) p.api_balances.push(`${asset}: journal ${w.available}/${w.locked}, API ${api.available}/${api.locked}`);
  }
  const open = Object.values(wallet.open);
  const apiOpen = new Map(v.open.map((o) => [o.order_id, o]));
  if (open.length !== v.open.length) p.api_open.push(`journal has ${open.length} resting orders, API ${v.open.length}`);
  for (const o of open) {
    const x = apiOpen.get(o.order_id);
    if (!x || !eq(x.locked_amount, o.locked_amount) || !eq(x.price, o.price) || !eq(x.quantity, o.quantity)) p.api_open.push(`${o.order_id}: journal ${JSON.stringify(o)}, API ${JSON.stringify(x)}`);
  }
  const apiPos = new Map(v.positions.map((x) => [x.symbol, x]));
  for (const pos of Object.values(wallet.positions)) {
    const x = apiPos.get(pos.symbol);
    if (!x || !eq(x.quantity, pos.quantity) || !eq(x.avg_entry_price, pos.avg_entry_price) || !eq(x.cost_basis, pos.total_cost) || !eq(x.realized_pnl, pos.realized_pnl)) {
      p.api_positions.push(`${pos.symbol}: journal ${JSON.stringify(pos)}, API ${JSON.stringify(x)}`);
    }
    apiPos.delete(pos.symbol);
  }
  for (const sym of apiPos.keys()) p.api_positions.push(`${sym}: in the API, not in the journal`);
  if (!eq(v.portfolio.realized_pnl, wallet.realized_total)) p.api_positions.push(`realized ${v.portfolio.realized_pnl}, journal ${wallet.realized_total}`);
  const journalTrades = new Set(s.trades.map((tr) => tr.trade_id));
  if (v.trades.length !== journalTrades.size || !v.trades.every((tr) => journalTrades.has(tr.trade_id))) p.api_trades.push(`API ${v.trades.length} fills, journal ${journalTrades.size}`);
  return p;
}

/** Only the checks that found something, five examples each (for t.same(problems(...), {})). */
export const problems = (p: Problems) =>
  Object.fromEntries(Object.entries(p).filter(([, v]) => v.length > 0).map(([k, v]) => [k, v.slice(0, 5).concat(v.length > 5 ? [`… ${v.length - 5} more`] : [])]));
