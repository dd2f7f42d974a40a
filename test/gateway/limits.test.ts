import t from 'tap';
import WebSocket from 'ws';
import { randomUUID } from 'node:crypto';
import { Kind, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Route } from '../../gateway/router.js';
import { routeTable } from '../../gateway/routes/index.js';
import { money } from '../../engine/core/money.js';
import { LIMITS } from '../../schemas/limits.js';
import { warmupSlots } from '../../engine/core/backtest.js';
import { AuthFrame, RequestFrame, SubscribeFrame } from '../../schemas/ws.js';
import { importCandles } from '../helpers/candles.js';
import { fieldsOf, fillPath, routeContext, sampleObject, sampleValue, type Hints } from '../helpers/route-samples.js';
import { backends, registerAndLogin, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Every bound of the route table, at its edge. For each route, every field of its path, query and body schema
 * with a minLength, maxLength, minimum, maximum, minItems or maxItems (nested objects, array items and record
 * values included) is sent once exactly at the bound, which must not be refused as invalid under that field's
 * name (another answer, a 404 for a missing thing or a business 400, is fine), and once one past it, which must
 * be 422 VALIDATION_ERROR naming the field by its full path (inside nullable objects and arrays too). The
 * WebSocket frames' schemas are walked the same way. Then the bounds handlers check themselves (list lengths,
 * amounts, series cells, battle participants), body_bytes_max and json_depth_max at N and N + 1.
 * frame_bytes_max, subscriptions_max and connections_per_key_max are tested at N and N + 1 in ws.test.ts.
 */

type H = Record<string, string>;
const P = '/api/v1';
const BODY_MAX = 16 * 1024;
const BT_PAIR = 'ADAUSDT';
const MINUTE = 60_000;
/** A day, so that a time cut to its 10-character date still ends after it starts. */
const BT_WINDOW = { start_time: '2025-06-01T00:00:00Z', end_time: '2025-06-02T00:00:00Z' };
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** The key a record's bounded value is sent under (records with bounded values are risk limits). */
const RECORD_KEY = 'max_open_orders';
/**
 * Schema bounds under which the handler applies a narrower rule to the same field, so that no value exactly at
 * the bound is valid: only the step past it is checked.
 */
const NARROWER: Record<string, string> = {
  'GET /api/v1/backtest/compare sessions minLength': `${LIMITS.compare_sessions_min} session ids at least`,
  'POST /api/v1/battles preset maxLength': 'one of the named presets',
  'PUT /api/v1/battles/{id} preset maxLength': 'one of the named presets',
};

type Bound = 'minLength' | 'maxLength' | 'minimum' | 'maximum' | 'minItems' | 'maxItems';
type Where = 'path' | 'query' | 'body';

interface Edge {
  where: Where;
  /** Object keys from the top of the location to where the value goes. */
  path: string[];
  /** The value's full path: what a refusal must name. */
  field: string;
  bound: Bound;
  n: number;
  /** The value at the bound and one past it. */
  at: unknown;
  past: unknown;
}

/** An answer's error names the edge's value. */
const namesIt = (err: any, e: Edge) => err?.code === 'VALIDATION_ERROR' && err?.details?.field === e.field;

// ---------------------------------------------------------------------------------------------------------
// Values of a given length or size that the schema accepts in every other respect.

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

/** Strings of length `len` built from `base` (a hint or a sample): the first that `ok` accepts. */
function textOf(base: string, len: number, ok: (v: string) => boolean): string | null {
  const pad = (c: string) => (len >= base.length ? base + c.repeat(len - base.length) : base.slice(0, len));
  const candidates = [
    ...(ISO.test(base) ? [len === 10 ? base.slice(0, 10) : `${base.slice(0, 19)}.${'0'.repeat(Math.max(0, len - 21))}Z`] : []),
    ...(base.includes(',') ? [pad(',')] : []),
    ...(/^\d+$/.test(base) && len >= base.length ? ['0'.repeat(len - base.length) + base] : []),
    ...(base.includes('@') && len >= base.length ? ['a'.repeat(len - base.length) + base] : []),
    pad('x'), 'x'.repeat(len), 'A'.repeat(len), '1'.repeat(len),
  ];
  return candidates.find((v) => v.length === len && ok(v)) ?? null;
}

/** An item per slot; literal unions cycle through their values so that a full list has no repeats. */
function itemsOf(items: TSchema, n: number, first: unknown): unknown[] {
  const literals = items[Kind] === 'Union' && (items.anyOf as TSchema[]).every((m) => m[Kind] === 'Literal') ? (items.anyOf as TSchema[]).map((m) => m.const) : null;
  return Array.from({ length: n }, (_, i) => (literals ? literals[i % literals.length] : first));
}

/** The schema without one bound, to check that a value breaks that bound only. */
const without = (s: TSchema, bound: Bound): TSchema => ({ ...s, [bound]: undefined });

/** A hint as this schema takes it: as is, or a number hint as text for a string member. */
function hinted(s: TSchema, name: string, hints: Hints): unknown {
  const h = hints[name];
  if (h === undefined) return sampleValue(s, name, hints);
  if (Value.Check(s, h)) return h;
  if (Value.Check(s, String(h))) return String(h);
  return Array.isArray(h) && (h as unknown[]).length ? (h as unknown[])[0] : sampleValue(s, name, hints);
}

/** Values at and one past the bound, for a schema of a single value; none when one cannot be sent (an empty path segment, a number in a path). */
function edgeValues(s: TSchema, name: string, bound: Bound, hints: Hints, inPath: boolean): { at: unknown; past: unknown } | null {
  const n: number = s[bound];
  const beyond = bound.startsWith('min') ? n - 1 : n + 1;
  if (s[Kind] === 'String') {
    const base = String(hinted(s, name, hints) ?? 'x');
    const at = textOf(base, n, (v) => Value.Check(s, v));
    const past = inPath && beyond === 0 ? null : textOf(base, beyond, (v) => Value.Check(without(s, bound), v) && !Value.Check(s, v));
    return at === null || past === null ? null : { at, past };
  }
  if (s[Kind] === 'Integer' || s[Kind] === 'Number') {
    return inPath ? null : { at: n, past: beyond };
  }
  if (s[Kind] === 'Array') {
    const hint = hints[name];
    const first = Array.isArray(hint) && hint.length && Value.Check(s.items, hint[0]) ? hint[0] : sampleValue(s.items, name, hints);
    return { at: itemsOf(s.items, n, first), past: itemsOf(s.items, Math.max(0, beyond), first) };
  }
  return null;
}

const BOUNDS: Bound[] = ['minLength', 'maxLength', 'minimum', 'maximum', 'minItems', 'maxItems'];

/**
 * Every bounded value under `schema`, with where it goes and the name a refusal gives it (its full path: the
 * validator reports the deepest error inside a union). `keys` are the object keys to the value, and `wrap`
 * (inside an array or record) turns the value into what is set at `keys`: a one-item array, a one-key record.
 */
function edgesOf(schema: TSchema, where: Where, hints: Hints): Edge[] {
  const out: Edge[] = [];
  const walk = (s: TSchema, name: string, keys: string[], names: string[], wrap: ((v: unknown) => unknown) | null) => {
    const put = wrap ?? ((v: unknown) => v);
    for (const bound of BOUNDS) {
      if (typeof s[bound] !== 'number') continue;
      const v = edgeValues(s, name, bound, hints, where === 'path');
      if (v) out.push({ where, path: keys, field: names.join('.'), bound, n: s[bound], at: put(v.at), past: put(v.past) });
    }
    switch (s[Kind]) {
      case 'Object':
        for (const f of fieldsOf(s)) {
          if (wrap) walk(f.schema, f.name, keys, [...names, f.name], (v) => wrap({ ...sampleObject(s, hints), [f.name]: v }));
          else walk(f.schema, f.name, [...keys, f.name], [...names, f.name], null);
        }
        break;
      case 'Union':
        for (const m of s.anyOf as TSchema[]) walk(m, name, keys, names, wrap);
        break;
      case 'Array':
        walk(s.items, name, keys, [...names, '0'], (v) => put([v]));
        break;
      case 'Record': {
        const value = Object.values(s.patternProperties as Record<string, TSchema>)[0];
        walk(value, RECORD_KEY, keys, [...names, RECORD_KEY], (v) => put({ [RECORD_KEY]: v }));
        break;
      }
    }
  };
  for (const f of fieldsOf(schema)) walk(f.schema, f.name, [f.name], [f.name], null);
  return out;
}

function edgesOfRoute(r: Route, hints: Hints): Edge[] {
  return [
    ...edgesOf(r.params as TSchema, 'path', hints),
    ...edgesOf(r.query as TSchema, 'query', hints),
    ...(BODY_METHODS.has(r.method) && r.body ? edgesOf(r.body, 'body', hints) : []),
  ];
}

// ---------------------------------------------------------------------------------------------------------
// Requests: a valid one per route (the caller's own agent, order, backtest and battle in the path), with one
// value replaced.

interface Ctx {
  jwt: H;
  agentKey: H;
  params: Record<string, string>;
}

let serial = 0;
/** Field hints: the context's ids, a priced symbol, the stored candle window; fresh where a value must be unique. */
const hintsOf = (params: Record<string, string>): Hints => ({
  ...params, quantity: params.symbol === BT_PAIR ? '100' : '0.001', candle_interval: 60, pairs: [BT_PAIR], ...BT_WINDOW,
  battle_mode: 'historical', backtest_config: { ...BT_WINDOW, candle_interval: 60, pairs: [BT_PAIR] }, preset: null,
  agent_ids: [params.agent_id], sessions: `${randomUUID()},${randomUUID()}`, symbols: 'BTCUSDT,ETHUSDT',
  email: `limits-${++serial}@example.com`, password: 'password-1', display_name: `limits ${serial}`, owner_id: `limits-owner-${serial}`,
  max_open_orders: 5, max_position_size_pct: 5, max_daily_loss_pct: 5,
});

async function makeCtx(s: TestServer, r: Route): Promise<Ctx> {
  const { me, params } = await routeContext(s, r, { pair: BT_PAIR, window: BT_WINDOW }, hintsOf);
  return { jwt: me.jwt, agentKey: me.agentKey, params };
}

function setAt(obj: Record<string, any>, path: string[], value: unknown): void {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null || Array.isArray(o[k])) o[k] = {};
    o = o[k];
  }
  o[path[path.length - 1]] = value;
}

/** The route's valid request with the edge's value in place. */
function requestOf(r: Route, ctx: Ctx, edge: Edge, value: unknown) {
  const hints = hintsOf(ctx.params);
  const params = { ...ctx.params };
  const query: Record<string, unknown> = sampleObject(r.query, hints);
  const body = BODY_METHODS.has(r.method) && r.body ? structuredClone(sampleObject(r.body, hints)) : undefined;
  if (edge.where === 'path') params[edge.path[0]] = String(value);
  else if (edge.where === 'query') query[edge.path[0]] = value;
  else setAt(body!, edge.path, value);
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
  const headers = r.auth === 'public' ? {} : r.auth === 'jwt' ? ctx.jwt : ctx.agentKey;
  return { path: fillPath(r.path, params) + (qs ? `?${qs}` : ''), headers, body };
}

const show = (x: unknown, n = 240) => {
  const s = JSON.stringify(x) ?? String(x);
  return s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s;
};

// ---------------------------------------------------------------------------------------------------------

for (const backend of backends()) {
  t.test(`limits on ${backend.name}`, async (t) => {
    const t0 = Date.now();
    const s = await startTestServer(backend, {
      rate: { agent_per_minute: 0, account_per_minute: 0, auth_per_ip_per_minute: 0, public_per_ip_per_minute: 0 },
      snapshot_interval_ms: 0,
      body_bytes_max: BODY_MAX,
    });
    t.teardown(() => s.stop());
    for (const p of s.engine.market.pairs()) s.engine.market.ingest({ symbol: p.symbol, price: p.symbol === 'BTCUSDT' ? '50000' : '2', quantity: '1000000', time: Date.now() });
    await importCandles(s.engine.db, `bybit-linear/${BT_PAIR}_1m.csv`, BT_PAIR, '1m', '2025-05-31T00:00:00Z', '2025-06-02T01:00:00Z');

    let edges = 0;
    let requests = 0;
    t.test('every schema bound of every route: at N not refused under its name, at N + 1 422 naming it', async (t) => {
      const probe = hintsOf({ agent_id: randomUUID(), order_id: randomUUID(), symbol: 'BTCUSDT' });
      for (const r of routeTable()) {
        if (edgesOfRoute(r, probe).length === 0) continue;
        t.test(`${r.method} ${r.path}`, async (t) => {
          const ctx = await makeCtx(s, r);
          const list = edgesOfRoute(r, hintsOf(ctx.params));
          const seen: string[] = [];
          for (const e of list) {
            const what = `${e.where} ${e.field} ${e.bound} ${e.n}`;
            const narrower = NARROWER[`${r.method} ${r.path} ${e.field} ${e.bound}`];
            const past = requestOf(r, ctx, e, e.past);
            const p = await s.call(r.method, past.path, { headers: past.headers, body: past.body });
            const at = requestOf(r, ctx, e, e.at);
            const a = await s.call(r.method, at.path, { headers: at.headers, body: at.body });
            requests += 2;
            edges++;
            const aErr = a.body?.error;
            if (narrower) t.ok(a.status < 500, `${what}: at the bound ${a.status} ${aErr?.code ?? ''} (${narrower})`);
            else t.notOk(a.status >= 500 || (a.status === 422 && namesIt(aErr, e)), `${what}: at the bound not refused as invalid`, {
              answer: `${a.status} ${show(a.body)}`, sent: show(at.body ?? at.path),
            });
            t.same([p.status, p.body?.error?.code, p.body?.error?.details?.field], [422, 'VALIDATION_ERROR', e.field], `${what}: one past it, 422 naming ${e.field}`, {
              answer: `${p.status} ${show(p.body)}`, sent: show(past.body ?? past.path),
            });
            seen.push(`${e.field} ${e.bound} → ${a.status}${aErr ? ` ${aErr.code}${aErr.details?.field ? ` (${aErr.details.field})` : ''}` : ''}`);
          }
          t.comment(`at the bound: ${seen.join('; ')}`);
        });
      }
    });

    t.test('WebSocket frames: every schema bound at N and N + 1', async (t) => {
      const me = await registerAndLogin(s);
      const key = me.reg.agent_api_key as string;
      const url = (q: string) => `ws://127.0.0.1:${s.server.port}/ws/v1${q}`;
      const main = await Sock.open(url(`?api_key=${encodeURIComponent(key)}`));
      t.teardown(() => main.ws.terminate());
      const hints: Hints = { symbol: 'BTCUSDT', interval: '1m', api_key: key, id: 'r1', method: 'account.balance' };
      const frames: Array<[string, TSchema, Record<string, unknown>]> = [
        ['subscribe', SubscribeFrame, { action: 'subscribe', channel: 'ticker', symbol: 'BTCUSDT' }],
        ['request', RequestFrame, { id: 'r1', method: 'account.balance', params: {} }],
        ['auth', AuthFrame, { action: 'auth', api_key: key }],
      ];
      for (const [kind, schema, base] of frames) {
        for (const e of edgesOf(schema, 'body', hints)) {
          const what = `${kind} ${e.field} ${e.bound} ${e.n}`;
          for (const [side, value] of [['past', e.past], ['at', e.at]] as const) {
            const frame = structuredClone(base);
            setAt(frame, e.path, value);
            // An auth frame that fails closes its socket: each gets a socket of its own.
            const sock = kind === 'auth' ? await Sock.open(url('')) : main;
            const answer = await sock.ask(frame);
            if (sock !== main) sock.ws.terminate();
            const err = answer.error ?? (answer.type === 'error' ? answer : null);
            if (side === 'at') t.notOk(namesIt(err, e), `${what}: at the bound not refused as invalid`, { answer: show(answer) });
            else t.same([err?.code, err?.details?.field], ['VALIDATION_ERROR', e.field], `${what}: one past it, VALIDATION_ERROR naming ${e.field}`, { answer: show(answer) });
            edges += side === 'at' ? 1 : 0;
            requests++;
          }
        }
      }
    });

    t.test('bounds the handlers check: at N not refused under the field, at N + 1 422 naming it', async (t) => {
      const me = await registerAndLogin(s, { starting_balance: '10000' });
      const ids = (n: number) => Array.from({ length: n }, () => randomUUID()).join(',');
      const symbols = (n: number) => Array.from({ length: n }, (_, i) => `S${i}USDT`).join(',');
      const plus = (v: string) => money(v).plus('0.00000001').toFixed(8);
      const minus = (v: string) => money(v).minus('0.00000001').toFixed(8);
      const endAfter = (steps: number) => new Date(Date.parse(BT_WINDOW.start_time) + steps * MINUTE).toISOString().replace('.000Z', 'Z');
      const period = { ...BT_WINDOW, candle_interval: 60, pairs: [BT_PAIR] };
      const backtest = (body: Record<string, unknown>) => ({ method: 'POST', path: `${P}/backtest/create`, headers: me.agentKey, body: { ...period, ...body } });
      const battle = (body: Record<string, unknown>) => ({ method: 'POST', path: `${P}/battles`, headers: me.jwt, body: { name: 'limits', battle_mode: 'historical', backtest_config: period, ...body } });
      type Req = { method: string; path: string; headers: H; body?: unknown };
      const cases: Array<[string, string, (v: string) => Req, string, string]> = [
        ['tickers_symbols_max', 'symbols', (v) => ({ method: 'GET', path: `${P}/market/tickers?symbols=${v}`, headers: {} }), symbols(LIMITS.tickers_symbols_max), symbols(LIMITS.tickers_symbols_max + 1)],
        ['compare_sessions_min', 'sessions', (v) => ({ method: 'GET', path: `${P}/backtest/compare?sessions=${v}`, headers: me.agentKey }), ids(LIMITS.compare_sessions_min), ids(LIMITS.compare_sessions_min - 1)],
        ['compare_sessions_max', 'sessions', (v) => ({ method: 'GET', path: `${P}/backtest/compare?sessions=${v}`, headers: me.agentKey }), ids(LIMITS.compare_sessions_max), ids(LIMITS.compare_sessions_max + 1)],
        ['amount_max', 'starting_balance', (v) => ({ method: 'POST', path: `${P}/auth/register`, headers: {}, body: { starting_balance: v } }), LIMITS.amount_max, plus(LIMITS.amount_max)],
        ['backtest_balance_max', 'starting_balance', (v) => backtest({ starting_balance: v }), LIMITS.backtest_balance_max, plus(LIMITS.backtest_balance_max)],
        ['backtest_balance_min', 'starting_balance', (v) => backtest({ starting_balance: v }), LIMITS.backtest_balance_min, minus(LIMITS.backtest_balance_min)],
        ['fee_rate_max', 'fee_rate', (v) => backtest({ fee_rate: v }), LIMITS.fee_rate_max, plus(LIMITS.fee_rate_max)],
        ['backtest_balance_max (battles)', 'starting_balance', (v) => battle({ starting_balance: v }), LIMITS.backtest_balance_max, plus(LIMITS.backtest_balance_max)],
        ['backtest_balance_min (battles)', 'starting_balance', (v) => battle({ starting_balance: v }), LIMITS.backtest_balance_min, minus(LIMITS.backtest_balance_min)],
        // symbols × candle slots: a backtest holds its warm-up day too, a battle only its steps (created, not loaded).
        ['series_cells_max', 'end_time', (v) => backtest({ end_time: v }), endAfter(LIMITS.series_cells_max - warmupSlots(MINUTE)), endAfter(LIMITS.series_cells_max - warmupSlots(MINUTE) + 1)],
        ['series_cells_max (battles)', 'backtest_config.end_time', (v) => battle({ backtest_config: { ...period, end_time: v } }), endAfter(LIMITS.series_cells_max), endAfter(LIMITS.series_cells_max + 1)],
      ];
      for (const [name, field, req, at, past] of cases) {
        const a = req(at);
        const ra = await s.call(a.method, a.path, { headers: a.headers, body: a.body });
        t.notOk(ra.status === 422 && ra.body?.error?.details?.field === field, `${name}: ${show(at, 60)} not refused as invalid (${ra.status})`, { answer: show(ra.body) });
        const p = req(past);
        const rp = await s.call(p.method, p.path, { headers: p.headers, body: p.body });
        t.same([rp.status, rp.body?.error?.code, rp.body?.error?.details?.field], [422, 'VALIDATION_ERROR', field], `${name}: ${show(past, 60)} refused`, { answer: show(rp.body) });
      }
    });

    t.test('battle_participants_max: a draft takes N participants, the N + 1st is 409 and not added', async (t) => {
      const me = await registerAndLogin(s, { starting_balance: '1000' });
      const agents: string[] = [me.reg.agent_id];
      while (agents.length <= LIMITS.battle_participants_max) {
        const r = await s.call('POST', `${P}/agents`, { headers: me.jwt, body: { display_name: `p${agents.length}` } });
        if (r.status !== 201) throw new Error(`agent: ${r.status} ${JSON.stringify(r.body)}`);
        agents.push(r.body.agent_id);
      }
      const b = await s.call('POST', `${P}/battles`, { headers: me.jwt, body: { name: 'crowd', battle_mode: 'live', duration_minutes: 5 } });
      t.equal(b.status, 201);
      const join = (id: string) => s.call('POST', `${P}/battles/${b.body.battle_id}/participants`, { headers: me.jwt, body: { agent_id: id } });
      const statuses: number[] = [];
      for (const id of agents.slice(0, LIMITS.battle_participants_max)) statuses.push((await join(id)).status);
      t.same(statuses, Array(LIMITS.battle_participants_max).fill(201), `${LIMITS.battle_participants_max} joined`);
      const over = await join(agents[LIMITS.battle_participants_max]);
      t.same([over.status, over.body.error?.code], [409, 'BATTLE_INVALID_STATE'], 'the next is refused');
      const got = await s.call('GET', `${P}/battles/${b.body.battle_id}`, { headers: me.jwt });
      t.equal(got.body.participants.length, LIMITS.battle_participants_max, 'and not added');
      t.notOk(got.body.participants.some((x: any) => x.agent_id === agents[LIMITS.battle_participants_max]));
    });

    t.test('body_bytes_max: a body of exactly N bytes is read, N + 1 is 413 PAYLOAD_TOO_LARGE', async (t) => {
      const bodyOf = (size: number) => {
        const shell = JSON.stringify({ api_key: 'ak_live_x', api_secret: 'sk_live_x', pad: '' });
        return JSON.stringify({ api_key: 'ak_live_x', api_secret: 'sk_live_x', pad: 'x'.repeat(size - shell.length) });
      };
      const headers = { 'content-type': 'application/json' };
      const fits = await s.call('POST', `${P}/auth/login`, { raw: bodyOf(BODY_MAX), headers });
      t.equal(Buffer.byteLength(bodyOf(BODY_MAX)), BODY_MAX);
      t.same([fits.status, fits.body.error.code], [401, 'INVALID_API_KEY'], 'N bytes: read, and the credentials refused');
      const over = await s.call('POST', `${P}/auth/login`, { raw: bodyOf(BODY_MAX + 1), headers });
      t.same([over.status, over.body.error.code, over.body.error.details], [413, 'PAYLOAD_TOO_LARGE', { limit_bytes: BODY_MAX }], 'N + 1 bytes: 413');
    });

    t.test('json_depth_max: N levels of nesting are accepted, N + 1 is 422 naming the value', async (t) => {
      // The body is the first level; `deep` holds the rest as nested arrays.
      const bodyOf = (levels: number) => `{"api_key":"ak_live_x","api_secret":"sk_live_x","deep":${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}}`;
      const headers = { 'content-type': 'application/json' };
      const fits = await s.call('POST', `${P}/auth/login`, { raw: bodyOf(LIMITS.json_depth_max), headers });
      t.same([fits.status, fits.body.error.code], [401, 'INVALID_API_KEY'], `${LIMITS.json_depth_max} levels: validated, and the credentials refused`);
      const over = await s.call('POST', `${P}/auth/login`, { raw: bodyOf(LIMITS.json_depth_max + 1), headers });
      const field = ['deep', ...Array(LIMITS.json_depth_max - 1).fill('0')].join('.');
      t.same([over.status, over.body.error.code, over.body.error.details], [422, 'VALIDATION_ERROR', { field, location: 'body' }], `${LIMITS.json_depth_max + 1} levels: 422`);
    });

    t.test('summary', async (t) => {
      t.ok(edges > 100, `${edges} edges`);
      t.comment(`${edges} schema edges (routes and frames), ${requests} requests, ${Date.now() - t0} ms`);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------

type Frame = Record<string, any>;

/** A WebSocket client that sends one frame at a time and waits for its answer (pushes and pings are skipped). */
class Sock {
  private readonly log: Frame[] = [];
  private wake: (() => void) | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString('utf8')) as Frame;
      if (f.id !== undefined || ['error', 'subscribed', 'unsubscribed', 'authenticated'].includes(f.type)) this.log.push(f);
      this.wake?.();
    });
  }

  static open(url: string): Promise<Sock> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(new Sock(ws)));
      ws.once('error', reject);
    });
  }

  async ask(frame: unknown, ms = 3000): Promise<Frame> {
    this.ws.send(JSON.stringify(frame));
    const until = Date.now() + ms;
    while (this.log.length === 0) {
      if (Date.now() > until) throw new Error(`no answer to ${show(frame)}`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 50);
      });
    }
    return this.log.shift()!;
  }
}
