import t from 'tap';
import WebSocket from 'ws';
import { randomBytes, randomUUID } from 'node:crypto';
import { createSigner } from 'fast-jwt';
import { loadConfig } from '../../engine/config.js';
import { ACTION_GROUPS, type ActionGroup } from '../../engine/identity/types.js';
import type { Route } from '../../gateway/router.js';
import { routeTable } from '../../gateway/routes/index.js';
import { ERRORS } from '../../schemas/errors.js';
import { importCandles } from '../helpers/candles.js';
import { creatorFor, fillPath, fingerprint, sampleObject, sampleQuery, type Hints } from '../helpers/route-samples.js';
import { backends, registerAndLogin, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The authorization matrix, generated from the route table: every route is called as every kind of caller
 * (no credentials, malformed keys, forged and expired JWTs, dead and suspended keys, keys whose
 * authorized_actions leave the route out, and another account or agent aiming at the victim's resources).
 * What each caller must get follows from `route.auth` and `route.group` alone (the EXPECT table); a route added
 * tomorrow is covered without editing this file. No answer may carry a byte of the victim's data.
 *
 * Public routes never read credentials (the gateway resolves a caller only when `route.auth !== 'public'`): a
 * garbage key or a forged token there gets exactly the anonymous answer. An X-Agent-Id naming another account's
 * agent is answered 403 PERMISSION_DENIED, as in the reference (a 404 would hide even the agent's existence;
 * both are accepted here, nothing else is).
 */

type H = Record<string, string>;
interface Answer {
  status: number;
  text: string;
  json: any;
}

const P = '/api/v1';
/** The victim's backtest runs over these stored candles. */
const BT_PAIR = 'ADAUSDT';
const BT_WINDOW = { start_time: '2025-06-01T00:00:00Z', end_time: '2025-06-01T01:00:00Z' };
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function send(s: TestServer, method: string, path: string, headers: H, body?: unknown): Promise<Answer> {
  const h: H = { ...headers };
  let payload: string | undefined;
  if (body !== undefined) {
    payload = JSON.stringify(body);
    h['content-type'] = 'application/json';
  }
  const res = await fetch(s.url + path, { method, headers: h, body: payload });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* markdown, html */
  }
  return { status: res.status, text, json };
}

async function ok(s: TestServer, method: string, path: string, headers: H, body?: unknown): Promise<any> {
  const r = await send(s, method, path, headers, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  return r.json;
}

// ---------------------------------------------------------------------------------------------------------
// Who calls, and what each caller must get.

type Kind =
  | 'anonymous' // no credentials at all
  | 'badKey' // a key that resolves to nothing (malformed, unknown, a secret, an archived/deleted/rotated agent's)
  | 'badToken' // a JWT that must not verify (expired, wrong key, alg none, HS384/HS512, no exp, tampered, garbage)
  | 'suspendedKey' // an agent key whose mode is suspended or terminated
  | 'restrictedKey' // an agent key whose authorized_actions leave out the route's group
  | 'strangerKey' // another account's valid agent or account key (an agent key ignores X-Agent-Id)
  | 'strangerToken' // another account's valid JWT
  | 'foreignScopeKey' // another account's account key narrowed with X-Agent-Id to the victim's agent
  | 'foreignScopeToken' // another account's JWT narrowed with X-Agent-Id to the victim's agent
  | 'siblingKey' // another agent of the victim's own account
  | 'ownKey'; // the victim's own agent or account key, sent only to JWT-only routes (a key never manages agents)

type Expect =
  | { kind: 'ignored' } // public: credentials are never read; the answer is the anonymous one
  | { kind: 'refused'; statuses: number[]; codes: string[] }
  | { kind: 'served' }; // authenticated as someone else: the handler runs and must find none of the victim's things

const IGNORED: Expect = { kind: 'ignored' };
const SERVED: Expect = { kind: 'served' };
const refused = (statuses: number[], ...codes: string[]): Expect => ({ kind: 'refused', statuses, codes });
const NO_TOKEN = refused([401], 'INVALID_TOKEN');
const NO_KEY = refused([401], 'INVALID_API_KEY');

/**
 * The expected outcome per caller kind, from the route's auth mode (public | optional | any | jwt) and group.
 * JWT-only routes read only the Bearer token, so every key-based caller gets 401 INVALID_TOKEN there.
 */
const EXPECT: Record<Kind, (r: Route) => Expect> = {
  anonymous: (r) => ({ public: IGNORED, optional: SERVED, any: NO_KEY, jwt: NO_TOKEN })[r.auth],
  badKey: (r) => ({ public: IGNORED, optional: NO_KEY, any: NO_KEY, jwt: NO_TOKEN })[r.auth],
  badToken: (r) => (r.auth === 'public' ? IGNORED : NO_TOKEN),
  suspendedKey: (r) => ({ public: IGNORED, optional: refused([403], 'AGENT_SUSPENDED'), any: refused([403], 'AGENT_SUSPENDED'), jwt: NO_TOKEN })[r.auth],
  restrictedKey: (r) => (r.auth === 'public' ? IGNORED : r.auth === 'jwt' ? NO_TOKEN : r.group ? refused([403], 'PERMISSION_DENIED') : SERVED),
  strangerKey: (r) => ({ public: IGNORED, optional: SERVED, any: SERVED, jwt: NO_TOKEN })[r.auth],
  strangerToken: (r) => (r.auth === 'public' ? IGNORED : SERVED),
  // The reference answers an X-Agent-Id of another account with 403 PERMISSION_DENIED; 404 AGENT_NOT_FOUND hides even more.
  foreignScopeKey: (r) => (r.auth === 'public' ? IGNORED : r.auth === 'jwt' ? NO_TOKEN : refused([403, 404], 'PERMISSION_DENIED', 'AGENT_NOT_FOUND')),
  foreignScopeToken: (r) => (r.auth === 'public' ? IGNORED : refused([403, 404], 'PERMISSION_DENIED', 'AGENT_NOT_FOUND')),
  siblingKey: (r) => ({ public: IGNORED, optional: SERVED, any: SERVED, jwt: NO_TOKEN })[r.auth],
  ownKey: () => NO_TOKEN,
};

interface Cred {
  name: string;
  kind: Kind;
  headers: (r: Route) => H;
}

// ---------------------------------------------------------------------------------------------------------
// The victim: an account (with an owner_id), two agents, live orders and a trade, a running backtest with a
// resting order. Everything that identifies it is collected in `secrets`.

interface Victim {
  accountId: string;
  ownerRef: string;
  agentId: string;
  agentKey: string;
  accountKey: string;
  jwt: H;
  siblingId: string;
  siblingKey: string;
  orderId: string;
  sessionId: string;
  btOrderId: string;
  /** Ids of resources found for path parameters this file does not know (e.g. a battle), by parameter name. */
  discovered: Record<string, string>;
  /** The victim's battle, when the table has a battles collection to make one with. */
  battleId: string | null;
  /** Anything that would identify the victim account. */
  secrets: string[];
  /** What belongs to the victim agent alone (a sibling agent may see the rest). */
  agentSecrets: string[];
}

async function makeVictim(s: TestServer, t: { comment: (...a: unknown[]) => void }): Promise<Victim> {
  const tag = randomBytes(5).toString('hex');
  const ownerRef = `victim-owner-${tag}`;
  const onboard = await ok(s, 'POST', `${P}/agents/register`, {}, {
    owner_id: ownerRef, agent_name: `VictimAgent-${tag}`, agent_type: 'trading', starting_balance: '7777.12345678',
  });
  const login = await ok(s, 'POST', `${P}/auth/login`, {}, { api_key: onboard.account.api_key, api_secret: onboard.account.api_secret });
  const jwt = { authorization: `Bearer ${login.token}` };
  const agentKey = { 'x-api-key': onboard.api_key as string };
  const sibling = await ok(s, 'POST', `${P}/agents`, jwt, { display_name: `VictimSibling-${tag}`, llm_model: `victim-model-${tag}`, starting_balance: '3333.87654321' });
  const coid = `victim-coid-${tag}`;
  const filled = await ok(s, 'POST', `${P}/trade/order`, agentKey, { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.01' });
  const pending = await ok(s, 'POST', `${P}/trade/order`, agentKey, { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.01', price: '40000', client_order_id: coid });
  const trades = await ok(s, 'GET', `${P}/trade/history`, agentKey);
  const label = `victim-label-${tag}`;
  const bt = await ok(s, 'POST', `${P}/backtest/create`, agentKey, { ...BT_WINDOW, candle_interval: 60, pairs: [BT_PAIR], starting_balance: '10000', strategy_label: label });
  await ok(s, 'POST', `${P}/backtest/${bt.session_id}/start`, agentKey);
  const btOrder = await ok(s, 'POST', `${P}/backtest/${bt.session_id}/trade/order`, agentKey, { symbol: BT_PAIR, side: 'buy', type: 'limit', quantity: '1000', price: '0.01' });
  const v: Victim = {
    accountId: onboard.account_id, ownerRef, agentId: onboard.agent_id, agentKey: onboard.api_key, accountKey: onboard.account.api_key, jwt, siblingId: sibling.agent_id, siblingKey: sibling.api_key,
    orderId: pending.order_id, sessionId: bt.session_id, btOrderId: btOrder.order_id, discovered: {}, battleId: null, secrets: [], agentSecrets: [],
  };
  v.agentSecrets = [onboard.api_key, filled.order_id, pending.order_id, coid, trades.trades[0].trade_id, bt.session_id, btOrder.order_id, label];
  v.secrets = [
    ...v.agentSecrets, onboard.account_id, ownerRef, onboard.agent_id, sibling.agent_id, sibling.api_key, onboard.api_key.slice(0, 12), sibling.api_key.slice(0, 12),
    onboard.account.api_key, onboard.account.api_secret, login.token, `VictimAgent-${tag}`, `VictimSibling-${tag}`, `victim-model-${tag}`, '7777.12345678', '3333.87654321',
  ];
  await discover(s, t, v);
  return v;
}

const KNOWN_PARAMS = new Set(['agent_id', 'order_id', 'session_id', 'symbol']);

/**
 * A path parameter this file does not know (a battle id, say): look for the POST that creates such a thing
 * (`<prefix>` or `<prefix>/create`), call it as the victim with a body sampled from its schema, and take the id
 * from the answer. When that fails the parameter gets a random UUID, and the routes are still checked for
 * status and leaks.
 */
async function discover(s: TestServer, t: { comment: (...a: unknown[]) => void }, v: Victim): Promise<void> {
  const routes = routeTable();
  for (const r of routes) {
    for (const name of r.paramNames) {
      if (KNOWN_PARAMS.has(name) || name in v.discovered) continue;
      const creator = creatorFor(routes, r, name);
      let id: string | undefined;
      let why = creator ? '' : 'no POST route creates one';
      if (creator) {
        const body = sampleObject(creator.body, hintsFor(v, { agent_ids: [v.agentId, v.siblingId] }));
        for (const headers of [v.jwt, { 'x-api-key': v.agentKey }]) {
          const res = await send(s, 'POST', creator.path, headers, body);
          const found = res.json?.[name] ?? res.json?.id;
          if (res.status < 300 && typeof found === 'string') {
            id = found;
            break;
          }
          why += ` | POST ${creator.path} ${JSON.stringify(body)} → ${res.status} ${res.text.slice(0, 200)}`;
        }
      }
      v.discovered[name] = id ?? randomUUID();
      if (id) v.secrets.push(id);
      if (id && creator!.path.endsWith('/battles')) v.battleId = id;
      t.comment(`path parameter {${name}}: ${id ? `victim's resource from POST ${creator!.path}` : `no victim resource could be made (${why}); a random UUID`}`);
    }
  }
}

/** Field hints for request bodies and queries: every id-like field names the victim's resource. */
function hintsFor(v: Victim, extra: Hints = {}): Hints {
  return {
    agent_id: v.agentId, order_id: v.orderId, session_id: v.sessionId, owner_id: v.ownerRef, agent_ids: [v.agentId],
    sessions: `${v.sessionId},${randomUUID()}`, symbol: 'BTCUSDT', quantity: '0.001', candle_interval: 60, pairs: [BT_PAIR],
    ...BT_WINDOW, ...Object.fromEntries(Object.entries(v.discovered).map(([k, id]) => [k, id])), ...extra,
  };
}

/** Path parameters: the victim's agent, order, backtest (and whatever `discover` found); symbols are not owned. */
function victimParams(r: Route, v: Victim): Record<string, string> {
  const inBacktest = r.paramNames.includes('session_id');
  const out: Record<string, string> = {};
  for (const n of r.paramNames) {
    if (n === 'agent_id') out[n] = v.agentId;
    else if (n === 'order_id') out[n] = inBacktest ? v.btOrderId : v.orderId;
    else if (n === 'session_id') out[n] = v.sessionId;
    else if (n === 'symbol') out[n] = inBacktest ? BT_PAIR : 'BTCUSDT';
    else out[n] = v.discovered[n];
  }
  return out;
}

const ownsPath = (r: Route) => r.paramNames.some((n) => n !== 'symbol');
/** Parameters naming something of one agent (not of the account), the ones a sibling agent must not reach. */
const agentPrivatePath = (r: Route) => r.paramNames.some((n) => n === 'order_id' || n === 'session_id');

interface Call {
  method: string;
  path: string;
  headers: H;
  body: unknown;
}

/**
 * The request for a route: victim ids in the path; a body and query sampled from the route's schemas with
 * the victim's ids in every id-like field. A public route gets an empty body, so that repeating it (register)
 * answers the same each time and only the credentials vary.
 */
function requestFor(r: Route, v: Victim, headers: H): Call {
  const hints = hintsFor(v);
  const q = new URLSearchParams(sampleQuery(r.query, hints)).toString();
  const path = fillPath(r.path, victimParams(r, v)) + (q ? `?${q}` : '');
  const body = !BODY_METHODS.has(r.method) ? undefined : r.auth === 'public' ? {} : r.body ? sampleObject(r.body, hints) : undefined;
  return { method: r.method, path, headers, body };
}

/** Secrets absent from the request: an id the caller itself sent may be echoed back; nothing else may appear. */
function leaks(answer: Answer, call: Call, secrets: string[]): string[] {
  const sent = `${call.path} ${JSON.stringify(call.headers)} ${JSON.stringify(call.body ?? null)}`;
  return secrets.filter((x) => !sent.includes(x) && answer.text.includes(x));
}

function isEnvelope(a: Answer): boolean {
  const e = a.json?.error;
  return !!e && typeof e.code === 'string' && e.code in ERRORS && ERRORS[e.code as keyof typeof ERRORS].status === a.status && typeof e.message === 'string';
}

// ---------------------------------------------------------------------------------------------------------

for (const backend of backends()) {
  t.test(`authorization matrix on ${backend.name}`, async (t) => {
    const t0 = Date.now();
    const rate = { agent_per_minute: 0, account_per_minute: 0, auth_per_ip_per_minute: 0, public_per_ip_per_minute: 0 };
    const s = await startTestServer(backend, {
      rate, snapshot_interval_ms: 0,
      ws: { ...loadConfig({}).ws, portfolio_interval_ms: 100, auth_timeout_ms: 2000, ping_interval_ms: 60_000 },
    });
    t.teardown(() => s.stop());
    if (!s.engine.market.ingest({ symbol: 'BTCUSDT', price: '50000.00', quantity: '1000000', time: Date.now() })) throw new Error('tick refused');
    await importCandles(s.engine.db, `bybit-linear/${BT_PAIR}_1m.csv`, BT_PAIR, '1m', '2025-05-31T00:00:00Z', '2025-06-01T01:00:00Z');
    const victim = await makeVictim(s, t);
    const attacker = await registerAndLogin(s, { display_name: 'Attacker', starting_balance: '10000' });
    await ok(s, 'POST', `${P}/trade/order`, attacker.agentKey, { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.01', price: '41000' });
    const newAgent = async (body: Record<string, unknown>) => ok(s, 'POST', `${P}/agents`, attacker.jwt, { display_name: `A-${randomBytes(3).toString('hex')}`, ...body });

    const archived = await newAgent({});
    await ok(s, 'POST', `${P}/agents/${archived.agent_id}/archive`, attacker.jwt);
    const rotated = await newAgent({});
    await ok(s, 'POST', `${P}/agents/${rotated.agent_id}/regenerate-key`, attacker.jwt);
    const deleted = await newAgent({});
    await ok(s, 'DELETE', `${P}/agents/${deleted.agent_id}`, attacker.jwt);
    const suspended = await newAgent({});
    await ok(s, 'PUT', `${P}/agents/mode`, { 'x-api-key': suspended.api_key }, { mode: 'suspended' });
    const terminated = await newAgent({});
    await ok(s, 'PUT', `${P}/agents/mode`, { 'x-api-key': terminated.api_key }, { mode: 'terminated' });
    // One key per group, authorized for every group but that one.
    const restricted = new Map<ActionGroup, string>();
    for (const g of ACTION_GROUPS) restricted.set(g, (await newAgent({ authorized_actions: ACTION_GROUPS.filter((x) => x !== g) })).api_key);

    const secret = s.engine.secrets.jwtSecret;
    const now = Math.floor(Date.now() / 1000);
    const sub = victim.accountId;
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const [head, , sig] = attacker.token.split('.');
    const badTokens: Array<[string, string]> = [
      ['expired (right key)', createSigner({ key: secret, algorithm: 'HS256' })({ sub, iat: now - 7200, exp: now - 3600 })],
      ['wrong key', createSigner({ key: 'not-the-server-secret', algorithm: 'HS256', expiresIn: 600_000 })({ sub })],
      ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub, iat: now, exp: now + 600 })}.`],
      ['HS512 (right key)', createSigner({ key: secret, algorithm: 'HS512', expiresIn: 600_000 })({ sub })],
      ['HS384 (right key)', createSigner({ key: secret, algorithm: 'HS384', expiresIn: 600_000 })({ sub })],
      ['no exp (right key)', createSigner({ key: secret, algorithm: 'HS256' })({ sub, iat: now })],
      ["attacker's token with the victim's sub", `${head}.${b64({ sub, iat: now, exp: now + 600 })}.${sig}`],
      ['an agent key as token', victim.agentKey],
      ['garbage', 'abc.def.ghi'],
    ];

    const key = (k: string) => () => ({ 'x-api-key': k });
    const creds: Cred[] = [
      { name: 'no credentials', kind: 'anonymous', headers: () => ({}) },
      { name: 'malformed key', kind: 'badKey', headers: key('not-a-key') },
      { name: 'unknown well-formed key', kind: 'badKey', headers: key(`ak_live_${'x'.repeat(64)}`) },
      { name: 'api secret sent as key', kind: 'badKey', headers: key(attacker.reg.api_secret) },
      { name: 'archived agent key', kind: 'badKey', headers: key(archived.api_key) },
      { name: 'rotated (old) agent key', kind: 'badKey', headers: key(rotated.api_key) },
      { name: 'deleted agent key', kind: 'badKey', headers: key(deleted.api_key) },
      ...badTokens.map(([name, tok]): Cred => ({ name: `JWT: ${name}`, kind: 'badToken', headers: () => ({ authorization: `Bearer ${tok}` }) })),
      { name: 'suspended agent key', kind: 'suspendedKey', headers: key(suspended.api_key) },
      { name: 'terminated agent key', kind: 'suspendedKey', headers: key(terminated.api_key) },
      { name: "key whose authorized_actions exclude the route's group", kind: 'restrictedKey', headers: (r) => ({ 'x-api-key': restricted.get(r.group ?? 'market')! }) },
      { name: "another account's agent key", kind: 'strangerKey', headers: () => attacker.agentKey },
      { name: "another account's account key", kind: 'strangerKey', headers: () => attacker.accountKey },
      { name: "another account's agent key + X-Agent-Id of the victim (ignored)", kind: 'strangerKey', headers: () => ({ ...attacker.agentKey, 'x-agent-id': victim.agentId }) },
      { name: "another account's JWT", kind: 'strangerToken', headers: () => attacker.jwt },
      { name: "another account's JWT + account key (as the SDK sends)", kind: 'strangerToken', headers: () => ({ ...attacker.jwt, ...attacker.accountKey }) },
      { name: "another account's JWT + X-Agent-Id of the victim", kind: 'foreignScopeToken', headers: () => ({ ...attacker.jwt, 'x-agent-id': victim.agentId }) },
      { name: "another account's account key + X-Agent-Id of the victim", kind: 'foreignScopeKey', headers: () => ({ ...attacker.accountKey, 'x-agent-id': victim.agentId }) },
      { name: "a sibling agent's key", kind: 'siblingKey', headers: key(victim.siblingKey) },
      { name: "the victim's own agent key", kind: 'ownKey', headers: key(victim.agentKey) },
      { name: "the victim's own account key", kind: 'ownKey', headers: () => ({ 'x-api-key': victim.accountKey }) },
    ];

    const victimBefore = await fingerprint(s.engine, victim.accountId);
    const routes = routeTable();
    let calls = 0;

    t.test('every route × every caller', async (t) => {
      for (const r of routes) {
        t.test(`${r.method} ${r.path} (${r.auth}, ${r.group ?? 'no group'})`, async (t) => {
          const anonymous = requestFor(r, victim, {});
          const baseline = await send(s, anonymous.method, anonymous.path, {}, anonymous.body);
          // Callers are independent of one another: their requests go out together, and are judged in table order.
          // A sibling shares the account: only one agent's own things (orders, backtests) are its business here.
          // The victim's own keys go only where no key may go (JWT-only routes), so the victim's state stays as it was.
          const cases = creds.filter((c) => (c.kind !== 'siblingKey' || agentPrivatePath(r)) && (c.kind !== 'ownKey' || r.auth === 'jwt'));
          const answers = await Promise.all(cases.map(async (c) => {
            const call = requestFor(r, victim, c.headers(r));
            return { c, call, a: c === creds[0] ? baseline : await send(s, call.method, call.path, call.headers, call.body) };
          }));
          calls += answers.length;
          for (const { c, call, a } of answers) {
            const expect = EXPECT[c.kind](r);
            const what = `${c.name} → ${a.status} ${a.text.slice(0, 160)}`;
            t.ok(a.status < 500, `${c.name}: no 5xx`, { answer: a.text.slice(0, 300) });
            if (c.kind !== 'ownKey') t.same(leaks(a, call, c.kind === 'siblingKey' ? victim.agentSecrets : victim.secrets), [], `${c.name}: nothing of the victim in the answer`);
            if (expect.kind === 'ignored') {
              t.equal(a.status, baseline.status, `public route ignores ${what}`);
            } else if (expect.kind === 'refused') {
              t.ok(expect.statuses.includes(a.status), `${what}: expected ${expect.statuses.join('|')}`);
              t.ok(expect.codes.includes(a.json?.error?.code), `${c.name}: code ${a.json?.error?.code} in ${expect.codes.join('|')}`);
              t.ok(isEnvelope(a), `${c.name}: error envelope`);
            } else if (ownsPath(r)) {
              // Someone else's credentials on the victim's agent, order, backtest…: refused as forbidden or not found,
              // or (an account-level caller on a route that acts as an agent) refused for want of an agent before any
              // lookup, an answer that does not depend on the id.
              const code: string = a.json?.error?.code ?? '';
              const needsAgent = a.status === 422 && code === 'VALIDATION_ERROR' && a.json.error.details?.field === 'X-Agent-Id';
              t.ok(a.status === 403 || a.status === 404 || needsAgent, `${what}: the victim's resource is refused`);
              t.ok(code === 'PERMISSION_DENIED' || code.endsWith('_NOT_FOUND') || needsAgent, `${c.name}: code ${code}`);
              t.ok(isEnvelope(a), `${c.name}: error envelope`);
            } else if (a.status >= 400) {
              t.ok(isEnvelope(a), `${what}: error envelope`);
            }
          }
        });
      }
    });

    t.test('the leak detector sees the victim in the victim\'s own answers (control)', async (t) => {
      const own = { method: 'GET', path: `${P}/agents/overview`, headers: victim.jwt, body: undefined };
      const a = await send(s, own.method, own.path, own.headers);
      t.equal(a.status, 200);
      t.ok(leaks(a, own, victim.secrets).length >= 4, `found ${leaks(a, own, victim.secrets).length} victim identifiers`);
    });

    t.test("the victim's state is untouched and its credentials still work", async (t) => {
      t.comment(`${routes.length} routes, ${creds.length} kinds of caller, ${calls} requests, ${Date.now() - t0} ms since start`);
      t.equal(await fingerprint(s.engine, victim.accountId), victimBefore, 'balances, orders, agents, keys, backtests: unchanged');
      t.equal((await send(s, 'GET', `${P}/account/info`, { 'x-api-key': victim.agentKey })).status, 200);
      t.equal((await send(s, 'GET', `${P}/agents/${victim.agentId}`, victim.jwt)).json.mode, 'sandbox');
      t.equal((await send(s, 'GET', `${P}/trade/order/${victim.orderId}`, { 'x-api-key': victim.agentKey })).json.status, 'pending');
      t.equal((await send(s, 'GET', `${P}/backtest/${victim.sessionId}/status`, { 'x-api-key': victim.agentKey })).json.status, 'running');
    });

    t.test('WebSocket: no subscription, scope or request reaches the victim', async (t) => {
      const clients: Client[] = [];
      t.teardown(() => clients.forEach((c) => c.ws.terminate()));
      const url = (q: Record<string, string>) => `ws://127.0.0.1:${s.server.port}/ws/v1?${new URLSearchParams(q)}`;
      const open = async (q: Record<string, string>) => {
        const h = await handshake(url(q));
        if (!h.client) throw new Error(`handshake refused: ${h.status} ${h.text}`);
        clients.push(h.client);
        return h.client;
      };

      // Refused before the upgrade: an account key narrowed to the victim's agent, dead and suspended keys.
      for (const [name, q, statuses] of [
        ["account key + the victim's agent_id", { api_key: attacker.reg.api_key, agent_id: victim.agentId }, [403, 404]],
        ['archived agent key', { api_key: archived.api_key }, [401]],
        ['deleted agent key', { api_key: deleted.api_key }, [401]],
        ['suspended agent key', { api_key: suspended.api_key }, [403]],
        ['terminated agent key', { api_key: terminated.api_key }, [403]],
        ['forged key', { api_key: `ak_live_${'z'.repeat(64)}` }, [401]],
      ] as const) {
        const h = await handshake(url(q));
        t.ok((statuses as readonly number[]).includes(h.status), `${name}: HTTP ${h.status} before the upgrade`);
        t.same(victim.secrets.filter((x) => x !== victim.agentId && h.text.includes(x)), [], `${name}: nothing of the victim in the refusal`);
      }
      const authFrame = new Client(new WebSocket(url({})));
      clients.push(authFrame);
      await authFrame.opened;
      authFrame.send({ action: 'auth', api_key: attacker.reg.api_key, agent_id: victim.agentId });
      t.match(await authFrame.next((f) => f.type === 'error'), { type: 'error', code: /^(PERMISSION_DENIED|AGENT_NOT_FOUND)$/ });
      t.equal((await authFrame.closed).code, 4401, 'auth frame scoped to the victim: closed with 4401');

      // Listeners: the attacker's agent key, account key, agent key "narrowed" to the victim (ignored), and a
      // socket that asks for the victim's streams by name; the victim's sibling; the victim itself (control).
      const byAgent = await open({ api_key: attacker.reg.agent_api_key });
      const byAccount = await open({ api_key: attacker.reg.api_key });
      const agentScoped = await open({ api_key: attacker.reg.agent_api_key, agent_id: victim.agentId });
      const sibling = await open({ api_key: victim.siblingKey });
      const self = await open({ api_key: victim.agentKey });
      const listeners = [byAgent, byAccount, agentScoped, sibling];
      for (const c of [...listeners, self]) {
        t.match(await c.subscribe({ channel: 'orders' }), { type: 'subscribed', channel: 'orders' });
        t.match(await c.subscribe({ channel: 'portfolio' }), { type: 'subscribed', channel: 'portfolio' });
      }
      for (const frame of [
        { channel: 'orders', agent_id: victim.agentId }, { channel: 'portfolio', agent_id: victim.agentId },
        { channel: `orders:${victim.agentId}` }, { channel: `portfolio:${victim.agentId}` },
      ]) {
        const answer = await byAgent.subscribe(frame);
        t.ok(answer.type === 'error' || answer.channel === frame.channel.split(':')[0], `${JSON.stringify(frame)} → ${JSON.stringify(answer)}: no wider subscription`);
      }

      // A battle is watched only by its owner account.
      if (victim.battleId) {
        t.match(await self.subscribe({ channel: 'battle', battle_id: victim.battleId }), { type: 'subscribed' }, 'the owner may watch its battle (control)');
        for (const c of [byAgent, byAccount, sibling]) {
          const answer = await c.subscribe({ channel: 'battle', battle_id: victim.battleId });
          if (c === sibling) continue; // same account: allowed
          t.match(answer, { type: 'error', code: /^(BATTLE_NOT_FOUND|PERMISSION_DENIED)$/ }, "another account cannot watch the victim's battle");
        }
      }

      // The victim trades while they listen.
      const vKey = { 'x-api-key': victim.agentKey };
      const m = await ok(s, 'POST', `${P}/trade/order`, vKey, { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.002' });
      const l = await ok(s, 'POST', `${P}/trade/order`, vKey, { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.002', price: '42000' });
      await ok(s, 'DELETE', `${P}/trade/order/${l.order_id}`, vKey);
      const w = (await self.request('order.place', { symbol: 'BTCUSDT', side: 'sell', type: 'market', quantity: '0.001' })).result;
      for (const id of [m.order_id, l.order_id, w.order_id]) await self.next((f) => f.type === 'order' && f.order_id === id, 3000, `victim sees ${id}`);
      await self.next((f) => f.type === 'portfolio' && f.agent_id === victim.agentId, 3000, 'victim portfolio push');
      await sleep(400); // several portfolio intervals: any stray push has arrived by now
      const victimIds = [victim.agentId, m.order_id, l.order_id, w.order_id];
      const attackerAgents = new Set([attacker.reg.agent_id]);
      for (const [name, c, allowed] of [
        ['attacker agent key', byAgent, attackerAgents], ['attacker account key', byAccount, null], ['attacker agent key + victim agent_id', agentScoped, attackerAgents],
        ['victim sibling', sibling, new Set([victim.siblingId])],
      ] as const) {
        const pushes = c.log.filter((f) => (f.type === 'order' || f.type === 'portfolio') && f.channel !== undefined && f.agent_id !== undefined);
        const strangers = pushes.filter((f) => (allowed ? !allowed.has(f.agent_id) : f.agent_id === victim.agentId || victim.siblingId === f.agent_id));
        t.same(strangers, [], `${name}: no push of another agent`);
        const text = c.log.filter((f) => f.type !== 'error').map((f) => JSON.stringify(f)).join('\n');
        const pool = c === sibling ? [...victimIds.slice(1), ...victim.agentSecrets] : [...victimIds, ...victim.secrets];
        t.same(pool.filter((x) => text.includes(x)), [], `${name}: no victim id in any frame`);
      }

      // Requests on the victim's order ids over the attacker's socket.
      for (const c of [byAgent, agentScoped, sibling]) {
        for (const id of [victim.orderId, m.order_id]) {
          for (const method of ['order.status', 'order.cancel']) {
            const r = await c.request(method, { order_id: id });
            t.match(r, { status: 404, error: { code: 'ORDER_NOT_FOUND' } }, `${method} on the victim's order → 404`);
            t.notOk('result' in r, 'no result');
          }
        }
        const open = await c.request('orders.open', {});
        t.equal(open.status, 200);
        t.notOk(JSON.stringify(open).includes(victim.orderId), 'orders.open lists none of the victim\'s orders');
      }
      t.equal((await send(s, 'GET', `${P}/trade/order/${victim.orderId}`, vKey)).json.status, 'pending', 'the victim\'s order is still open');
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// A small WebSocket client that logs every frame.

type Frame = Record<string, any>;

class Client {
  readonly log: Frame[] = [];
  private queue: Frame[] = [];
  private waiters = new Set<() => void>();
  private seq = 0;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number }>;

  constructor(readonly ws: WebSocket) {
    ws.on('error', () => {});
    this.opened = new Promise((r) => ws.once('open', () => r()));
    ws.on('message', (data: Buffer) => {
      let f: Frame;
      try {
        f = JSON.parse(data.toString('utf8'));
      } catch {
        f = { unparsable: data.toString('utf8') };
      }
      this.log.push(f);
      this.queue.push(f);
      for (const w of [...this.waiters]) w();
    });
    this.closed = new Promise((r) => ws.once('close', (code) => r({ code })));
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  next(pred: (f: Frame) => boolean, ms = 2000, what = 'frame'): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; last frames: ${JSON.stringify(this.log.slice(-5))}`));
      }, ms);
      const check = () => {
        const i = this.queue.findIndex(pred);
        if (i < 0) return;
        const [f] = this.queue.splice(i, 1);
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(f);
      };
      this.waiters.add(check);
      check();
    });
  }

  request(method: string, params: Record<string, unknown>): Promise<Frame> {
    const id = `m${++this.seq}`;
    this.send({ id, method, params });
    return this.next((f) => f.id === id, 3000, `answer to ${method}`);
  }

  subscribe(frame: Record<string, unknown>): Promise<Frame> {
    this.send({ action: 'subscribe', ...frame });
    return this.next((f) => f.type === 'subscribed' || f.type === 'error', 2000, `answer to ${JSON.stringify(frame)}`);
  }
}

function handshake(url: string): Promise<{ client: Client | null; status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const client = new Client(ws);
    ws.once('open', () => resolve({ client, status: 101, text: '' }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        ws.terminate();
        resolve({ client: null, status: res.statusCode ?? 0, text });
      });
    });
    ws.once('error', reject);
  });
}
