import { Kind, OptionalKind, type TObject, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { randomUUID } from 'node:crypto';
import type { Engine } from '../../engine/system.js';
import type { Route } from '../../gateway/router.js';
import { routeTable } from '../../gateway/routes/index.js';
import { registerAndLogin, type TestServer } from './server.js';

/**
 * Requests derived from the typebox schemas of the route table (authorization matrix and fuzz tests), and a
 * fingerprint of everything an account owns, to prove a refused request changed nothing.
 */

/** Field name → the value a sample should carry when the schema accepts it (ids of a test's resources, a priced symbol, a window). */
export type Hints = Record<string, unknown>;

/** Tried in order for a string field with no hint; the first the schema accepts wins. */
const STRINGS = ['BTCUSDT', '1', '2025-06-01T00:00:00Z', '#112233', 'user@example.com', 'binance', 'sample', '00000000-0000-4000-8000-000000000000'];

export const isOptional = (s: TSchema): boolean => s[OptionalKind] === 'Optional';

/** The properties of an object schema (none for anything else). */
export function fieldsOf(schema: TSchema | undefined): Array<{ name: string; schema: TSchema; required: boolean }> {
  if (!schema || schema[Kind] !== 'Object') return [];
  const required = new Set<string>((schema as TObject).required ?? []);
  return Object.entries((schema as TObject).properties).map(([name, s]) => ({ name, schema: s, required: required.has(name) }));
}

function bounded(schema: TSchema, start: number): number {
  let v = start;
  const min = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : undefined);
  const max = schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum - 1 : undefined);
  if (min !== undefined && v < min) v = min;
  if (max !== undefined && v > max) v = max;
  return v;
}

/** One value the schema accepts, preferring the hint for `name`. */
export function sampleValue(schema: TSchema, name: string, hints: Hints = {}, withOptional = false): unknown {
  if (Object.hasOwn(hints, name) && Value.Check(schema, hints[name])) return hints[name];
  switch (schema[Kind]) {
    case 'Object':
      return sampleObject(schema, hints, withOptional);
    case 'Literal':
      return schema.const;
    case 'Union':
      for (const s of schema.anyOf as TSchema[]) {
        const v = sampleValue(s, name, hints, withOptional);
        if (Value.Check(schema, v)) return v;
      }
      return null;
    case 'Integer':
    case 'Number':
      return bounded(schema, 1);
    case 'Boolean':
      return true;
    case 'Null':
      return null;
    case 'Array':
      return Array.from({ length: schema.minItems ?? 0 }, () => sampleValue(schema.items, name, hints, withOptional));
    case 'Record':
      return {};
    case 'String': {
      for (const c of STRINGS) if (Value.Check(schema, c)) return c;
      return 'x'.repeat(Math.max(1, schema.minLength ?? 1));
    }
    default:
      return 'x';
  }
}

/** Required fields, plus the optional ones named in `hints` (or every one with `withOptional`). */
export function sampleObject(schema: TSchema | undefined, hints: Hints = {}, withOptional = false): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fieldsOf(schema)) {
    if (!f.required && !withOptional && !Object.hasOwn(hints, f.name)) continue;
    const v = sampleValue(f.schema, f.name, hints, withOptional);
    if (f.required || Value.Check(f.schema, v)) out[f.name] = v;
  }
  return out;
}

/** Query strings carry text: a sample query, stringified. */
export function sampleQuery(schema: TSchema | undefined, hints: Hints = {}): Record<string, string> {
  const q = sampleObject(schema, hints);
  return Object.fromEntries(Object.entries(q).map(([k, v]) => [k, String(v)]));
}

/** encodeURIComponent, with lone surrogates sent as the UTF-8 of U+FFFD (what any client's encoder does) instead of throwing. */
export const encodeSegment = (s: string): string => encodeURIComponent(s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));

/** The path with its `{param}` segments filled (URI-encoded) from `params`. */
export function fillPath(path: string, params: Record<string, string>): string {
  return path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeSegment(params[name] ?? ''));
}

/**
 * Everything an account owns, as one string: its row, its agents' rows, balances, positions, orders, counts of
 * trades, sessions and journal events, its backtests and battles (state included), and its agents' in-memory
 * wallets. Equal before and after a request means the request changed nothing. Snapshots are left out: a read
 * may take one on demand.
 */
export async function fingerprint(engine: Engine, accountId: string): Promise<string> {
  const [row] = await engine.db.query<{ fp: string }>(
    `WITH ag AS (SELECT id FROM agents WHERE account_id = $1),
          streams AS (SELECT id::text AS stream FROM ag
                      UNION ALL SELECT bp.battle_id::text || ':' || bp.agent_id::text FROM battle_participants bp WHERE bp.agent_id IN (SELECT id FROM ag))
     SELECT json_build_object(
       'account', (SELECT row_to_json(a) FROM accounts a WHERE a.id = $1),
       'agents', (SELECT json_agg(row_to_json(g) ORDER BY g.id) FROM agents g WHERE g.account_id = $1),
       'balances', (SELECT json_agg(json_build_array(b.agent_id, b.asset, b.available, b.locked) ORDER BY b.agent_id, b.asset)
                    FROM balances b WHERE b.agent_id IN (SELECT id FROM ag)),
       'positions', (SELECT json_agg(json_build_array(p.agent_id, p.symbol, p.quantity, p.avg_entry_price, p.realized_pnl) ORDER BY p.agent_id, p.symbol)
                     FROM positions p WHERE p.agent_id IN (SELECT id FROM ag)),
       'orders', (SELECT json_agg(json_build_array(o.id, o.status, o.executed_qty) ORDER BY o.id) FROM orders o WHERE o.agent_id IN (SELECT id FROM ag)),
       'trades', (SELECT count(*) FROM trades t WHERE t.agent_id IN (SELECT id FROM ag)),
       'sessions', (SELECT count(*) FROM trading_sessions s WHERE s.account_id = $1),
       'journal', (SELECT count(*) FROM journal j WHERE j.stream IN (SELECT stream FROM streams)),
       'backtests', (SELECT json_agg(json_build_array(x.id, x.status, x.updated_at, md5(coalesce(x.state::text, '')), md5(coalesce(x.results::text, ''))) ORDER BY x.id)
                     FROM backtests x WHERE x.account_id = $1),
       'backtest_log', (SELECT count(*) FROM backtest_log l WHERE l.backtest_id IN (SELECT id FROM backtests WHERE account_id = $1)),
       'battles', (SELECT json_agg(json_build_array(x.id, x.status, x.updated_at, md5(coalesce(x.state::text, ''))) ORDER BY x.id) FROM battles x WHERE x.account_id = $1)
     )::text AS fp`,
    [accountId],
  );
  const db = JSON.parse(row.fp) as { agents: Array<{ id: string }> | null };
  const wallets = [];
  for (const a of db.agents ?? []) wallets.push(await engine.trading.wallet(a.id));
  return JSON.stringify({ db, wallets });
}

/**
 * The POST route that makes what a path parameter names, found by shape: for `/x/things/{id}/…` it is
 * `POST /x/things` or `POST /x/things/create`. Null when the table has none.
 */
export function creatorFor<R extends { method: string; path: string; paramNames: string[] }>(routes: R[], route: R, param: string): R | null {
  const prefix = route.path.slice(0, route.path.indexOf(`{${param}}`)).replace(/\/$/, '');
  return routes.find((c) => c.method === 'POST' && c.paramNames.length === 0 && (c.path === prefix || c.path === `${prefix}/create`)) ?? null;
}

/** The backtest a context runs for routes under /backtest/{session_id}: one pair over a window whose candles the test imported. */
export interface BacktestSpec {
  pair: string;
  window: { start_time: string; end_time: string };
}

/**
 * A fresh account with an agent and a resting order, plus whatever the route's path names: a running backtest
 * with a resting order of its own, or a thing made by the route's creator (creatorFor, body from `hints`, with
 * the JWT, else the agent key). A name nothing makes gets a random id.
 */
export async function routeContext(s: TestServer, r: Route, bt: BacktestSpec, hints: (params: Record<string, string>) => Hints) {
  const ok = async (method: string, path: string, headers: Record<string, string>, body?: unknown) => {
    const res = await s.call(method, path, { headers, body });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const me = await registerAndLogin(s, { starting_balance: '10000' });
  const order = await ok('POST', '/api/v1/trade/order', me.agentKey, { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.01', price: '40000' });
  const params: Record<string, string> = { agent_id: me.reg.agent_id, order_id: order.order_id, symbol: 'BTCUSDT' };
  if (r.paramNames.includes('session_id')) {
    const created = await ok('POST', '/api/v1/backtest/create', me.agentKey, { ...bt.window, candle_interval: 60, pairs: [bt.pair], starting_balance: '10000' });
    const id: string = created.session_id;
    await ok('POST', `/api/v1/backtest/${id}/start`, me.agentKey);
    const o = await ok('POST', `/api/v1/backtest/${id}/trade/order`, me.agentKey, { symbol: bt.pair, side: 'buy', type: 'limit', quantity: '1000', price: '0.01' });
    Object.assign(params, { session_id: id, order_id: o.order_id, symbol: bt.pair });
  }
  for (const name of r.paramNames) {
    if (name in params) continue;
    params[name] = randomUUID();
    const creator = creatorFor(routeTable(), r, name);
    if (!creator) continue;
    const body = sampleObject(creator.body, { ...hints(params), name: `sample ${name}` });
    for (const headers of [me.jwt, me.agentKey]) {
      const made = await s.call('POST', creator.path, { headers, body });
      const id = made.body?.[name] ?? made.body?.id;
      if (made.status < 300 && typeof id === 'string') {
        params[name] = id;
        break;
      }
    }
  }
  return { me, params };
}
