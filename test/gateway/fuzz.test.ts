import t from 'tap';
import fc from 'fast-check';
import WebSocket from 'ws';
import { createHash, randomBytes } from 'node:crypto';
import { Kind, Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { loadConfig } from '../../engine/config.js';
import type { Route } from '../../gateway/router.js';
import { routeTable } from '../../gateway/routes/index.js';
import { ERRORS } from '../../schemas/errors.js';
import { PlaceOrderBody } from '../../schemas/trade.js';
import { OpenOrdersParams, OrderRefParams, SubscribeFrame, WS_METHODS } from '../../schemas/ws.js';
import { importCandles } from '../helpers/candles.js';
import { encodeSegment, fieldsOf, fillPath, fingerprint, routeContext, sampleObject, sampleValue, type Hints } from '../helpers/route-samples.js';
import { backends, registerAndLogin, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Property-based fuzzing of every route that takes input (path, query or body) and of the WebSocket frames.
 * Malformed requests are derived from each route's typebox schema: wrong types, missing and extra fields,
 * huge, negative and too-precise numbers, NaN/Infinity and exponent spellings (as JSON values and as raw
 * JSON tokens), unicode and control characters, oversized and broken bodies. Every answer must be below
 * 500, and every refusal a proper error envelope whose code maps to its status in the error table; a
 * refused request (and any GET) must leave the caller's account exactly as it was. The seed is fixed
 * (FUZZ_SEED overrides it, FUZZ_RUNS / FUZZ_WS_RUNS the run counts) and printed, so a failure replays.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20250601);
const RUNS = Number(process.env.FUZZ_RUNS ?? 30);
const WS_RUNS = Number(process.env.FUZZ_WS_RUNS ?? 150);
const BODY_MAX = 64 * 1024;
const FRAME_MAX = 16 * 1024;
const P = '/api/v1';
const BT_PAIR = 'ADAUSDT';
const BT_WINDOW = { start_time: '2025-06-01T00:00:00Z', end_time: '2025-06-01T01:00:00Z' };
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

type H = Record<string, string>;
type Json = unknown;

/** A per-route seed, stable when routes are added or removed elsewhere in the table. */
const seedOf = (key: string) => (SEED ^ createHash('sha256').update(key).digest().readUInt32BE(0)) | 0;

// ---------------------------------------------------------------------------------------------------------
// Values: per class of malformation, from the field's schema. A value is JSON, or a raw token written into the
// JSON text in place of the field's value (what JSON.stringify cannot produce: NaN, 1e999, a lone surrogate escape).

type V = { json: Json } | { token: string };

const CLASSES = ['wrong type', 'huge', 'negative', 'too many decimals', 'NaN/Infinity', 'exponent', 'unicode', 'control', 'too long', 'bounds', 'random'] as const;
type Class = (typeof CLASSES)[number];

const INJECTION = ['<script>alert(1)</script>', "' OR '1'='1", "'; DROP TABLE agents; --", '%00', '%zz', '../../etc/passwd', '${jndi:ldap://x}', '{{7*7}}', '__proto__', 'constructor'];
const WRONG_TYPES: Json[] = [null, true, false, [], [1], ['x'], {}, { a: 1 }, [[[[[]]]]]];
const RAW_BODIES = ['', ' ', '[]', '1', '"x"', 'null', 'true', '[{}]', '-0', '1e999', '{', '}', '{"', '{"a":1,}', '{a:1}', "{'a':1}", '\uFEFF{}', '{}{}', '{"a":NaN}', '['.repeat(1000)];
const RAW_QUERIES = ['%', '%%', '%E0%A4%A', '%00', '%FF%FE', '&&&', '=', '==x', 'a=%uD800', '+++', '[]=1', 'limit[]=1', 'limit=1&limit=2', 'offset=1e3', '%20limit=1'];

const acceptsText = (s: TSchema) => Value.Check(s, 'abc') || s[Kind] === 'String' || (s[Kind] === 'Union' && (s.anyOf as TSchema[]).some((m) => m[Kind] === 'String'));

/** Values the schema's own bounds make invalid: one past min and max, a fraction for an integer, one past maxLength or maxItems… */
function derivedBad(s: TSchema): Json[] {
  const out: Json[] = [];
  switch (s[Kind]) {
    case 'Integer':
    case 'Number':
      if (s.minimum !== undefined) out.push(s.minimum - 1, s.minimum - 0.5, String(s.minimum));
      if (s.maximum !== undefined) out.push(s.maximum + 1, s.maximum * 1000, String(s.maximum + 1));
      if (s[Kind] === 'Integer') out.push(1.5, '1', 1e21);
      break;
    case 'String':
      if (s.maxLength !== undefined) out.push('x'.repeat(s.maxLength + 1));
      if (s.minLength) out.push('');
      out.push(123, ' abc ');
      break;
    case 'Literal':
      out.push(String(s.const).toUpperCase(), ` ${s.const}`, `${s.const}x`, String(s.const).slice(1));
      break;
    case 'Union':
      for (const m of s.anyOf as TSchema[]) out.push(...derivedBad(m));
      break;
    case 'Array':
      out.push('x', [null], [{}], [123]);
      if (s.maxItems !== undefined) out.push(Array.from({ length: s.maxItems + 1 }, () => sampleValue(s.items, '')));
      break;
    case 'Boolean':
      out.push('true', 1, 0, 'yes');
      break;
    case 'Object':
    case 'Record':
      out.push([], 'x', { '': 1 }, { x: { y: { z: [] } } });
      break;
  }
  return out.length ? out : [null];
}

const J = (...xs: Json[]): V[] => xs.map((json) => ({ json }));
const T = (...xs: string[]): V[] => xs.map((token) => ({ token }));

function classValues(c: Exclude<Class, 'random'>, s: TSchema): V[] {
  switch (c) {
    case 'wrong type':
      return J(acceptsText(s) ? 123 : 'abc', null, true, [], {}, [1], { a: 1 });
    case 'huge':
      return [...J('9'.repeat(40), '9'.repeat(400), `${'9'.repeat(30)}.12345678`, 1e308, -1e308, 2 ** 53 + 1, 1e21, Number.MAX_VALUE), ...T('123456789012345678901234567890')];
    case 'negative':
      return [...J('-1', '-0.00000001', -1, -0.00000001, -(2 ** 31), '-0'), ...T('-0')];
    case 'too many decimals':
      return [...J('1.123456789', '0.000000001', 1.123456789, 1e-9, '1.00000000000000000001'), ...T('1.0000000000000000000001')];
    case 'NaN/Infinity':
      return [...T('NaN', 'Infinity', '-Infinity', '1e999', '-1e999', '-NaN'), ...J('NaN', 'nan', 'Infinity', '-Infinity', 'inf', '∞')];
    case 'exponent':
      return [...J('1e5', '1E-7', '1e+21', '1e400', '0.1e1', 1e21, 1e-7), ...T('1E+2', '1e-400', '1e5')];
    case 'unicode':
      return [...J('١٢٣', '１２３', '𝟙𝟚', '💥🚀', '\u202eRTL', '\ud800', '\udfff', 'İ', '\uFEFF1', '٫5', 'ǅ', '\u200b'), ...T('"\\ud800"', '"\\udfff\\ud800"')];
    case 'control':
      return [...J('a\u0000b', '\u0000', '\u0000'.repeat(3), '\u0007\u001b[31m', '\r\n', '\t1\n'), ...T('"\\u0000"', '"a\\u0000b"')];
    case 'too long':
      return J('x'.repeat((s.maxLength ?? 8000) + 1), s[Kind] === 'Array' ? Array.from({ length: (s.maxItems ?? 1000) + 1 }, () => sampleValue(s.items, '')) : 'x'.repeat(20_000));
    case 'bounds':
      return J(...derivedBad(s));
  }
}

const randomJson: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.double(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String),
  fc.constantFrom(...INJECTION, ...WRONG_TYPES),
);

const valueArb = (s: TSchema): fc.Arbitrary<V> =>
  fc.constantFrom(...CLASSES).chain((c) => (c === 'random' ? randomJson.map((json): V => ({ json })) : fc.constantFrom(...classValues(c, s))));

/** As text (query strings, path segments): raw tokens as written, JSON strings unquoted. */
const asText = (v: V): string => ('token' in v ? v.token : typeof v.json === 'string' ? v.json : JSON.stringify(v.json) ?? 'null');
const textArb = (s: TSchema): fc.Arbitrary<string> =>
  fc.oneof(valueArb(s).map(asText), fc.uuid().map((u) => u.replace(/-/g, '')), fc.uuid().map((u) => `${u}x`), fc.constant('00000000-0000-0000-0000-000000000000'));

// ---------------------------------------------------------------------------------------------------------
// Plans: a mutation chosen from the route's schemas, applied at run time to a valid request of the moment.
// `full`: the valid request carries every optional field too (else only the required ones).

interface FieldRef {
  path: string[];
  schema: TSchema;
  required: boolean;
}

const objectOf = (s: TSchema): TSchema | undefined =>
  s[Kind] === 'Object' ? s : s[Kind] === 'Union' ? (s.anyOf as TSchema[]).find((x) => x[Kind] === 'Object') : undefined;

/** Fields of a body schema, with one level of nested objects (risk_profile, backtest_config…). */
function fieldRefs(schema: TSchema | undefined, prefix: string[] = [], depth = 0): FieldRef[] {
  const out: FieldRef[] = [];
  for (const f of fieldsOf(schema)) {
    out.push({ path: [...prefix, f.name], schema: f.schema, required: f.required });
    const inner = objectOf(f.schema);
    if (inner && depth < 1) out.push(...fieldRefs(inner, [...prefix, f.name], depth + 1));
  }
  return out;
}

type Plan =
  | { at: 'param'; name: string; value: string; raw: boolean }
  | { at: 'query'; full: boolean; op: 'set' | 'extra'; name: string; value: string }
  | { at: 'query'; full: boolean; op: 'drop'; name: string }
  | { at: 'query'; full: boolean; op: 'raw'; text: string }
  | { at: 'body'; full: boolean; op: 'set'; path: string[]; value: V }
  | { at: 'body'; full: boolean; op: 'drop'; path: string[] }
  | { at: 'body'; full: boolean; op: 'extra'; name: string; value: Json }
  | { at: 'body'; full: boolean; op: 'dup'; path: string[]; value: Json }
  | { at: 'raw'; op: 'text'; text: string }
  | { at: 'raw'; op: 'bytes'; bytes: Uint8Array }
  | { at: 'raw'; op: 'truncate'; cut: number }
  | { at: 'raw'; op: 'huge'; size: number }
  /** Arrays nested `depth` deep as the field's value (inside `{"a": …}` with `wrap`, for fields that take an object). */
  | { at: 'raw'; op: 'deep'; depth: number; path: string[]; wrap: boolean };

const hasBody = (r: Route) => !!r.body && BODY_METHODS.has(r.method);

function planArb(r: Route): fc.Arbitrary<Plan> {
  const arbs: fc.Arbitrary<Plan>[] = [];
  const full = fc.boolean();
  if (r.paramNames.length) {
    arbs.push(fc.record({ at: fc.constant('param' as const), name: fc.constantFrom(...r.paramNames), value: textArb(Type.String()), raw: fc.boolean() }));
  }
  const q = fieldsOf(r.query);
  if (q.length) {
    const name = fc.constantFrom(...q.map((f) => f.name));
    arbs.push(
      fc.constantFrom(...q).chain((f) => fc.record({ at: fc.constant('query' as const), full, op: fc.constant('set' as const), name: fc.constant(f.name), value: textArb(f.schema) })),
      fc.constantFrom(...q).chain((f) => fc.record({ at: fc.constant('query' as const), full, op: fc.constant('set' as const), name: fc.constant(f.name), value: textArb(f.schema) })),
      fc.record({ at: fc.constant('query' as const), full, op: fc.constant('drop' as const), name }),
      fc.record({ at: fc.constant('query' as const), full, op: fc.constant('extra' as const), name: fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }), value: textArb(Type.String()) }),
      fc.record({ at: fc.constant('query' as const), full, op: fc.constant('raw' as const), text: fc.constantFrom(...RAW_QUERIES) }),
    );
  }
  if (hasBody(r)) {
    const refs = fieldRefs(r.body);
    if (refs.length) {
      const ref = fc.constantFrom(...refs);
      const set = ref.chain((f) => fc.record({ at: fc.constant('body' as const), full, op: fc.constant('set' as const), path: fc.constant(f.path), value: valueArb(f.schema) }));
      arbs.push(
        set, set, set,
        fc.record({ at: fc.constant('body' as const), full, op: fc.constant('drop' as const), path: ref.map((f) => f.path) }),
        fc.record({ at: fc.constant('body' as const), full, op: fc.constant('dup' as const), path: ref.map((f) => f.path), value: fc.jsonValue({ maxDepth: 1 }) }),
        fc.record({ at: fc.constant('raw' as const), op: fc.constant('deep' as const), depth: fc.integer({ min: 30, max: 30_000 }), path: ref.map((f) => f.path), wrap: fc.boolean() }),
      );
    }
    arbs.push(
      fc.record({ at: fc.constant('body' as const), full, op: fc.constant('extra' as const), name: fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.constantFrom('__proto__', 'constructor', 'prototype')), value: fc.jsonValue({ maxDepth: 2 }) }),
      fc.record({ at: fc.constant('raw' as const), op: fc.constant('text' as const), text: fc.oneof(fc.constantFrom(...RAW_BODIES), fc.string({ unit: 'binary', maxLength: 200 })) }),
      fc.record({ at: fc.constant('raw' as const), op: fc.constant('bytes' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 200 }) }),
      fc.record({ at: fc.constant('raw' as const), op: fc.constant('truncate' as const), cut: fc.nat() }),
      fc.record({ at: fc.constant('raw' as const), op: fc.constant('huge' as const), size: fc.integer({ min: BODY_MAX + 1, max: BODY_MAX * 4 }) }),
    );
  }
  return fc.oneof(...arbs);
}

/**
 * Run first, before the random plans: every class of malformation at least once per route (on a field that
 * rotates), a control character in every text field of the body and query, each required field missing, extra
 * fields, a broken path segment, a broken, a non-object, an oversized and a deeply nested body.
 */
function examples(r: Route): Plan[] {
  const out: Plan[] = [];
  const refs = hasBody(r) ? fieldRefs(r.body) : [];
  const q = fieldsOf(r.query);
  const classes = CLASSES.filter((c): c is Exclude<Class, 'random'> => c !== 'random');
  classes.forEach((c, i) => {
    if (refs.length) {
      const f = refs[i % refs.length];
      out.push({ at: 'body', full: true, op: 'set', path: f.path, value: classValues(c, f.schema)[0] });
    }
    if (q.length) {
      const f = q[i % q.length];
      out.push({ at: 'query', full: true, op: 'set', name: f.name, value: asText(classValues(c, f.schema)[0]) });
    }
  });
  // With and without the optional fields: either base may be the one that reaches the store.
  for (const full of [false, true]) {
    for (const f of refs) if (acceptsText(f.schema) && (full || !f.path.slice(0, -1).length)) out.push({ at: 'body', full, op: 'set', path: f.path, value: { json: 'a\u0000b' } });
    for (const f of q) if (acceptsText(f.schema)) out.push({ at: 'query', full, op: 'set', name: f.name, value: 'a\u0000b' });
  }
  for (const f of refs) if (f.required) out.push({ at: 'body', full: true, op: 'drop', path: f.path });
  for (const f of q) if (f.required) out.push({ at: 'query', full: true, op: 'drop', name: f.name });
  if (hasBody(r)) out.push({ at: 'body', full: false, op: 'extra', name: '__proto__', value: { admin: true } }, { at: 'body', full: true, op: 'extra', name: 'zz_extra', value: [1, { a: null }] });
  for (const name of r.paramNames) out.push({ at: 'param', name, value: 'a\u0000b', raw: false }, { at: 'param', name, value: '%zz', raw: true });
  if (hasBody(r)) {
    out.push({ at: 'raw', op: 'truncate', cut: 7 }, { at: 'raw', op: 'text', text: '[]' }, { at: 'raw', op: 'huge', size: BODY_MAX + 1 });
    // Deep nesting where the schema takes any JSON (a free-form config), else on the first field.
    const free = refs.filter((f) => Value.Check(f.schema, { a: [[{}]] }));
    for (const f of free.length ? free : refs.slice(0, 1)) out.push({ at: 'raw', op: 'deep', depth: 20_000, path: f.path, wrap: free.length > 0 });
  }
  return out;
}

const fuzzable = (r: Route) => r.paramNames.length > 0 || fieldsOf(r.query).length > 0 || (!!r.body && BODY_METHODS.has(r.method));

function setAt(obj: Record<string, any>, path: string[], value: Json): void {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null || Array.isArray(o[k])) o[k] = {};
    o = o[k];
  }
  Object.defineProperty(o, path[path.length - 1], { value, enumerable: true, writable: true, configurable: true });
}

function dropAt(obj: Record<string, any>, path: string[]): void {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) return;
    o = o[k];
  }
  delete o[path[path.length - 1]];
}

interface Base {
  params: Record<string, string>;
  query: Record<string, string>;
  body: Record<string, unknown> | undefined;
}

interface Wire {
  path: string;
  body?: string | Uint8Array;
  /** The server may close the connection while a body over the limit is still being sent. */
  oversized: boolean;
}

/** Stands in for a value while the JSON text is built, then is replaced by the raw token. */
const MARK = '\u0001fuzz-mark\u0001';
const MARK_JSON = JSON.stringify(MARK);

function materialize(r: Route, plan: Plan, base: Base): Wire {
  const params = { ...base.params };
  const query = new URLSearchParams(base.query);
  let rawQuery = '';
  let rawParam: [string, string] | null = null;
  const body = base.body === undefined ? undefined : structuredClone(base.body);
  let text: string | Uint8Array | undefined;
  let oversized = false;
  switch (plan.at) {
    case 'param':
      if (plan.raw) rawParam = [plan.name, plan.value];
      else params[plan.name] = plan.value;
      break;
    case 'query':
      if (plan.op === 'set') query.set(plan.name, plan.value);
      else if (plan.op === 'extra') query.append(plan.name, plan.value);
      else if (plan.op === 'drop') query.delete(plan.name);
      else if (plan.op === 'raw') rawQuery = plan.text;
      break;
    case 'body': {
      const b = body ?? {};
      if (plan.op === 'set' && 'json' in plan.value) setAt(b, plan.path, plan.value.json);
      else if (plan.op === 'drop') dropAt(b, plan.path);
      else if (plan.op === 'extra') setAt(b, [plan.name], plan.value);
      if ((plan.op === 'set' && 'token' in plan.value) || plan.op === 'dup') {
        setAt(b, plan.path, MARK);
        const json = JSON.stringify(b);
        const key = JSON.stringify(plan.path[plan.path.length - 1]);
        text = plan.op === 'dup'
          ? json.replace(`${key}:${MARK_JSON}`, `${key}:${JSON.stringify(plan.value)},${key}:${JSON.stringify(plan.value)}`)
          : json.replace(MARK_JSON, (plan.value as { token: string }).token);
      } else text = JSON.stringify(b);
      break;
    }
    case 'raw':
      if (plan.op === 'text') text = plan.text;
      else if (plan.op === 'bytes') text = plan.bytes;
      else if (plan.op === 'truncate') {
        const json = JSON.stringify(body ?? {});
        text = json.slice(0, plan.cut % Math.max(1, json.length - 1));
      } else if (plan.op === 'huge') {
        text = `{"${Object.keys(body ?? { a: 1 })[0] ?? 'a'}":"${'x'.repeat(plan.size)}"}`;
        oversized = true;
      } else {
        const b = body ?? {};
        setAt(b, plan.path, MARK);
        const deep = '['.repeat(plan.depth) + ']'.repeat(plan.depth);
        text = JSON.stringify(b).replace(MARK_JSON, plan.wrap ? `{"a":${deep}}` : deep);
        oversized = Buffer.byteLength(text) > BODY_MAX;
      }
      break;
  }
  if (text === undefined && body !== undefined) text = JSON.stringify(body);
  let path = fillPath(r.path, params);
  if (rawParam) path = r.path.replace(/\{([^}]+)\}/g, (_, n: string) => (n === rawParam![0] ? rawParam![1] : encodeSegment(params[n] ?? '')));
  const qs = [query.toString(), rawQuery].filter(Boolean).join('&');
  return { path: qs ? `${path}?${qs}` : path, body: text, oversized };
}

// ---------------------------------------------------------------------------------------------------------
// Fuzz contexts: an account with an agent, a resting order, and (when the route needs one) a running backtest
// or whatever else its path names. A request that succeeds and is not a GET may have changed anything (an
// archived agent, a rotated key): the next run gets a new context.

interface Ctx {
  accountId: string;
  agentId: string;
  jwt: H;
  agentKey: H;
  params: Record<string, string>;
}

async function call(s: TestServer, method: string, path: string, headers: H, body?: unknown) {
  const res = await fetch(s.url + path, { method, headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function makeCtx(s: TestServer, r: Route): Promise<Ctx> {
  const { me, params } = await routeContext(s, r, { pair: BT_PAIR, window: BT_WINDOW }, hints);
  return { accountId: me.reg.account_id, agentId: me.reg.agent_id, jwt: me.jwt, agentKey: me.agentKey, params };
}

const hints = (params: Record<string, string>): Hints => ({
  ...params, symbol: params.symbol, quantity: params.symbol === BT_PAIR ? '100' : '0.001', candle_interval: 60, pairs: [BT_PAIR], ...BT_WINDOW, preset: null,
  agent_ids: [params.agent_id],
});

function baseFor(r: Route, ctx: Ctx, plan: Plan): Base {
  const h = hints(ctx.params);
  const full = 'full' in plan && plan.full;
  const query = Object.fromEntries(Object.entries(sampleObject(r.query, h, full)).map(([k, v]) => [k, String(v)]));
  const body = hasBody(r) ? sampleObject(r.body, h, full) : undefined;
  return { params: ctx.params, query, body };
}

const headersFor = (r: Route, ctx: Ctx): H => (r.auth === 'public' ? {} : r.auth === 'jwt' ? ctx.jwt : ctx.agentKey);

/** A refusal in the error envelope, its code mapping to the status it came with. */
function envelopeProblem(status: number, text: string): string | null {
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    return 'body is not JSON';
  }
  const e = json?.error;
  if (!e || typeof e !== 'object') return 'no `error` object';
  if (!(e.code in ERRORS)) return `unknown code ${e.code}`;
  if (ERRORS[e.code as keyof typeof ERRORS].status !== status) return `code ${e.code} is ${ERRORS[e.code as keyof typeof ERRORS].status}, sent with ${status}`;
  if (typeof e.message !== 'string') return 'no message';
  if (!('details' in e) || (e.details !== null && typeof e.details !== 'object')) return 'details is neither an object nor null';
  return null;
}

const show = (x: unknown, n = 300) => {
  const s = typeof x === 'string' ? x : x instanceof Uint8Array ? `<${x.length} bytes>` : JSON.stringify(x);
  return s && s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s;
};

// ---------------------------------------------------------------------------------------------------------

for (const backend of backends()) {
  t.test(`fuzz on ${backend.name}`, async (t) => {
    const t0 = Date.now();
    const s = await startTestServer(backend, {
      rate: { agent_per_minute: 0, account_per_minute: 0, auth_per_ip_per_minute: 0, public_per_ip_per_minute: 0 },
      snapshot_interval_ms: 0,
      body_bytes_max: BODY_MAX,
      ws: { ...loadConfig({}).ws, frame_bytes_max: FRAME_MAX, portfolio_interval_ms: 60_000, ping_interval_ms: 60_000, auth_timeout_ms: 10_000, subscriptions_max: 8 },
    });
    t.teardown(() => s.stop());
    // Every pair priced, so a well-formed order never meets 503 PRICE_NOT_AVAILABLE.
    for (const p of s.engine.market.pairs()) s.engine.market.ingest({ symbol: p.symbol, price: p.symbol === 'BTCUSDT' ? '50000' : '2', quantity: '1000000', time: Date.now() });
    await importCandles(s.engine.db, `bybit-linear/${BT_PAIR}_1m.csv`, BT_PAIR, '1m', '2025-05-31T00:00:00Z', '2025-06-01T01:00:00Z');
    t.comment(`seed ${SEED} (FUZZ_SEED), ${RUNS} runs per route (FUZZ_RUNS), ${WS_RUNS} WebSocket frames (FUZZ_WS_RUNS)`);

    // A bystander: never addressed by the fuzzer; nothing it owns may change.
    const by = await registerAndLogin(s, { starting_balance: '10000' });
    await call(s, 'POST', `${P}/trade/order`, by.agentKey, { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.01' });
    await call(s, 'POST', `${P}/trade/order`, by.agentKey, { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.01', price: '40000' });
    const views = async () => ({
      balance: await call(s, 'GET', `${P}/account/balance`, by.agentKey),
      open: await call(s, 'GET', `${P}/trade/orders/open`, by.agentKey),
      positions: await call(s, 'GET', `${P}/account/positions`, by.agentKey),
    });
    const bystander = { views: await views(), fp: await fingerprint(s.engine, by.reg.account_id) };

    const routes = routeTable().filter(fuzzable);
    const totals: Record<string, number> = {};
    let requests = 0;
    let contexts = 0;

    t.test('HTTP: every route with input, malformed from its schema', async (t) => {
      for (const r of routes) {
        const name = `${r.method} ${r.path}`;
        t.test(name, async (t) => {
          const seed = seedOf(name);
          const statuses: Record<number, number> = {};
          let ctx: Ctx | null = null;
          let before = '';
          const prop = fc.asyncProperty(planArb(r), async (plan) => {
            if (!ctx) {
              ctx = await makeCtx(s, r);
              contexts++;
              before = await fingerprint(s.engine, ctx.accountId);
            }
            const wire = materialize(r, plan, baseFor(r, ctx, plan));
            const headers: H = { ...headersFor(r, ctx) };
            if (wire.body !== undefined) headers['content-type'] = 'application/json';
            const where = `${r.method} ${wire.path} body=${show(wire.body)} plan=${show(plan, 200)}`;
            let status: number;
            let text: string;
            try {
              const res = await fetch(s.url + wire.path, { method: r.method, headers, body: wire.body as BodyInit | undefined });
              status = res.status;
              text = await res.text();
            } catch (err) {
              if (!wire.oversized) throw new Error(`request failed: ${(err as Error).message} — ${where}`);
              // The server answered 413 and closed while the client was still sending; it must still be up.
              const h = await fetch(`${s.url}/health`);
              if (h.status !== 200) throw new Error(`server down after an oversized body — ${where}`);
              return;
            }
            requests++;
            statuses[status] = (statuses[status] ?? 0) + 1;
            totals[status] = (totals[status] ?? 0) + 1;
            if (status >= 500) throw new Error(`${status} ${show(text)} — ${where}`);
            if (status >= 400) {
              const problem = envelopeProblem(status, text);
              if (problem) throw new Error(`${status} not an error envelope (${problem}): ${show(text)} — ${where}`);
            }
            if (wire.oversized && status !== 413) throw new Error(`oversized body answered ${status}, not 413 — ${where}`);
            // A public route gets no credentials: it cannot touch the context's account (the bystander check covers it).
            if (r.auth === 'public') return;
            if (status < 400 && r.method !== 'GET') {
              ctx = null; // it worked and may have changed anything: the next run starts afresh
              return;
            }
            const after = await fingerprint(s.engine, ctx.accountId);
            if (after !== before) throw new Error(`a ${status} ${r.method} changed the account:\nbefore ${before}\nafter  ${after}\n— ${where}`);
          });
          const fixed = examples(r);
          try {
            // numRuns counts the examples too: RUNS random plans come after them.
            await fc.assert(prop, { seed, numRuns: fixed.length + RUNS, examples: fixed.map((p): [Plan] => [p]), endOnFailure: true, includeErrorInReport: true });
            t.pass(`${fixed.length} fixed + ${RUNS} random plans: ${JSON.stringify(statuses)}`);
          } catch (err) {
            t.fail(`seed ${seed}: ${(err as Error).message}`);
          }
        });
      }
    });

    t.test('WebSocket frames', async (t) => {
      const ctx = await makeCtx(s, routeTable()[0]);
      const key = ctx.agentKey['x-api-key'];
      const url = `ws://127.0.0.1:${s.server.port}/ws/v1?api_key=${encodeURIComponent(key)}`;
      const sock = await Sock.open(url);
      t.teardown(() => sock.ws.terminate());
      const methodParams: Record<string, TSchema> = {
        'order.place': PlaceOrderBody, 'order.cancel': OrderRefParams, 'order.status': OrderRefParams, 'orders.open': OpenOrdersParams,
      };
      const validParams = (method: string) => sampleObject(methodParams[method], { ...hints(ctx.params), order_id: ctx.params.order_id });
      const placeFields = fieldRefs(PlaceOrderBody);
      const subFields = fieldRefs(SubscribeFrame).filter((f) => f.path[0] !== 'action' && f.path[0] !== 'type');
      const paramFields = [...placeFields, ...fieldRefs(OrderRefParams), ...fieldRefs(OpenOrdersParams)];

      /** `{"id","method","params"}` with one field of the params replaced (as JSON or as a raw token). */
      const request = (id: Json, method: string, params: Json, m: { path: string[]; value: V } | null): WsFrame => {
        if (m && params && typeof params === 'object' && !Array.isArray(params)) setAt(params as Record<string, Json>, m.path, 'json' in m.value ? m.value.json : MARK);
        let text = JSON.stringify({ id, method, params });
        if (m && 'token' in m.value) text = text.replace(MARK_JSON, m.value.token);
        let sent: Json;
        try {
          sent = JSON.parse(text).id;
        } catch {
          sent = undefined; // not JSON any more: answered by an error frame without an id
        }
        return { frame: text, requestId: typeof sent === 'string' || typeof sent === 'number' ? sent : undefined, method };
      };
      /** A subscribe/unsubscribe frame with one field replaced. */
      const control = (action: string, m: { path: string[]; value: V } | null): WsFrame => {
        const f: Record<string, Json> = { action, channel: 'ticker', symbol: 'BTCUSDT' };
        if (m) setAt(f, m.path, 'json' in m.value ? m.value.json : MARK);
        const text = JSON.stringify(f);
        return { frame: m && 'token' in m.value ? text.replace(MARK_JSON, m.value.token) : text };
      };

      const mutation = (fields: FieldRef[]) => fc.option(fc.constantFrom(...fields).chain((f) => valueArb(f.schema).map((value) => ({ path: f.path, value }))), { nil: null });
      const frameArb: fc.Arbitrary<WsFrame> = fc.oneof(
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => ({ frame: JSON.stringify(v) ?? 'null' })) },
        { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }).map((frame) => ({ frame })) },
        { weight: 1, arbitrary: fc.constantFrom(...RAW_BODIES).map((frame) => ({ frame })) },
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 300 }).map((frame) => ({ frame })) },
        { weight: 1, arbitrary: fc.integer({ min: FRAME_MAX / 2, max: FRAME_MAX - 64 }).map((size) => ({ frame: JSON.stringify({ action: 'subscribe', channel: 'x'.repeat(size) }) })) },
        {
          weight: 3,
          arbitrary: fc.tuple(
            fc.oneof(fc.constantFrom('subscribe', 'unsubscribe', 'ping', 'pong', 'SUBSCRIBE', '', 'auth'), fc.string({ unit: 'binary', maxLength: 12 })),
            mutation(subFields),
          ).map(([action, m]) => (action === 'auth' ? { frame: JSON.stringify({ action: 'auth', api_key: key }) } : control(action, m))),
        },
        {
          weight: 6,
          arbitrary: fc.tuple(
            fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.constantFrom(null, true, {}, [], 'x'.repeat(200), -1, 2 ** 60)),
            fc.oneof(fc.constantFrom(...WS_METHODS), fc.constantFrom(...WS_METHODS), fc.constantFrom('constructor', '__proto__', 'toString', 'hasOwnProperty', 'order.PLACE', '', 'x'.repeat(100)), fc.string({ unit: 'binary', maxLength: 20 })),
            fc.oneof(fc.constant('valid' as const), fc.constant('valid' as const), fc.constantFrom(...WRONG_TYPES, 'x', 1), fc.jsonValue({ maxDepth: 2 })),
            mutation(paramFields),
          ).map(([id, method, params, m]) => request(id, method, params === 'valid' ? validParams(method) : params, m)),
        },
      );

      // First, every class of malformation on every field of order.place, order.cancel's order_id and the subscribe frame.
      const classes = CLASSES.filter((c): c is Exclude<Class, 'random'> => c !== 'random');
      const fixed: WsFrame[] = [];
      let k = 0;
      for (const c of classes) {
        for (const f of placeFields) fixed.push(request(`x${++k}`, 'order.place', validParams('order.place'), { path: f.path, value: classValues(c, f.schema)[0] }));
        fixed.push(request(++k, 'order.cancel', validParams('order.cancel'), { path: ['order_id'], value: classValues(c, OrderRefParams.properties.order_id)[0] }));
        for (const f of subFields) fixed.push(control('subscribe', { path: f.path, value: classValues(c, f.schema)[0] }));
      }
      for (const raw of RAW_BODIES) fixed.push({ frame: raw });

      const MUTATING = new Set(['order.place', 'order.cancel', 'orders.cancel_all']);
      const statuses: Record<string, number> = {};
      let before = await fingerprint(s.engine, ctx.accountId);
      let n = 0;
      const prop = fc.asyncProperty(frameArb, async ({ frame, requestId, method }) => {
        const bytes = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
        if (bytes > FRAME_MAX) return; // over the limit closes the socket by design; tested below
        const from = sock.log.length;
        sock.ws.send(frame, { binary: typeof frame !== 'string' });
        const answer = requestId === undefined ? null : await sock.next((f) => f.id === requestId, 5000, from).catch(() => null);
        // A request sent after it is answered once the frame before it was read: the socket is alive and in order.
        const sentinel = `sentinel-${++n}`;
        sock.ws.send(JSON.stringify({ id: sentinel, method: 'account.balance' }));
        const alive = await sock.next((f) => f.id === sentinel, 5000, from).catch(() => null);
        const where = `frame ${show(frame)}`;
        if (!alive || sock.closed) throw new Error(`socket closed or silent after ${where}: ${show(sock.log.slice(-3))} close=${show(sock.closed)}`);
        if (alive.status !== 200) throw new Error(`sentinel answered ${show(alive)} after ${where}`);
        for (const f of sock.log.slice(from)) {
          if ('unparsable' in f) throw new Error(`non-JSON frame ${show(f.unparsable)} after ${where}`);
          if (f.type === 'error') {
            const spec = ERRORS[f.code as keyof typeof ERRORS];
            if (!spec || spec.status >= 500 || typeof f.message !== 'string') throw new Error(`bad error frame ${show(f)} after ${where}`);
            statuses[f.code] = (statuses[f.code] ?? 0) + 1;
          } else if ('status' in f) {
            if (typeof f.status !== 'number' || f.status >= 500) throw new Error(`status ${f.status}: ${show(f)} after ${where}`);
            if (f.status >= 400 && (!f.error || ERRORS[f.error.code as keyof typeof ERRORS]?.status !== f.status)) throw new Error(`bad error response ${show(f)} after ${where}`);
            if (f.id !== sentinel) statuses[`${f.status} ${f.error?.code ?? ''}`.trim()] = (statuses[`${f.status} ${f.error?.code ?? ''}`.trim()] ?? 0) + 1;
          }
        }
        const after = await fingerprint(s.engine, ctx.accountId);
        const changed = answer?.status === 200 && method !== undefined && MUTATING.has(method);
        if (!changed && after !== before) throw new Error(`state changed without a successful order request:\nbefore ${before}\nafter  ${after}\n— ${where} answer ${show(answer)}`);
        before = after;
      });
      try {
        await fc.assert(prop, { seed: seedOf('ws'), numRuns: fixed.length + WS_RUNS, examples: fixed.map((f): [WsFrame] => [f]), endOnFailure: true, includeErrorInReport: true });
        t.pass(`${fixed.length} fixed + ${WS_RUNS} random frames: ${JSON.stringify(statuses)}`);
      } catch (err) {
        t.fail(`seed ${seedOf('ws')}: ${(err as Error).message}`);
      }
      t.notOk(sock.closed, 'the socket is still open after every frame under the size limit');

      // By design: a frame over the limit closes with 1009, a bad key in an auth frame with 4401 (after an error frame).
      const big = await Sock.open(url);
      big.ws.send(JSON.stringify({ action: 'ping', pad: 'x'.repeat(FRAME_MAX) }));
      t.equal((await big.closedWith()).code, 1009, 'an oversized frame closes the socket with 1009');
      const badAuth = await Sock.open(`ws://127.0.0.1:${s.server.port}/ws/v1`);
      badAuth.ws.send(JSON.stringify({ action: 'auth', api_key: `ak_live_${'\u0000'.repeat(3)}${'x'.repeat(61)}` }));
      t.match(await badAuth.next((f) => f.type === 'error', 3000), { type: 'error', code: 'INVALID_API_KEY' }, 'a bad key in the auth frame: an error frame');
      t.equal((await badAuth.closedWith()).code, 4401, '… then 4401, not 1011');
      const again = await Sock.open(url);
      t.equal((await again.request('account.balance')).status, 200, 'a new socket works afterwards');
      again.ws.terminate();
    });

    t.test('afterwards: the server is up and nothing else changed', async (t) => {
      const health = await fetch(`${s.url}/health`);
      t.equal(health.status, 200, '/health answers 200');
      t.same(await views(), bystander.views, "the bystander's balances, open orders and positions (over HTTP) are unchanged");
      t.equal(await fingerprint(s.engine, by.reg.account_id), bystander.fp, "the bystander's rows and wallet are unchanged");
      t.comment(`${routes.length} routes fuzzed, ${requests} HTTP requests (${contexts} fresh accounts), statuses ${JSON.stringify(totals)}, ${Date.now() - t0} ms`);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------

type Frame = Record<string, any>;
/** A frame to send; `requestId` when it is a request whose answer carries that id. */
type WsFrame = { frame: string | Uint8Array; requestId?: string | number; method?: string };

class Sock {
  readonly log: Frame[] = [];
  private waiters = new Set<() => void>();
  private seq = 0;
  closed: { code: number } | null = null;
  private readonly closing: Promise<{ code: number }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => {
      let f: Frame;
      try {
        f = JSON.parse(data.toString('utf8'));
      } catch {
        f = { unparsable: data.toString('utf8') };
      }
      if (f && typeof f === 'object' && f.type === 'ping') return;
      this.log.push(f);
      for (const w of [...this.waiters]) w();
    });
    this.closing = new Promise((r) => ws.once('close', (code) => r((this.closed = { code }))));
  }

  static open(url: string): Promise<Sock> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { maxPayload: 1024 * 1024 });
      const s = new Sock(ws);
      ws.once('open', () => resolve(s));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  closedWith(ms = 3000): Promise<{ code: number }> {
    return Promise.race([this.closing, new Promise<{ code: number }>((r) => setTimeout(() => r({ code: -1 }), ms))]);
  }

  /** The first frame at or after log index `from` matching `pred`, waiting up to `ms` for it. */
  next(pred: (f: Frame) => boolean, ms = 3000, from = 0): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error('timeout'));
      }, ms);
      const check = () => {
        for (; from < this.log.length; from++) {
          if (pred(this.log[from])) {
            clearTimeout(timer);
            this.waiters.delete(check);
            resolve(this.log[from]);
            return;
          }
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  request(method: string, params: Record<string, unknown> = {}): Promise<Frame> {
    const id = `q${++this.seq}-${randomBytes(3).toString('hex')}`;
    const from = this.log.length;
    this.ws.send(JSON.stringify({ id, method, params }));
    return this.next((f) => f.id === id, 3000, from);
  }
}

