import t from 'tap';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import WebSocket from 'ws';
import { createMemoryBus, createRedisBus } from '../../engine/bus.js';
import { openEmbedded, openPostgres } from '../../engine/store/db.js';
import { FaultProxy, targetOf, viaProxy } from '../helpers/fault-proxy.js';
import { backends, registerAndLogin, startTestServer, type Backend, type TestServer } from '../helpers/server.js';
import { call, checkApiAgainstJournal, checkTables, problems, readStored, viewOf } from '../helpers/durability.js';
import { baseEnv, ensureBuilt, FakeBinance, freshStorage, reap, startGateway } from '../helpers/gateway-process.js';

/**
 * Faults of the services the server depends on. PostgreSQL and Redis are taken away through a TCP proxy the
 * test controls (test/helpers/fault-proxy.ts), never by stopping the machine's own services:
 *  - PostgreSQL gone (connections cut, new ones refused) or hanging (a blackhole): orders are refused with 503
 *    SERVICE_UNAVAILABLE within a bound and never half-accepted; reads answer from memory; /health is 503
 *    "degraded" naming storage; when the database is back the same process takes orders again, and every
 *    order acknowledged before is in the journal, the tables and the wallet (= a replay of its journal).
 *  - Redis gone or hanging: requests keep working, promptly, with rate limits open (no X-RateLimit headers);
 *    /health stays 200 but says "degraded" naming the bus; the headers come back with Redis.
 * These need a real PostgreSQL / Redis (DATABASE_URL / REDIS_URL, both set in CI); an unreachable one fails.
 *  - Graceful shutdown under load (every backend): the real server process takes orders over REST and WebSocket
 *    and gets SIGTERM. It exits 0; requests sent after it began shutting down get 503 or no connection; every
 *    2xx answer is durable, nothing refused exists, and the tables and the restarted API equal a journal replay.
 */

const DB_URL = process.env.DATABASE_URL;
const REDIS_URL = process.env.REDIS_URL;
/** Client-side statement bound for the blackhole case (production default: QUERY_TIMEOUT_MS in db.ts). */
const QUERY_TIMEOUT_MS = 2000;
/** How long an order may take to be refused while the database is down or hanging. */
const REFUSE_WITHIN_MS = 8000;
const RECOVER_WITHIN_MS = 15_000;

type H = Record<string, string>;
const RETRIED = { symbol: 'ETHUSDT', side: 'buy', type: 'market', quantity: '0.1', client_order_id: 'retry-1' };
const RISK = { max_position_size_pct: 100, daily_loss_limit_pct: 100, max_open_orders: 200, max_order_size_pct: 100, min_order_size_usd: 0, order_rate_limit: 1_000_000 };
const LOST = { symbol: 'ETHUSDT', side: 'buy', type: 'market', quantity: '0.2', client_order_id: 'lost-answer' };

const tick = (s: TestServer, symbol: string, price: string, quantity = '1') => s.engine.market.ingest({ symbol, price, quantity, time: Date.now() });

async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: DB_URL, connectionTimeoutMillis: 5000 });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await c.end();
}

/** A socket that answers `request()` by id and keeps every push. */
class WsClient {
  readonly frames: any[] = [];
  private seq = 0;
  private waiters = new Set<() => void>();

  closed = false;

  private constructor(readonly ws: WebSocket) {
    ws.on('error', () => {});
    ws.on('message', (d: Buffer) => {
      this.frames.push(JSON.parse(d.toString('utf8')));
      for (const w of [...this.waiters]) w();
    });
    ws.on('close', () => {
      this.closed = true;
      for (const w of [...this.waiters]) w();
    });
  }

  static open(url: string): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const c = new WsClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
    });
  }

  next(pred: (f: any) => boolean, ms: number, what: string): Promise<any> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (f: any | undefined) => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        if (f !== undefined) return resolve(f);
        reject(new Error(`no ${what} within ${ms} ms${this.closed ? ' (socket closed)' : ''}; last frames ${JSON.stringify(this.frames.slice(-3))}`));
      };
      const wake = () => {
        const f = this.frames.find(pred);
        if (f !== undefined) {
          this.frames.splice(this.frames.indexOf(f), 1);
          settle(f);
        } else if (this.closed) settle(undefined);
      };
      timer = setTimeout(() => settle(undefined), ms);
      this.waiters.add(wake);
      wake();
    });
  }

  request(method: string, params: Record<string, unknown>, ms = REFUSE_WITHIN_MS + 2000): Promise<any> {
    const id = `q${++this.seq}`;
    this.ws.send(JSON.stringify({ id, method, params }));
    return this.next((f) => f.id === id, ms, `answer to ${method}`);
  }

  /** The answer, or null when the socket closed (or stayed silent) before one came. */
  tryRequest(method: string, params: Record<string, unknown>, ms = 10_000): Promise<any | null> {
    if (this.closed) return Promise.resolve(null);
    return this.request(method, params, ms).catch(() => null);
  }

  async subscribe(channel: string): Promise<void> {
    this.ws.send(JSON.stringify({ action: 'subscribe', channel }));
    await this.next((f) => f.type === 'subscribed' && f.channel === channel, 3000, `subscribed ${channel}`);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Reads that must answer from memory while the database is away (market data, and the agent's own wallet). */
async function memoryReads(s: TestServer, h: H) {
  const get = async (path: string, headers: H = h) => {
    const r = await s.call('GET', path, { headers });
    return { path, status: r.status, body: r.body };
  };
  return {
    balance: await get('/api/v1/account/balance'),
    positions: await get('/api/v1/account/positions'),
    open: await get('/api/v1/trade/orders/open'),
    price: await get('/api/v1/market/price/BTCUSDT', {}),
    prices: await get('/api/v1/market/prices', {}),
    ticker: await get('/api/v1/market/ticker/ETHUSDT', {}),
    pairs: await get('/api/v1/market/pairs', {}),
  };
}

const strip = (r: Awaited<ReturnType<typeof memoryReads>>) => ({
  balance: r.balance.body.balances,
  positions: r.positions.body.positions?.map((p: any) => ({ symbol: p.symbol, quantity: p.quantity, avg_entry_price: p.avg_entry_price })),
  open: r.open.body.orders?.map((o: any) => o.order_id).sort(),
});

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = Date.now();
  const value = await fn();
  return { ms: Date.now() - t0, value };
}

/** Polls until `fn` returns true. */
async function until(fn: () => Promise<boolean>, within_ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - t0;
    if (Date.now() - t0 > within_ms) throw new Error(`${what}: not within ${within_ms} ms`);
    await sleep(100);
  }
}

if (!DB_URL) {
  t.comment('DATABASE_URL is not set: nothing to run for postgres. A database outage needs a real PostgreSQL behind the fault proxy; the embedded database has no connection to lose.');
} else {
  t.test('PostgreSQL outage: orders refused with 503, reads from memory, recovery without a restart, nothing lost', async (t) => {
    const proxy = new FaultProxy(targetOf(DB_URL));
    await proxy.start();
    t.teardown(() => proxy.close());
    const schema = `t_${randomBytes(6).toString('hex')}`;
    const backend: Backend = {
      name: 'postgres',
      db: async () => ({ db: await openPostgres(viaProxy(DB_URL, proxy.port), { schema, poolSize: 4, queryTimeout_ms: QUERY_TIMEOUT_MS }), drop: () => dropSchema(schema) }),
      bus: async () => createMemoryBus(),
    };
    // Periodic equity snapshots keep writing through the outage (they must fail quietly).
    const s = await startTestServer(backend, { snapshot_interval_ms: 500 });
    let stopped = false;
    t.teardown(async () => {
      if (!stopped) await proxy.resume().then(() => s.stop());
    });
    tick(s, 'BTCUSDT', '50000.00', '1000000');
    tick(s, 'ETHUSDT', '3000.00', '1000000');

    const me = await registerAndLogin(s, { starting_balance: '100000' });
    const h = me.agentKey;
    const agentId: string = me.reg.agent_id;
    const placed = new Map<string, any>();
    const order = async (body: Record<string, unknown>) => {
      const r = await s.call('POST', '/api/v1/trade/order', { headers: h, body });
      if (r.status === 201) placed.set(r.body.order_id, r.body);
      return r;
    };
    const ws = await WsClient.open(`ws://127.0.0.1:${s.server.port}/ws/v1?api_key=${h['x-api-key']}`);
    t.teardown(() => ws.close());
    await ws.subscribe('ticker:BTCUSDT');
    await ws.subscribe('orders');

    // Before: market fills, resting orders on both symbols, one cancel; over REST and over the socket.
    t.equal((await order({ symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.1', client_order_id: 'pre-1' })).status, 201);
    t.equal((await order({ symbol: 'ETHUSDT', side: 'buy', type: 'market', quantity: '2', client_order_id: 'pre-2' })).status, 201);
    const resting = await order({ symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.05', price: '45000', client_order_id: 'pre-3' });
    t.equal(resting.status, 201);
    const stop = await order({ symbol: 'ETHUSDT', side: 'sell', type: 'stop_loss', quantity: '1', price: '2500', client_order_id: 'pre-4' });
    t.equal(stop.status, 201);
    const viaWs = await ws.request('order.place', { symbol: 'BTCUSDT', side: 'sell', type: 'limit', quantity: '0.02', price: '60000', client_order_id: 'pre-5' });
    t.equal(viaWs.status, 200, JSON.stringify(viaWs));
    placed.set(viaWs.result.order_id, viaWs.result);
    const cancelMe = await order({ symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.01', price: '40000', client_order_id: 'pre-6' });
    t.equal((await s.call('DELETE', `/api/v1/trade/order/${cancelMe.body.order_id}`, { headers: h })).status, 200);
    // Another account whose wallet and key were never used: nothing of it is in memory.
    const cold = await registerAndLogin(s, { starting_balance: '1000' });
    await s.engine.journal.flush();
    const before = await memoryReads(s, h);
    for (const r of Object.values(before)) t.equal(r.status, 200, `before: ${r.path}`);
    t.equal(before.open.body.total, 3, 'three resting orders before the outage');
    t.equal((await s.call('GET', '/health')).status, 200, '/health ok before');

    await t.test('database gone: connections cut, new ones refused', async (t) => {
      await proxy.pause();
      const refused = await timed(() => order({ symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.01', client_order_id: 'down-1' }));
      t.equal((await order(RETRIED)).status, 503, 'an order the client will retry later is refused too');
      t.equal(refused.value.status, 503, JSON.stringify(refused.value.body));
      t.equal(refused.value.body.error?.code, 'SERVICE_UNAVAILABLE');
      t.ok(refused.ms < REFUSE_WITHIN_MS, `refused in ${refused.ms} ms`);
      const wsRefused = await timed(() => ws.request('order.place', { symbol: 'ETHUSDT', side: 'buy', type: 'limit', quantity: '1', price: '2000', client_order_id: 'down-2' }));
      t.equal(wsRefused.value.status, 503, JSON.stringify(wsRefused.value));
      t.equal(wsRefused.value.error?.code, 'SERVICE_UNAVAILABLE');
      t.ok(wsRefused.ms < REFUSE_WITHIN_MS, `socket order refused in ${wsRefused.ms} ms`);
      const cancel = await s.call('DELETE', `/api/v1/trade/order/${resting.body.order_id}`, { headers: h });
      t.equal(cancel.status, 503, `a cancel is refused too: ${JSON.stringify(cancel.body)}`);

      const during = await memoryReads(s, h);
      for (const r of Object.values(during)) t.equal(r.status, 200, `during: ${r.path} ${r.status === 200 ? '' : JSON.stringify(r.body)}`);
      t.same(strip(during), strip(before), 'balances, positions and resting orders as before the outage: the refused orders are not in the wallet');
      // What only the database has answers 503 (retry later), never 500.
      const history = await s.call('GET', '/api/v1/trade/orders', { headers: h });
      t.match(history, { status: 503, body: { error: { code: 'SERVICE_UNAVAILABLE' } } }, 'order history (database) 503');
      const coldRead = await s.call('GET', '/api/v1/account/balance', { headers: cold.agentKey });
      t.match(coldRead, { status: 503, body: { error: { code: 'SERVICE_UNAVAILABLE' } } }, 'a key never seen before (database lookup) 503');
      const health = await timed(() => s.call('GET', '/health'));
      t.equal(health.value.status, 503, '/health 503');
      t.match(health.value.body, { status: 'degraded', down: ['storage'], storage: { kind: 'postgres', connected: false }, bus: { connected: true } });
      t.ok(health.ms < 4000, `/health answered in ${health.ms} ms`);

      // A tick crossing a resting order while nothing can be made durable: the fill is not kept.
      tick(s, 'BTCUSDT', '44000.00');
      await sleep(300);
      tick(s, 'BTCUSDT', '50000.00');
      const push = await ws.next((f) => f.type === 'ticker' && f.symbol === 'BTCUSDT' && f.price === '44000.00000000', 3000, 'a ticker push during the outage');
      t.ok(push, 'ticker pushes go on during the outage');
      t.notOk(ws.frames.some((f) => f.type === 'order' && f.order_id === resting.body.order_id && f.status === 'filled'), 'no fill pushed for a fill that was not made durable');
      const after = await memoryReads(s, h);
      t.same(strip(after), strip(before), 'a fill that could not be made durable is not in the wallet either');
    });

    await t.test('database back: orders taken again without a restart', async (t) => {
      await proxy.resume();
      const ms = await until(async () => (await s.call('GET', '/health')).status === 200, RECOVER_WITHIN_MS, '/health ok again');
      t.pass(`/health ok ${ms} ms after the database came back`);
      // Before the agent does anything: its resting order fires on the ticks after the outage (the wallet is first
      // read again from its journal, which the ticks themselves ask for).
      const filled = await until(async () => {
        tick(s, 'BTCUSDT', '44000.00');
        await sleep(50);
        await s.engine.journal.flush();
        return (await s.call('GET', `/api/v1/trade/order/${resting.body.order_id}`, { headers: h })).body.status === 'filled';
      }, RECOVER_WITHIN_MS, 'the resting limit fills');
      t.pass(`the resting limit filled on ticks alone, ${filled} ms after the database came back`);
      tick(s, 'BTCUSDT', '50000.00');
      const retried = await order(RETRIED);
      t.match(retried, { status: 201, body: { client_order_id: 'retry-1', status: 'filled' } }, 'the retry of a refused client_order_id is a new order, taken now');
      const again = await order({ symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.01', client_order_id: 'after-1' });
      t.equal(again.status, 201, JSON.stringify(again.body));
      const wsAgain = await ws.request('order.place', { symbol: 'ETHUSDT', side: 'buy', type: 'limit', quantity: '1', price: '2000', client_order_id: 'after-2' });
      t.equal(wsAgain.status, 200, JSON.stringify(wsAgain));
      placed.set(wsAgain.result.order_id, wsAgain.result);
    });

    await t.test('database hanging (blackhole): refused within the query timeout, then back', async (t) => {
      await proxy.blackhole();
      const refused = await timed(() => order({ symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.01', client_order_id: 'hang-1' }));
      t.equal(refused.value.status, 503, JSON.stringify(refused.value.body));
      t.ok(refused.ms < REFUSE_WITHIN_MS, `refused in ${refused.ms} ms (query timeout ${QUERY_TIMEOUT_MS} ms)`);
      const health = await timed(() => s.call('GET', '/health'));
      t.equal(health.value.status, 503);
      t.ok(health.ms < 4000, `/health answered in ${health.ms} ms`);
      t.equal((await s.call('GET', '/api/v1/account/balance', { headers: h })).status, 200, 'balance from memory');
      await proxy.resume();
      await until(async () => (await s.call('GET', '/health')).status === 200, RECOVER_WITHIN_MS, '/health ok again');
      const again = await order({ symbol: 'ETHUSDT', side: 'sell', type: 'market', quantity: '0.5', client_order_id: 'hang-2' });
      t.equal(again.status, 201, JSON.stringify(again.body));
    });

    await t.test('a commit whose answer was lost: 503, yet recorded; memory catches up from the journal; the retry finds it', async (t) => {
      const eth = async () => (await s.call('GET', '/api/v1/account/balance', { headers: h })).body.balances.find((b: any) => b.asset === 'ETH')?.total;
      const ethBefore = await eth();
      const cut = proxy.loseAnswerTo('INSERT INTO journal');
      const r = await order(LOST);
      await cut;
      t.match(r, { status: 503, body: { error: { code: 'SERVICE_UNAVAILABLE' } } }, 'the client is told 503');
      const direct = await openPostgres(DB_URL, { schema, poolSize: 1 });
      const rows = await direct.query<{ id: string }>(`SELECT id FROM orders WHERE client_order_id = $1`, [LOST.client_order_id]);
      await direct.close();
      t.equal(rows.length, 1, 'yet the order is in the database');
      // Reads answer at once from memory (without the order), and catch up with the journal by themselves.
      const ms = await until(async () => (await eth()) !== ethBefore, RECOVER_WITHIN_MS, 'the balance shows the recorded order');
      t.pass(`reads show the recorded order ${ms} ms later, without a write`);
      const retry = await order(LOST);
      t.match(retry, { status: 201, body: { order_id: rows[0].id, client_order_id: LOST.client_order_id, status: 'filled' } }, 'the retry answers the order that was recorded, not a second one');
    });

    await t.test('the database goes away under concurrent order flow and comes back: every answer holds', async (t) => {
      const agents: Array<{ id: string; key: H }> = [];
      for (let i = 0; i < 2; i++) {
        const a = await s.call('POST', '/api/v1/agents', { headers: me.jwt, body: { display_name: `Flow ${i}`, starting_balance: '100000', risk_profile: RISK } });
        agents.push({ id: a.body.agent_id, key: { 'x-api-key': a.body.api_key } });
      }
      const sent = new Map<string, { key: H; body: Record<string, unknown> }>();
      const acked = new Map<string, any>();
      const refused = new Set<string>();
      const unexpected: string[] = [];
      let running = true;
      let n = 0;
      const client = async (key: H) => {
        while (running) {
          const cid = `flow-${++n}`;
          const body = n % 3 === 0
            ? { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.001', price: '40000', client_order_id: cid }
            : { symbol: 'ETHUSDT', side: n % 2 ? 'buy' : 'sell', type: 'market', quantity: '0.01', client_order_id: cid };
          sent.set(cid, { key, body });
          const r = await s.call('POST', '/api/v1/trade/order', { headers: key, body });
          if (r.status === 201) acked.set(cid, r.body);
          else if (r.status === 503) refused.add(cid);
          else if (!(r.status === 400 && r.body.error.code === 'INSUFFICIENT_BALANCE')) unexpected.push(`${cid}: ${r.status} ${JSON.stringify(r.body)}`);
        }
      };
      const clients = agents.flatMap((a) => [client(a.key), client(a.key)]);
      await sleep(400);
      await proxy.pause();
      await sleep(400);
      await proxy.resume();
      await until(async () => (await s.call('GET', '/health')).status === 200, RECOVER_WITHIN_MS, '/health ok again');
      await sleep(400);
      running = false;
      await Promise.all(clients);
      t.same(unexpected.slice(0, 5), [], 'every answer was 201, 503, or a refusal for want of funds');
      t.ok(refused.size > 0 && acked.size > 0, `${acked.size} acked, ${refused.size} refused with 503`);
      // The client retries what it was refused, as the official client does on a 5xx: each answer is the order that
      // was recorded after all, or a new one.
      for (const cid of refused) {
        const { key, body } = sent.get(cid)!;
        const r = await s.call('POST', '/api/v1/trade/order', { headers: key, body });
        if (r.status === 201) acked.set(cid, r.body);
        else if (r.body.error?.code !== 'INSUFFICIENT_BALANCE') unexpected.push(`retry of ${cid}: ${r.status} ${JSON.stringify(r.body)}`);
      }
      t.same(unexpected.slice(0, 5), [], 'every retry was taken (or refused for want of funds)');
      await s.engine.journal.flush();
      const direct = await openPostgres(DB_URL, { schema, poolSize: 1 });
      t.teardown(() => direct.close());
      for (const a of agents) {
        const view = await viewOf(s.url, a.key);
        const mine = new Map([...acked].filter(([cid]) => sent.get(cid)!.key === a.key).map(([, o]) => [o.order_id, o]));
        const count = new Map<string, number>();
        for (const o of view.orders) count.set(o.client_order_id, (count.get(o.client_order_id) ?? 0) + 1);
        t.same([...count].filter(([, c]) => c > 1), [], 'no client_order_id recorded twice');
        t.same([...mine.keys()].filter((id) => !view.orders.some((o) => o.order_id === id)), [], `all ${mine.size} acked orders are there`);
        const stored = await readStored(direct, a.id);
        t.same(problems({ ...checkTables(mine, stored), ...checkApiAgainstJournal(stored, view) }), {}, `wallet = journal replay = tables (${stored.orders.size} orders)`);
      }
    });

    await t.test('nothing acknowledged was lost; nothing refused exists; the wallet is its journal replayed', async (t) => {
      await s.engine.journal.flush();
      const view = await viewOf(s.url, h);
      const cids = new Set(view.orders.map((o) => o.client_order_id));
      for (const cid of ['down-1', 'down-2', 'hang-1']) t.notOk(cids.has(cid), `refused ${cid} does not exist`);
      t.equal(view.orders.filter((o) => o.client_order_id === 'retry-1').length, 1, 'retry-1 exists once');
      t.equal(view.orders.filter((o) => o.client_order_id === LOST.client_order_id).length, 1, `${LOST.client_order_id} exists once`);
      for (const [id, o] of placed) t.ok(view.orders.some((x) => x.order_id === id), `acked ${o.client_order_id} is there`);
      const direct = await openPostgres(DB_URL, { schema, poolSize: 2 });
      t.teardown(() => direct.close());
      const stored = await readStored(direct, agentId);
      t.same(problems({ ...checkTables(placed, stored), ...checkApiAgainstJournal(stored, view) }), {}, `journal replay (${stored.orders.size} orders) equals the API and the tables`);
      // And a fresh load from the journal (what a restart would see) equals what memory answered.
      s.engine.trading.evict(agentId);
      t.same(strip(await memoryReads(s, h)), { balance: view.balances, positions: view.positions.map((p: any) => ({ symbol: p.symbol, quantity: p.quantity, avg_entry_price: p.avg_entry_price })), open: view.open.map((o: any) => o.order_id).sort() });
    });
    stopped = true;
    await s.stop();
  });
}

if (!REDIS_URL) {
  t.comment('REDIS_URL is not set: nothing to run for a Redis outage (without it the bus is in-process and cannot go away).');
} else {
  t.test('Redis outage: rate limits fail open, nothing crashes, /health names the bus, limits come back', async (t) => {
    const proxy = new FaultProxy(targetOf(REDIS_URL));
    await proxy.start();
    t.teardown(() => proxy.close());
    const backend: Backend = {
      name: 'embedded',
      db: async () => ({ db: await openEmbedded(null), drop: async () => {} }),
      bus: () => createRedisBus(viaProxy(REDIS_URL, proxy.port), `t_${randomBytes(6).toString('hex')}:`),
    };
    const s = await startTestServer(backend);
    let stopped = false;
    t.teardown(async () => {
      if (!stopped) await proxy.resume().then(() => s.stop());
    });
    tick(s, 'BTCUSDT', '50000.00', '1000000');
    const me = await registerAndLogin(s, { starting_balance: '10000' });
    const h = me.agentKey;
    const limited = (r: { headers: Headers }) => r.headers.get('x-ratelimit-limit') !== null;
    const balance = () => s.call('GET', '/api/v1/account/balance', { headers: h });
    t.ok(limited(await balance()), 'X-RateLimit headers while Redis is up');
    const up = await s.call('GET', '/health');
    t.match(up, { status: 200, body: { status: 'ok', down: [], bus: { kind: 'redis', connected: true } } });
    const ws = await WsClient.open(`ws://127.0.0.1:${s.server.port}/ws/v1?api_key=${h['x-api-key']}`);
    t.teardown(() => ws.close());
    await ws.subscribe('ticker:BTCUSDT');

    for (const fault of ['pause', 'blackhole'] as const) {
      await t.test(`Redis ${fault === 'pause' ? 'gone' : 'hanging (blackhole)'}`, async (t) => {
        await proxy[fault]();
        const slowest = { ms: 0, path: '' };
        const timedCall = async (method: string, path: string, opts: Parameters<TestServer['call']>[2] = {}) => {
          const r = await timed(() => s.call(method, path, opts));
          if (r.ms > slowest.ms) Object.assign(slowest, { ms: r.ms, path: `${method} ${path}` });
          return r.value;
        };
        for (let i = 0; i < 3; i++) {
          const r = await timedCall('GET', '/api/v1/account/balance', { headers: h });
          t.equal(r.status, 200, `balance ${i + 1}`);
          t.notOk(limited(r), `balance ${i + 1}: no X-RateLimit headers (fail open)`);
        }
        const o = await timedCall('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.001' } });
        t.equal(o.status, 201, `an order is taken: ${JSON.stringify(o.body)}`);
        const w = await timed(() => ws.request('order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.001', price: '40000' }));
        t.equal(w.value.status, 200, `and one over the socket: ${JSON.stringify(w.value)}`);
        const reg = await timedCall('POST', '/api/v1/auth/register', { body: { display_name: `During ${fault}` } });
        t.equal(reg.status, 201, 'registration works (its cache-invalidation message is lost, not awaited forever)');
        t.equal((await timedCall('GET', '/api/v1/market/price/BTCUSDT')).status, 200, 'public market data');
        tick(s, 'BTCUSDT', '50100.00');
        t.ok(await ws.next((f) => f.type === 'ticker' && f.price === '50100.00000000', 3000, 'a ticker push'), 'ticker pushes go on');
        tick(s, 'BTCUSDT', '50000.00');
        const health = await timed(() => s.call('GET', '/health'));
        t.equal(health.value.status, 200, '/health stays 200: the exchange still works without Redis');
        t.match(health.value.body, { status: 'degraded', down: ['bus'], storage: { connected: true }, bus: { kind: 'redis', connected: false } });
        t.ok(health.ms < 4000, `/health answered in ${health.ms} ms`);
        t.ok(slowest.ms < 3000, `slowest request during the outage: ${slowest.path} in ${slowest.ms} ms (socket order ${w.ms} ms)`);
        await proxy.resume();
        const ms = await until(async () => limited(await balance()), RECOVER_WITHIN_MS, 'X-RateLimit headers back');
        t.pass(`X-RateLimit headers back ${ms} ms after Redis returned`);
        t.match((await s.call('GET', '/health')).body, { status: 'ok', down: [] });
      });
    }
    stopped = true;
    await s.stop();
  });
}

// ---------------------------------------------------------------------------------------------------------
// Graceful shutdown under load: the real server process, order flow over REST and WebSocket, then SIGTERM.

const SHUTDOWN_AGENTS = 3;
const FLOW_BEFORE_SIGTERM_MS = 1500;

interface Flow {
  id: string;
  key: H;
  /** client_order_id → what was sent. */
  sent: Map<string, Record<string, unknown>>;
  /** order_id → the order as acknowledged (2xx). */
  placed: Map<string, any>;
  /** order_id → the order as its cancel was acknowledged. */
  cancelled: Map<string, any>;
  /** client_order_ids answered with a refusal (not 2xx) and never acknowledged. */
  refused: Set<string>;
  resting: string[];
}

interface Tally {
  acked: number;
  refused: Record<string, number>;
  unanswered: number;
  /** Answers to requests sent after the server logged shutdown.begin, by status (0 = no answer). */
  late: Record<string, number>;
}

/** The order a client sends next: market buys and sells, resting limits far from the market, cancels of those. */
function nextOrder(f: Flow, n: number, tag: string): { cancel: string } | { body: Record<string, unknown> } {
  const roll = n % 5;
  if (roll === 4 && f.resting.length > 0) return { cancel: f.resting.shift()! };
  const cid = `${tag}-${n}`;
  const body =
    roll === 0 ? { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.002' }
    : roll === 1 ? { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.001', price: '40000' }
    : roll === 2 ? { symbol: 'ETHUSDT', side: 'buy', type: 'market', quantity: '0.05' }
    : { symbol: 'BTCUSDT', side: 'sell', type: 'market', quantity: '0.001' };
  return { body: { ...body, client_order_id: cid } };
}

function recordPlace(f: Flow, t: Tally, cid: string, ok: boolean, status: number | null, order: any, code?: string): void {
  if (status === null) t.unanswered++;
  else if (ok) {
    t.acked++;
    f.placed.set(order.order_id, order);
    if (order.status === 'pending') f.resting.push(order.order_id);
  } else {
    f.refused.add(cid);
    t.refused[`${status} ${code}`] = (t.refused[`${status} ${code}`] ?? 0) + 1;
  }
}

/** Acknowledged orders are there as acknowledged (or moved on legally); refused ones and unsent ones are not. */
function checkFlow(f: Flow, orders: any[]): Record<string, string[]> {
  const p: Record<string, string[]> = { lost: [], changed: [], refused_but_exists: [], phantom: [] };
  const byId = new Map(orders.map((o) => [o.order_id, o]));
  for (const [id, acked] of f.placed) {
    const now = byId.get(id);
    if (!now) p.lost.push(`${acked.client_order_id} ${id} (${acked.status})`);
    else if (now.client_order_id !== acked.client_order_id || now.quantity !== acked.quantity || now.symbol !== acked.symbol) p.changed.push(`${id}: ${JSON.stringify(now)}`);
    else if (acked.status !== 'pending' && now.status !== acked.status) p.changed.push(`${id}: acked ${acked.status}, now ${now.status}`);
  }
  for (const [id] of f.cancelled) if (byId.get(id)?.status !== 'cancelled') p.changed.push(`${id}: cancel acked, now ${byId.get(id)?.status}`);
  for (const o of orders) {
    if (!f.sent.has(o.client_order_id)) p.phantom.push(`${o.order_id} ${o.client_order_id}`);
    if (f.refused.has(o.client_order_id) && !f.placed.has(o.order_id)) p.refused_but_exists.push(`${o.client_order_id} ${o.order_id} ${o.status}`);
  }
  return p;
}

ensureBuilt((m) => t.comment(m));

for (const backend of backends()) {
  t.test(`graceful shutdown under order flow loses nothing, on ${backend.name}`, async (t) => {
    const storage = await freshStorage(backend.name);
    t.teardown(() => storage.drop());
    const feed = new FakeBinance();
    t.teardown(() => feed.close());
    await feed.ready;
    const env = {
      ...baseEnv(), ...storage.env, HOST: '127.0.0.1', LOG_LEVEL: 'info', KDF_COST: '1024', FEED: 'binance', FEED_URL: feed.url,
      RATE_AGENT_PER_MINUTE: '1000000', RATE_ACCOUNT_PER_MINUTE: '1000000', RATE_AUTH_PER_IP_PER_MINUTE: '0',
    };
    let gw = await startGateway(env);
    t.teardown(() => reap(gw));
    await feed.connectionAfter(0);
    const prime = async () => {
      for (const until = Date.now() + 10_000; Date.now() < until; await sleep(20)) {
        feed.tick('BTCUSDT', '50000.00', '100000000');
        feed.tick('ETHUSDT', '3000.00', '100000000');
        if ((await fetch(gw.url + '/api/v1/market/price/ETHUSDT')).status === 200) return;
      }
      throw new Error('no prices');
    };
    await prime();
    const reg = await (await fetch(gw.url + '/api/v1/auth/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ display_name: 'Shutdown' }) })).json();
    const login = await (await fetch(gw.url + '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ api_key: reg.api_key, api_secret: reg.api_secret }) })).json();
    const flows: Flow[] = [];
    for (let i = 0; i < SHUTDOWN_AGENTS; i++) {
      const r = await fetch(gw.url + '/api/v1/agents', {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${login.token}` },
        body: JSON.stringify({ display_name: `Flow ${i}`, starting_balance: '100000', risk_profile: RISK }),
      });
      const a = await r.json();
      if (r.status !== 201) throw new Error(`agent: ${r.status} ${JSON.stringify(a)}`);
      flows.push({ id: a.agent_id, key: { 'x-api-key': a.api_key }, sent: new Map(), placed: new Map(), cancelled: new Map(), refused: new Set(), resting: [] });
    }

    const tally: Tally = { acked: 0, refused: {}, unanswered: 0, late: {} };
    const shuttingDown = () => gw.output().includes('"shutdown.begin"');
    const late = (status: number | null) => {
      const k = String(status ?? 0);
      tally.late[k] = (tally.late[k] ?? 0) + 1;
    };
    let running = true;
    const ticker = setInterval(() => {
      feed.tick('BTCUSDT', (50000 + Math.random() * 20 - 10).toFixed(2), '0.5');
      feed.tick('ETHUSDT', (3000 + Math.random() * 2 - 1).toFixed(2), '0.5');
    }, 20);
    t.teardown(() => clearInterval(ticker));

    const restClient = async (f: Flow, tag: string) => {
      for (let n = 0; running; n++) {
        const next = nextOrder(f, n, tag);
        const after = shuttingDown();
        if ('cancel' in next) {
          const a = await call(gw.url, 'DELETE', `/api/v1/trade/order/${next.cancel}`, f.key);
          if (after) late(a?.status ?? null);
          if (a?.status === 200) f.cancelled.set(next.cancel, a.body);
          if (!a && after) break;
          continue;
        }
        const cid = next.body.client_order_id as string;
        f.sent.set(cid, next.body);
        const a = await call(gw.url, 'POST', '/api/v1/trade/order', f.key, next.body);
        if (after) late(a?.status ?? null);
        recordPlace(f, tally, cid, a !== null && a.status >= 200 && a.status < 300, a?.status ?? null, a?.body, a?.body?.error?.code);
        // Once the server is refusing new connections there is nothing more to learn.
        if (!a && after) break;
      }
    };
    const wsClient = async (f: Flow, tag: string) => {
      const ws = await WsClient.open(`${gw.url.replace('http', 'ws')}/ws/v1?api_key=${f.key['x-api-key']}`);
      for (let n = 0; running && !ws.closed; n++) {
        const next = nextOrder(f, n, tag);
        const after = shuttingDown();
        if ('cancel' in next) {
          const a = await ws.tryRequest('order.cancel', { order_id: next.cancel });
          if (after) late(a?.status ?? null);
          if (a?.status === 200) f.cancelled.set(next.cancel, a.result);
          continue;
        }
        const cid = next.body.client_order_id as string;
        f.sent.set(cid, next.body);
        const a = await ws.tryRequest('order.place', next.body);
        if (after) late(a?.status ?? null);
        recordPlace(f, tally, cid, a?.status === 200, a?.status ?? null, a?.result, a?.error?.code);
      }
      ws.close();
      // A new socket after the server began shutting down is refused.
      if (shuttingDown()) {
        const refused = await WsClient.open(`${gw.url.replace('http', 'ws')}/ws/v1?api_key=${f.key['x-api-key']}`).then((c) => (c.close(), 'opened'), (err: Error) => err.message);
        late(refused === 'opened' ? 101 : null);
      }
    };
    const clients = flows.flatMap((f, i) => [restClient(f, `rest${i}`), wsClient(f, `ws${i}`)]);
    const t0 = Date.now();
    while (tally.acked === 0 && Date.now() - t0 < 30_000) await sleep(10);
    await sleep(FLOW_BEFORE_SIGTERM_MS);
    const ackedBefore = tally.acked;
    gw.child.kill('SIGTERM');
    const exit = await gw.exited;
    running = false;
    await Promise.all(clients);
    clearInterval(ticker);
    t.comment(`${backend.name}: ${tally.acked} orders acked (${ackedBefore} when SIGTERM was sent), ${tally.unanswered} unanswered, refused ${JSON.stringify(tally.refused)}; after shutdown.begin: ${JSON.stringify(tally.late)}`);
    t.same(exit, { code: 0, signal: null }, 'exit code 0');
    t.ok(ackedBefore > 0, 'orders were flowing when SIGTERM arrived');
    const logs = gw.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    t.ok(logs.some((l) => l.event === 'shutdown.done'), 'shutdown.done logged');
    t.same(logs.filter((l) => l.level === 'error').map((l) => l.event), [], 'no error lines');
    const badLate = Object.keys(tally.late).filter((k) => !['0', '503'].includes(k));
    t.same(badLate, [], 'every request sent after shutdown began got 503 or no connection');

    // The database as the process left it: every acked order in the journal, the tables equal to the replay.
    const db = await storage.open();
    const stored = await Promise.all(flows.map((f) => readStored(db, f.id)));
    await db.close();
    for (const [i, f] of flows.entries()) t.same(problems(checkTables(f.placed, stored[i])), {}, `agent ${i}: ${f.placed.size} acked orders in the journal; tables equal the replay`);

    // A restarted server shows exactly that.
    gw = await startGateway(env);
    for (const [i, f] of flows.entries()) {
      const v = await viewOf(gw.url, f.key);
      t.same(problems({ ...checkFlow(f, v.orders), ...checkApiAgainstJournal(stored[i], v) }), {}, `agent ${i} after restart: ${v.orders.length} orders, acked ones intact, wallet = journal replay`);
    }
    gw.child.kill('SIGTERM');
    t.same(await gw.exited, { code: 0, signal: null }, 'restarted server stops cleanly');
  });
}
