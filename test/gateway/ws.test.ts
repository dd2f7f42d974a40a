import t from 'tap';
import WebSocket from 'ws';
import { loadConfig, type Config } from '../../engine/config.js';
import { backends, registerAndLogin, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * `/ws/v1` against the real server: handshake and auth, subscriptions and pushes, heartbeats, order entry
 * mixed with REST (every balance, hold, fee and PnL to the decimal; same arithmetic as trading.test.ts:
 * fee 0.1 %, slippage at its 0.01 % floor thanks to a first tick of volume 1,000,000), isolation between
 * agents and accounts, per-key / per-connection limits, slow consumers and shutdown.
 */

type Frame = Record<string, any>;
type Pred = (f: Frame) => boolean;
type H = Record<string, string>;

const isServerPing: Pred = (f) => f.type === 'ping';
/** Pushes (not the `subscribed` answers, which carry the same channel key). */
const isOrderPush: Pred = (f) => f.type === 'order' && f.channel === 'orders';
const isPortfolioPush: Pred = (f) => f.type === 'portfolio' && f.channel === 'portfolio';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const immediate = () => new Promise((r) => setImmediate(r));

/** A client socket that queues every frame it receives; `next` takes the first queued frame matching a predicate. */
class Client {
  /** Every frame ever received, in order. */
  readonly log: Frame[] = [];
  /** Raw bytes received (frames included), for the slow-consumer bound. */
  bytes = 0;
  private queue: Frame[] = [];
  private waiters = new Set<() => void>();
  private seq = 0;
  readonly closed: Promise<{ code: number; reason: string }>;
  isClosed = false;

  constructor(readonly ws: WebSocket) {
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => {
      this.bytes += data.length;
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
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        this.isClosed = true;
        resolve({ code, reason: reason.toString() });
        for (const w of [...this.waiters]) w();
      }),
    );
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first queued frame matching `pred` (removed from the queue); waits up to `ms` for it. */
  next(pred: Pred = (f) => !isServerPing(f), ms = 2000, what = 'frame'): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.queue.findIndex(pred);
        if (i >= 0) {
          const [f] = this.queue.splice(i, 1);
          done();
          resolve(f);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; last frames: ${JSON.stringify(this.log.slice(-5))}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
      };
      const wake = () => void check();
      if (!check()) this.waiters.add(wake);
    });
  }

  /** Queued frames matching `pred` (not removed). */
  pending(pred: Pred = (f) => !isServerPing(f)): Frame[] {
    return this.queue.filter(pred);
  }

  /** Empties the queue. */
  clear(): void {
    this.queue = [];
  }

  /** Sends `{"id","method","params"}` and waits for the response with that id. */
  request(method: string, params?: Record<string, unknown>, ms = 3000): Promise<Frame> {
    const id = `r${++this.seq}`;
    this.send(params === undefined ? { id, method } : { id, method, params });
    return this.next((f) => f.id === id, ms, `response to ${method}`);
  }

  /** Subscribes and returns the `subscribed` (or `error`) answer. */
  async subscribe(frame: Record<string, unknown>): Promise<Frame> {
    this.send({ action: 'subscribe', ...frame });
    return this.next((f) => f.type === 'subscribed' || f.type === 'error', 2000, `answer to subscribe ${JSON.stringify(frame)}`);
  }

  async close(): Promise<void> {
    if (!this.isClosed) this.ws.close();
    await this.closed;
  }
}

type Handshake = { client: Client; status: 101; body: null } | { client: null; status: number; body: any };

function wsUrl(s: TestServer, query: Record<string, string> = {}): string {
  const q = new URLSearchParams(query).toString();
  return `ws://127.0.0.1:${s.server.port}/ws/v1${q ? `?${q}` : ''}`;
}

/** Opens a socket: the client once upgraded, or the HTTP status and parsed body of a refused handshake. */
function handshake(s: TestServer, query: Record<string, string> = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(s, query));
    const client = new Client(ws);
    ws.once('open', () => resolve({ client, status: 101, body: null }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        ws.terminate();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ client: null, status: res.statusCode ?? 0, body });
      });
    });
    ws.once('error', (err) => reject(err));
  });
}

async function open(s: TestServer, query: Record<string, string> = {}): Promise<Client> {
  const h = await handshake(s, query);
  if (!h.client) throw new Error(`handshake refused: ${h.status} ${JSON.stringify(h.body)}`);
  return h.client;
}

/** Waits for a close frame from the server. */
async function closedWithin(c: Client, ms = 2000): Promise<{ code: number; reason: string }> {
  return Promise.race([c.closed, sleep(ms).then(() => ({ code: -1, reason: `still open after ${ms} ms` }))]);
}

const tick = (s: TestServer, symbol: string, price: string, quantity = '1', time = Date.now()) => {
  if (!s.engine.market.ingest({ symbol, price, quantity, time })) throw new Error(`tick refused: ${symbol} ${price}`);
};

async function createAgent(s: TestServer, jwt: H, body: Record<string, unknown>) {
  const r = await s.call('POST', '/api/v1/agents', { headers: jwt, body });
  if (r.status !== 201) throw new Error(`create agent failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as { agent_id: string; api_key: string };
}

const ws = (over: Partial<Config['ws']>): Config['ws'] => ({ ...loadConfig({}).ws, ...over });

for (const backend of backends()) {
  t.test(`websocket on ${backend.name}`, async (t) => {
    // Small limits so every edge is reachable; portfolio pushes here come only from fills.
    const s = await startTestServer(backend, {
      ws: ws({
        frame_bytes_max: 4096, backpressure_bytes_max: 64 * 1024, subscriptions_max: 4, connections_per_key_max: 2,
        auth_timeout_ms: 300, ping_interval_ms: 300, portfolio_interval_ms: 60_000,
      }),
    });
    t.teardown(() => s.stop());
    tick(s, 'BTCUSDT', '50000.00', '1000000');
    tick(s, 'ETHUSDT', '3000.00', '1000000');
    const clients: Client[] = [];
    const track = (c: Client) => (clients.push(c), c);
    t.afterEach(async () => {
      for (const c of clients.splice(0)) if (!c.isClosed) c.ws.terminate();
    });

    t.test('handshake: key in the query, refusals before the upgrade, auth frame, auth timeout', async (t) => {
      const { reg, jwt } = await registerAndLogin(s);
      const good = track(await open(s, { api_key: reg.agent_api_key }));
      t.equal(good.ws.readyState, WebSocket.OPEN, 'agent key in the query: open');
      const acct = track(await open(s, { api_key: reg.api_key }));
      t.equal(acct.ws.readyState, WebSocket.OPEN, 'account key in the query: open');

      for (const bad of ['ak_live_' + 'x'.repeat(64), 'nope']) {
        const r = await handshake(s, { api_key: bad });
        t.equal(r.status, 401, `bad key ${bad.slice(0, 10)}… refused with 401`);
        t.same(r.body, { error: { code: 'INVALID_API_KEY', message: 'Invalid API key.', details: null } });
      }

      const archived = await createAgent(s, jwt, { display_name: 'Archived' });
      t.equal((await s.call('POST', `/api/v1/agents/${archived.agent_id}/archive`, { headers: jwt })).status, 200);
      const gone = await handshake(s, { api_key: archived.api_key });
      t.equal(gone.status, 401, 'archived agent key refused');
      t.match(gone.body, { error: { code: 'INVALID_API_KEY', message: 'Agent is archived.' } });

      // An account key narrowed to one of its own agents, or (refused) to someone else's.
      const other = await registerAndLogin(s);
      const scoped = track(await open(s, { api_key: reg.api_key, agent_id: reg.agent_id }));
      t.same((await scoped.request('account.balance')).status, 200);
      const foreign = await handshake(s, { api_key: reg.api_key, agent_id: other.reg.agent_id });
      t.equal(foreign.status, 403);
      t.match(foreign.body, { error: { code: 'PERMISSION_DENIED', details: { agent_id: other.reg.agent_id } } });
      const notUuid = await handshake(s, { api_key: reg.api_key, agent_id: 'abc' });
      t.equal(notUuid.status, 422);
      t.equal(notUuid.body.error.code, 'VALIDATION_ERROR');
      // (two connections per key on this server: free the slots for what follows)
      for (const c of [good, acct, scoped]) await c.close();

      // No key: accepted; requests and subscriptions before auth are refused but the socket stays.
      const late = track(await open(s));
      late.send({ action: 'subscribe', channel: 'ticker:BTCUSDT' });
      t.match(await late.next(), { type: 'error', code: 'INVALID_API_KEY' });
      t.match(await late.request('account.balance'), { status: 401, error: { code: 'INVALID_API_KEY' } });
      late.send({ action: 'auth', api_key: reg.agent_api_key });
      t.same(await late.next(), { type: 'authenticated', account_id: reg.account_id, agent_id: reg.agent_id });
      t.match((await late.subscribe({ channel: 'ticker:BTCUSDT' })), { type: 'subscribed', channel: 'ticker:BTCUSDT' });
      await sleep(400);
      t.notOk(late.isClosed, 'an authenticated socket outlives the auth timeout');

      // {"type":"auth"} spelling, account key narrowed with agent_id in the frame.
      const late2 = track(await open(s));
      late2.send({ type: 'auth', api_key: reg.api_key, agent_id: reg.agent_id });
      t.same(await late2.next(), { type: 'authenticated', account_id: reg.account_id, agent_id: reg.agent_id });
      const late3 = track(await open(s));
      late3.send({ action: 'auth', api_key: reg.api_key });
      t.same(await late3.next(), { type: 'authenticated', account_id: reg.account_id, agent_id: null });

      // No auth frame within auth_timeout_ms (300): closed with 4401.
      const t0 = Date.now();
      const silent = track(await open(s));
      const closed = await closedWithin(silent, 2000);
      t.equal(closed.code, 4401, 'auth timeout closes with 4401');
      t.equal(closed.reason, 'authentication timeout');
      t.ok(Date.now() - t0 >= 250 && Date.now() - t0 < 1500, `closed after ~300 ms (${Date.now() - t0} ms)`);

      // A bad key in the auth frame: an error frame, then 4401.
      const wrong = track(await open(s));
      wrong.send({ action: 'auth', api_key: 'ak_live_' + 'y'.repeat(64) });
      t.match(await wrong.next(), { type: 'error', code: 'INVALID_API_KEY', message: 'Invalid API key.' });
      t.equal((await closedWithin(wrong)).code, 4401);
      const archivedFrame = track(await open(s));
      archivedFrame.send({ action: 'auth', api_key: archived.api_key });
      t.match(await archivedFrame.next(), { type: 'error', code: 'INVALID_API_KEY', message: 'Agent is archived.' });
      t.equal((await closedWithin(archivedFrame)).code, 4401);
      const foreignFrame = track(await open(s));
      foreignFrame.send({ action: 'auth', api_key: reg.api_key, agent_id: other.reg.agent_id });
      t.match(await foreignFrame.next(), { type: 'error', code: 'PERMISSION_DENIED' });
      t.equal((await closedWithin(foreignFrame)).code, 4401);
      // A malformed auth frame is a validation error; the timeout still applies.
      const malformed = track(await open(s));
      malformed.send({ action: 'auth' });
      t.match(await malformed.next(), { type: 'error', code: 'VALIDATION_ERROR', details: { field: 'api_key' } });
      t.equal((await closedWithin(malformed)).code, 4401);
    });

    t.test('subscriptions: both spellings, errors, the per-connection limit, unsubscribe', async (t) => {
      const { reg } = await registerAndLogin(s);
      const c = track(await open(s, { api_key: reg.agent_api_key }));
      t.same(await c.subscribe({ channel: 'ticker', symbol: 'btcusdt' }), { type: 'subscribed', channel: 'ticker:BTCUSDT' });
      t.same(await c.subscribe({ channel: 'ticker:BTCUSDT' }), { type: 'subscribed', channel: 'ticker:BTCUSDT' }, 'same key, idempotent');
      t.same(await c.subscribe({ channel: 'candles', symbol: 'BTCUSDT', interval: '1m' }), { type: 'subscribed', channel: 'candles:BTCUSDT:1m' });
      t.same(await c.subscribe({ channel: 'candles:btcusdt:1m' }), { type: 'subscribed', channel: 'candles:BTCUSDT:1m' });
      t.same(await c.subscribe({ channel: 'ticker_all' }), { type: 'subscribed', channel: 'ticker:all' });
      t.same(await c.subscribe({ channel: 'ticker:all' }), { type: 'subscribed', channel: 'ticker:all' });
      t.same(await c.subscribe({ channel: 'ticker', symbol: 'all' }), { type: 'subscribed', channel: 'ticker:all' });
      t.same(await c.subscribe({ channel: 'orders' }), { type: 'subscribed', channel: 'orders' });

      // 4 channels held: the 5th distinct one is refused, re-subscribing a held one is not.
      const over = await c.subscribe({ channel: 'portfolio' });
      t.match(over, { type: 'error', code: 'SUBSCRIPTION_LIMIT', message: 'Maximum of 4 subscriptions per connection reached.', details: { limit: 4, channel: 'portfolio' } });
      t.same(await c.subscribe({ channel: 'orders' }), { type: 'subscribed', channel: 'orders' }, 'idempotent at the limit');
      t.same(await c.subscribe({ channel: 'ticker:BTCUSDT' }), { type: 'subscribed', channel: 'ticker:BTCUSDT' });
      c.send({ action: 'unsubscribe', channel: 'ticker_all' });
      t.same(await c.next(), { type: 'unsubscribed', channel: 'ticker:all' });
      t.same(await c.subscribe({ channel: 'portfolio' }), { type: 'subscribed', channel: 'portfolio' }, 'a freed slot can be used');
      c.send({ action: 'unsubscribe', channel: 'ticker:ETHUSDT' });
      t.same(await c.next(), { type: 'unsubscribed', channel: 'ticker:ETHUSDT' }, 'unsubscribing a channel not held is harmless');

      const errors: Array<[Record<string, unknown>, string, Record<string, unknown>]> = [
        [{ channel: 'news' }, 'INVALID_CHANNEL', { channel: 'news' }],
        [{ channel: 'ticker' }, 'INVALID_CHANNEL', { channel: 'ticker' }],
        [{ channel: 'ticker:NOPEUSDT' }, 'INVALID_SYMBOL', { symbol: 'NOPEUSDT' }],
        [{ channel: 'ticker', symbol: 'NOPEUSDT' }, 'INVALID_SYMBOL', { symbol: 'NOPEUSDT' }],
        [{ channel: 'candles:BTCUSDT:2m' }, 'INVALID_CHANNEL', { interval: '2m' }],
        [{ channel: 'candles', symbol: 'BTCUSDT', interval: '7m' }, 'INVALID_CHANNEL', { interval: '7m' }],
        [{ channel: 'candles:BTCUSDT' }, 'INVALID_CHANNEL', { interval: '' }],
        [{ channel: 'candles:NOPEUSDT:1m' }, 'INVALID_SYMBOL', { symbol: 'NOPEUSDT' }],
        [{ channel: `orders:${reg.agent_id}` }, 'INVALID_CHANNEL', {}],
        [{ channel: 'portfolio:x' }, 'INVALID_CHANNEL', {}],
        [{}, 'VALIDATION_ERROR', { field: 'channel' }],
        [{ channel: '' }, 'VALIDATION_ERROR', { field: 'channel' }],
      ];
      for (const [frame, code, details] of errors) {
        const r = await c.subscribe(frame);
        t.match(r, { type: 'error', code, details }, JSON.stringify(frame));
        t.type(r.message, 'string');
      }
      t.match((await c.subscribe({ channel: 'news' })).message, /Valid channels: ticker, ticker_all, candles, orders, portfolio/);
      t.equal(c.log.filter((f) => f.type === 'error' && f.code === 'SUBSCRIPTION_LIMIT').length, 1, 'errors are not counted as subscriptions');
    });

    t.test('ticker pushes carry the full key and price at top level; ticker + ticker:all deliver once; unsubscribe stops them', async (t) => {
      const { reg } = await registerAndLogin(s);
      const c = track(await open(s, { api_key: reg.agent_api_key }));
      await c.subscribe({ channel: 'ticker:BTCUSDT' });
      await c.subscribe({ channel: 'ticker_all' });
      const time = Date.now();
      tick(s, 'BTCUSDT', '50010.5', '0.25', time);
      tick(s, 'ETHUSDT', '3001', '2', time);
      const eth = await c.next((f) => f.type === 'ticker' && f.symbol === 'ETHUSDT');
      const btc = c.log.filter((f) => f.type === 'ticker' && f.symbol === 'BTCUSDT');
      t.equal(btc.length, 1, 'subscribed to ticker:BTCUSDT and ticker:all, the tick arrives once');
      const data = { price: '50010.50000000', quantity: '0.25000000', timestamp: new Date(time).toISOString(), is_buyer_maker: false };
      t.same(btc[0], { type: 'ticker', channel: 'ticker:BTCUSDT', symbol: 'BTCUSDT', ...data, data });
      t.match(eth, { type: 'ticker', channel: 'ticker:ETHUSDT', symbol: 'ETHUSDT', price: '3001.00000000', quantity: '2.00000000', data: { price: '3001.00000000' } });
      t.ok(c.log.findIndex((f) => f === btc[0]) < c.log.findIndex((f) => f === eth), 'in tick order');

      // Only ticker:BTCUSDT left: ETH ticks stop, BTC ticks continue.
      c.clear();
      c.send({ action: 'unsubscribe', channel: 'ticker:all' });
      t.same(await c.next(), { type: 'unsubscribed', channel: 'ticker:all' });
      tick(s, 'ETHUSDT', '3002');
      tick(s, 'BTCUSDT', '50011');
      t.match(await c.next((f) => f.type === 'ticker'), { channel: 'ticker:BTCUSDT', price: '50011.00000000' });
      t.same(c.pending((f) => f.type === 'ticker'), [], 'no ETH tick after unsubscribing ticker:all');
      t.equal(c.log.filter((f) => f.symbol === 'ETHUSDT').length, 1);

      // The {"channel":"ticker","symbol":…} spelling unsubscribes the same key.
      c.send({ action: 'unsubscribe', channel: 'ticker', symbol: 'BTCUSDT' });
      t.same(await c.next(), { type: 'unsubscribed', channel: 'ticker:BTCUSDT' });
      await c.subscribe({ channel: 'ticker:ETHUSDT' });
      tick(s, 'BTCUSDT', '50012');
      tick(s, 'ETHUSDT', '3003');
      t.match(await c.next((f) => f.type === 'ticker'), { channel: 'ticker:ETHUSDT', price: '3003.00000000' }, 'the BTC tick before it never came');
      tick(s, 'BTCUSDT', '50000.00');
      tick(s, 'ETHUSDT', '3000.00');
    });

    t.test('candle pushes: OHLCV from the ticks, and the previous minute closed when a new one opens', async (t) => {
      const { reg } = await registerAndLogin(s);
      const c = track(await open(s, { api_key: reg.agent_api_key }));
      t.same(await c.subscribe({ channel: 'candles', symbol: 'SOLUSDT', interval: '1m' }), { type: 'subscribed', channel: 'candles:SOLUSDT:1m' });
      t.same(await c.subscribe({ channel: 'candles:SOLUSDT:1h' }), { type: 'subscribed', channel: 'candles:SOLUSDT:1h' });
      // Two consecutive minutes of the previous hour (in the past, so later live ticks still move the price).
      const m0 = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;
      const m1 = m0 + 60_000;
      const one = (f: Frame) => f.channel === 'candles:SOLUSDT:1m';
      const hour = (f: Frame) => f.channel === 'candles:SOLUSDT:1h';

      tick(s, 'SOLUSDT', '150', '2', m0 + 1_000);
      let f = await c.next(one);
      const first = { time: m0, open: '150.00000000', high: '150.00000000', low: '150.00000000', close: '150.00000000', volume: '2.00000000', is_closed: false };
      t.same(f, { type: 'candle', channel: 'candles:SOLUSDT:1m', symbol: 'SOLUSDT', interval: '1m', ...first, data: first });
      t.match(await c.next(hour), { type: 'candle', interval: '1h', time: m0, open: '150.00000000', volume: '2.00000000', is_closed: false });

      tick(s, 'SOLUSDT', '152', '1', m0 + 20_000);
      tick(s, 'SOLUSDT', '149', '3', m0 + 40_000);
      t.match(await c.next(one), { time: m0, high: '152.00000000', close: '152.00000000', volume: '3.00000000', is_closed: false });
      f = await c.next(one);
      const m0final = { time: m0, open: '150.00000000', high: '152.00000000', low: '149.00000000', close: '149.00000000', volume: '6.00000000' };
      t.same(f.data, { ...m0final, is_closed: false });
      c.clear();

      tick(s, 'SOLUSDT', '151', '0.5', m1 + 5_000);
      const closed = await c.next(one);
      t.same(closed, { type: 'candle', channel: 'candles:SOLUSDT:1m', symbol: 'SOLUSDT', interval: '1m', ...m0final, is_closed: true, data: { ...m0final, is_closed: true } }, 'previous minute closed first');
      const opened = await c.next(one);
      const m1c = { time: m1, open: '151.00000000', high: '151.00000000', low: '151.00000000', close: '151.00000000', volume: '0.50000000', is_closed: false };
      t.same(opened.data, m1c);
      t.match(opened, m1c);
      const h = await c.next(hour);
      t.same(h.data, { time: m0, open: '150.00000000', high: '152.00000000', low: '149.00000000', close: '151.00000000', volume: '6.50000000', is_closed: false }, 'the hour folds both minutes and stays open');
      t.same(c.pending((x) => x.type === 'candle'), [], 'one 1m close, one 1m open, one 1h update');

      // A gap without 1m subscribers: minute m1 moves on unseen; after re-subscribing no stale "closed" m1 is sent.
      c.send({ action: 'unsubscribe', channel: 'candles:SOLUSDT:1m' });
      await c.next((x) => x.type === 'unsubscribed');
      tick(s, 'SOLUSDT', '160', '1', m1 + 10_000);
      tick(s, 'SOLUSDT', '155', '1', m1 + 120_000);
      await c.next(hour);
      await c.next(hour);
      t.same(await c.subscribe({ channel: 'candles:SOLUSDT:1m' }), { type: 'subscribed', channel: 'candles:SOLUSDT:1m' });
      tick(s, 'SOLUSDT', '156', '1', m1 + 180_000);
      await c.next(hour);
      t.match(await c.next(one), { time: m1 + 180_000, open: '156.00000000', is_closed: false });
      t.same(c.pending(one), [], 'no closed frame built from a stale snapshot');
      t.same(c.log.filter((x) => one(x) && x.is_closed), [closed], 'the only closed 1m candle is the one seen closing');
    });

    t.test('heartbeat: both ping and pong spellings, server pings, bad frames, frame size', async (t) => {
      const { reg } = await registerAndLogin(s);
      const c = track(await open(s, { api_key: reg.agent_api_key }));
      c.send({ action: 'ping' });
      t.same(await c.next(), { type: 'pong' });
      c.send({ type: 'ping' });
      t.same(await c.next(), { type: 'pong' });
      // pongs (both spellings) are accepted silently: the next answer is the pong to the ping after them.
      c.send({ type: 'pong' });
      c.send({ action: 'pong' });
      c.send({ action: 'ping' });
      t.same(await c.next(), { type: 'pong' });
      t.same(c.pending(), []);

      // The server pings every ping_interval_ms (300).
      t.same(await c.next(isServerPing, 1500, 'server ping'), { type: 'ping' });
      c.send({ type: 'pong' });

      const bad: Array<[string, string, Record<string, unknown>]> = [
        [JSON.stringify({ action: 'dance' }), 'UNKNOWN_ACTION', { action: 'dance' }],
        [JSON.stringify({}), 'UNKNOWN_ACTION', { action: '' }],
        ['hello', 'VALIDATION_ERROR', { field: 'frame' }],
        ['{"action":', 'VALIDATION_ERROR', { field: 'frame' }],
        ['[1,2]', 'VALIDATION_ERROR', { field: 'frame' }],
        ['null', 'VALIDATION_ERROR', { field: 'frame' }],
        ['42', 'VALIDATION_ERROR', { field: 'frame' }],
        ['"ping"', 'VALIDATION_ERROR', { field: 'frame' }],
      ];
      for (const [raw, code, details] of bad) {
        c.send(raw);
        const e = await c.next();
        t.match(e, { type: 'error', code, details }, raw);
        t.type(e.message, 'string');
      }
      t.match((await (c.send({ action: 'dance' }), c.next())).message, /Unknown action 'dance'/);
      c.send({ action: 'ping' });
      t.same(await c.next(), { type: 'pong' }, 'still usable after bad frames');
      t.notOk(c.isClosed);

      // A frame just under the limit is read (and refused as JSON); one over frame_bytes_max (4096) closes with 1009.
      c.send('x'.repeat(4000));
      t.match(await c.next(), { type: 'error', code: 'VALIDATION_ERROR' });
      const exact = JSON.stringify({ action: 'ping', pad: '' });
      c.send(JSON.stringify({ action: 'ping', pad: 'x'.repeat(4096 - exact.length) }));
      t.same(await c.next(), { type: 'pong' }, 'a frame of exactly frame_bytes_max is read');
      c.send(JSON.stringify({ action: 'ping', pad: 'x'.repeat(4097 - exact.length) }));
      t.same(await closedWithin(c), { code: 1009, reason: 'frame too large' }, 'one byte more closes the socket with 1009');
      t.same(c.pending(), [], 'and is not answered');
      // Far past the limit uWS cuts the connection itself.
      const big = track(await open(s, { api_key: reg.agent_api_key }));
      big.send('x'.repeat(64 * 1024));
      t.not((await closedWithin(big)).code, -1, 'a huge frame closes the socket too');
    });

    t.test('order entry over WebSocket mixed with REST: pushes, holds, fees, PnL to the decimal', async (t) => {
      tick(s, 'BTCUSDT', '50000.00');
      const { reg, agentKey: h } = await registerAndLogin(s, { starting_balance: '10000' });
      const c = track(await open(s, { api_key: reg.agent_api_key }));
      await c.subscribe({ channel: 'orders' });
      await c.subscribe({ channel: 'portfolio' });
      const orderEvent = (id: string, event: string) => (f: Frame) => isOrderPush(f) && f.order_id === id && f.event === event;
      const portfolio = isPortfolioPush;
      const balance = async () => {
        const r = await c.request('account.balance');
        t.equal(r.status, 200);
        return r.result;
      };

      // 1. Market buy 0.03 over WS: 50000 × 1.0001 = 50005; 1500.15 + fee 1.50015.
      const buy = await c.request('order.place', { symbol: 'btcusdt', side: 'buy', type: 'market', quantity: '0.03', client_order_id: 'ws-1' });
      t.equal(buy.status, 200, JSON.stringify(buy));
      t.match(buy.result, {
        status: 'filled', symbol: 'BTCUSDT', side: 'buy', type: 'market', client_order_id: 'ws-1', quantity: '0.03000000',
        executed_price: '50005.00000000', executed_qty: '0.03000000', executed_quantity: '0.03000000', fee: '1.50015000',
        total_cost: '1501.65015000', slippage_pct: '0.010000', realized_pnl: null, price: null,
      });
      const buyId = buy.result.order_id;
      const pushBuy = await c.next(orderEvent(buyId, 'order.filled'), 2000, 'fill push');
      t.match(pushBuy, {
        type: 'order', channel: 'orders', event: 'order.filled', agent_id: reg.agent_id, order_id: buyId, status: 'filled', order_type: 'market',
        executed_price: '50005.00000000', fee: '1.50015000', total_cost: '1501.65015000',
        data: { order_id: buyId, status: 'filled', type: 'market', executed_price: '50005.00000000', fee: '1.50015000' },
      });
      t.same(pushBuy.data, buy.result, 'push data is the order as REST shows it');
      t.same(c.log.filter(isOrderPush).length, 1, 'a market order is one event: filled');
      const pf1 = await c.next(portfolio, 2000, 'portfolio push after the fill');
      const pfv1 = { total_equity: '9998.34985000', available_cash: '8498.34985000', unrealized_pnl: '-1.65015000', realized_pnl: '0.00000000', total_pnl: '-1.65015000', roi_pct: '-0.01650150' };
      t.match(pf1, { type: 'portfolio', channel: 'portfolio', agent_id: reg.agent_id, ...pfv1, data: pfv1 });
      t.same(await balance(), {
        balances: [
          { asset: 'USDT', available: '8498.34985000', locked: '0.00000000', total: '8498.34985000' },
          { asset: 'BTC', available: '0.03000000', locked: '0.00000000', total: '0.03000000' },
        ],
        total_equity_usdt: '9998.34985000',
      });
      t.same(await balance(), (await s.call('GET', '/api/v1/account/balance', { headers: h })).body, 'WS balance = REST balance');
      const again = await c.request('order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.03', client_order_id: 'ws-1' });
      t.equal(again.result.order_id, buyId, 'client_order_id is idempotent over WS too');

      // 2. Limit buy over REST: hold 0.01 × 49000 × 1.001 = 490.49, pushed to the socket.
      const limit = await s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.01', price: '49000' } });
      t.equal(limit.status, 201, JSON.stringify(limit.body));
      const l1 = limit.body.order_id;
      t.match(await c.next(orderEvent(l1, 'order.placed'), 2000, 'placed push'), {
        type: 'order', channel: 'orders', status: 'pending', order_type: 'limit', side: 'buy', price: '49000.00000000', locked_amount: '490.49000000',
        data: { order_id: l1, status: 'pending', type: 'limit', locked_amount: '490.49000000' },
      });
      t.same((await balance()).balances[0], { asset: 'USDT', available: '8007.85985000', locked: '490.49000000', total: '8498.34985000' });
      t.equal((await balance()).total_equity_usdt, '9998.34985000', 'a hold is not a loss');
      let openOrders = (await c.request('orders.open')).result;
      t.equal(openOrders.total, 1);
      t.match(openOrders.orders, [{ order_id: l1, status: 'pending', locked_amount: '490.49000000' }]);
      t.match((await c.request('order.status', { order_id: l1 })), { status: 200, result: { order_id: l1, status: 'pending', price: '49000.00000000' } });

      // 3. Limit buy over WS (hold 0.01 × 48000 × 1.001 = 480.48), then cancel over WS.
      const l2r = await c.request('order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.01', price: '48000', client_order_id: 'ws-2' });
      t.match(l2r, { status: 200, result: { status: 'pending', locked_amount: '480.48000000', client_order_id: 'ws-2' } });
      const l2 = l2r.result.order_id;
      await c.next(orderEvent(l2, 'order.placed'), 2000, 'placed push (WS order)');
      t.same((await balance()).balances[0], { asset: 'USDT', available: '7527.37985000', locked: '970.97000000', total: '8498.34985000' });
      openOrders = (await c.request('orders.open')).result;
      t.equal(openOrders.total, 2);
      t.same(openOrders.orders.map((o: Frame) => o.order_id), [l2, l1], 'newest first');
      t.same((await c.request('orders.open', { symbol: 'ethusdt' })).result, { orders: [], total: 0 });
      t.same((await c.request('orders.open', { symbol: 'btcusdt' })).result.total, 2);
      const cancel = await c.request('order.cancel', { order_id: l2 });
      t.match(cancel, { status: 200, result: { order_id: l2, status: 'cancelled', unlocked_amount: '480.48000000' } });
      t.type(cancel.result.cancelled_at, 'string');
      t.match(await c.next(orderEvent(l2, 'order.cancelled'), 2000, 'cancel push'), { channel: 'orders', status: 'cancelled', data: { status: 'cancelled' } });
      t.same((await balance()).balances[0], { asset: 'USDT', available: '8007.85985000', locked: '490.49000000', total: '8498.34985000' }, 'hold released');
      t.match(await c.request('order.cancel', { order_id: l2 }), { status: 400, error: { code: 'ORDER_NOT_CANCELLABLE', details: { current_status: 'cancelled' } } });
      t.equal(c.log.filter(portfolio).length, 1, 'placing and cancelling push no portfolio update');

      // 4. A tick at 49500 does not cross; 48500 fills the limit at 48504.85 (fee 0.4850485), the rest of the hold comes back.
      tick(s, 'BTCUSDT', '49500.00');
      tick(s, 'BTCUSDT', '48500.00');
      const fill = await c.next(orderEvent(l1, 'order.filled'), 2000, 'limit fill push');
      t.match(fill, { status: 'filled', order_type: 'limit', executed_price: '48504.85000000', executed_qty: '0.01000000', fee: '0.48504850', total_cost: '485.53354850' });
      t.equal(c.log.filter((f) => isOrderPush(f) && f.order_id === l1).length, 2, 'placed, filled: nothing at 49500');
      const pfv2 = { total_equity: '9952.81630150', available_cash: '8012.81630150', unrealized_pnl: '-47.18369850', realized_pnl: '0.00000000', total_pnl: '-47.18369850', roi_pct: '-0.47183699' };
      t.match(await c.next(portfolio, 2000, 'portfolio after the limit fill'), { agent_id: reg.agent_id, ...pfv2, data: pfv2 });
      t.same(await balance(), {
        balances: [
          { asset: 'USDT', available: '8012.81630150', locked: '0.00000000', total: '8012.81630150' },
          { asset: 'BTC', available: '0.04000000', locked: '0.00000000', total: '0.04000000' },
        ],
        total_equity_usdt: '9952.81630150',
      });
      t.same((await c.request('orders.open')).result, { orders: [], total: 0 });
      const pos = (await s.call('GET', '/api/v1/account/positions', { headers: h })).body.positions;
      t.match(pos, [{ symbol: 'BTCUSDT', quantity: '0.04000000', avg_entry_price: '49679.59246250', current_price: '48500.00000000', unrealized_pnl: '-47.18369850' }]);
      await s.engine.journal.flush();
      t.match(await c.request('order.status', { order_id: l1 }), { status: 200, result: { order_id: l1, status: 'filled', executed_price: '48504.85000000', fee: '0.48504850' } });
      t.match(await c.request('order.status', { order_id: buyId }), { status: 200, result: { status: 'filled', fee: '1.50015000' } });

      // 5. Market sell 0.04 over WS at 48500 × 0.9999 = 48495.15: gross 1939.806, fee 1.939806,
      //    realized (48495.15 − 49679.5924625) × 0.04 − 1.939806 = −49.3175045.
      const sell = await c.request('order.place', { symbol: 'BTCUSDT', side: 'sell', type: 'market', quantity: '0.04' });
      t.match(sell, { status: 200, result: { status: 'filled', executed_price: '48495.15000000', fee: '1.93980600', total_cost: '1937.86619400', realized_pnl: '-49.31750450' } });
      t.match(await c.next(orderEvent(sell.result.order_id, 'order.filled')), { realized_pnl: '-49.31750450', side: 'sell' });
      const pfv3 = { total_equity: '9950.68249550', available_cash: '9950.68249550', unrealized_pnl: '0.00000000', realized_pnl: '-49.31750450', total_pnl: '-49.31750450', roi_pct: '-0.49317505' };
      t.match(await c.next(portfolio, 2000, 'portfolio after the sell'), { ...pfv3, data: pfv3 });
      t.same(await balance(), { balances: [{ asset: 'USDT', available: '9950.68249550', locked: '0.00000000', total: '9950.68249550' }], total_equity_usdt: '9950.68249550' });
      t.match((await s.call('GET', '/api/v1/account/portfolio', { headers: h })).body, { ...pfv3, positions: [] });
      await s.engine.journal.flush();
      const pnl = (await s.call('GET', '/api/v1/account/pnl?period=1d', { headers: h })).body;
      t.match(pnl, { realized_pnl: '-49.31750450', fees_paid: '3.92500450', losing_trades: 1 });
      const hist = (await s.call('GET', '/api/v1/trade/history', { headers: h })).body;
      t.equal(hist.total, 3, 'two WS fills and one REST-placed fill');
      t.same(hist.trades.map((x: Frame) => [x.side, x.price, x.fee]), [
        ['sell', '48495.15000000', '1.93980600'], ['buy', '48504.85000000', '0.48504850'], ['buy', '50005.00000000', '1.50015000'],
      ]);
      t.same(c.log.filter(portfolio).length, 3, 'one portfolio push per fill');
      t.same(c.log.filter(isOrderPush).map((f) => f.event), ['order.filled', 'order.placed', 'order.placed', 'order.cancelled', 'order.filled', 'order.filled']);
    });

    t.test('order entry errors: same codes and statuses as REST, balances unchanged', async (t) => {
      tick(s, 'BTCUSDT', '50000.00');
      const me = await registerAndLogin(s, { starting_balance: '1000' });
      const other = await registerAndLogin(s, { starting_balance: '10000' });
      const theirs = await s.call('POST', '/api/v1/trade/order', { headers: other.agentKey, body: { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.01', price: '40000' } });
      t.equal(theirs.status, 201);
      const c = track(await open(s, { api_key: me.reg.agent_api_key }));
      await c.subscribe({ channel: 'orders' });
      const before = (await c.request('account.balance')).result;
      t.same(before, { balances: [{ asset: 'USDT', available: '1000.00000000', locked: '0.00000000', total: '1000.00000000' }], total_equity_usdt: '1000.00000000' });

      const cases: Array<[string, Record<string, unknown> | undefined, number, string, Record<string, unknown> | null]> = [
        ['order.place', { symbol: 'BTCUSDT', side: 'sell', type: 'market', quantity: '0.001' }, 400, 'INSUFFICIENT_BALANCE', { asset: 'BTC', required: '0.00100000', available: '0.00000000' }],
        ['order.place', { symbol: 'NOPEUSDT', side: 'buy', type: 'market', quantity: '1' }, 400, 'INVALID_SYMBOL', { symbol: 'NOPEUSDT' }],
        ['order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '1' }, 400, 'ORDER_REJECTED', {}],
        ['order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.001' }, 422, 'VALIDATION_ERROR', { field: 'price' }],
        ['order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.001', price: '5' }, 422, 'VALIDATION_ERROR', { field: 'price' }],
        ['order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '-1' }, 422, 'VALIDATION_ERROR', { field: 'quantity' }],
        ['order.place', { symbol: 'BTCUSDT', side: 'hold', type: 'market', quantity: '0.001' }, 422, 'VALIDATION_ERROR', { field: 'side' }],
        ['order.place', { side: 'buy', type: 'market', quantity: '0.001' }, 422, 'VALIDATION_ERROR', { field: 'symbol' }],
        ['order.place', undefined, 422, 'VALIDATION_ERROR', { field: 'symbol' }],
        ['order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.0000001' }, 400, 'INVALID_QUANTITY', {}],
        ['order.status', { order_id: theirs.body.order_id }, 404, 'ORDER_NOT_FOUND', { order_id: theirs.body.order_id }],
        ['order.cancel', { order_id: theirs.body.order_id }, 404, 'ORDER_NOT_FOUND', { order_id: theirs.body.order_id }],
        ['order.status', { order_id: '00000000-0000-4000-8000-000000000000' }, 404, 'ORDER_NOT_FOUND', {}],
        ['order.status', { order_id: 'abc' }, 422, 'VALIDATION_ERROR', { field: 'order_id' }],
        ['order.cancel', {}, 422, 'VALIDATION_ERROR', { field: 'order_id' }],
        ['account.balance', { extra: 1 }, 200, '', null],
        ['order.teleport', {}, 400, 'UNKNOWN_ACTION', { method: 'order.teleport' }],
        ['constructor', {}, 400, 'UNKNOWN_ACTION', { method: 'constructor' }],
        ['__proto__', {}, 400, 'UNKNOWN_ACTION', { method: '__proto__' }],
      ];
      for (const [method, params, status, code, details] of cases) {
        const r = await c.request(method, params);
        const label = `${method} ${JSON.stringify(params)}`;
        t.equal(r.status, status, label);
        if (status === 200) {
          t.notOk(r.error, label);
        } else {
          t.same(Object.keys(r).sort(), ['error', 'id', 'status'], label);
          t.match(r.error, { code, message: String, details }, label);
        }
        t.same((await c.request('account.balance')).result, before, `balance unchanged after ${label}`);
      }
      t.match((await c.request('order.teleport')).error.message, /Valid methods: order\.place, order\.cancel, order\.status, orders\.open/);
      // A request frame without an id, or with a non-string method, is a validation error with id null.
      c.send({ method: 'account.balance' });
      t.match(await c.next((f) => 'status' in f && f.id === null), { id: null, status: 422, error: { code: 'VALIDATION_ERROR', details: { field: 'id' } } });
      c.send({ id: 7, method: 5 });
      t.match(await c.next((f) => f.id === 7), { id: 7, status: 422, error: { code: 'VALIDATION_ERROR', details: { field: 'method' } } });
      c.send({ id: 8, method: 'account.balance', params: [1] });
      t.match(await c.next((f) => f.id === 8), { id: 8, status: 422, error: { code: 'VALIDATION_ERROR', details: { field: 'params' } } });
      t.equal((await s.call('GET', `/api/v1/trade/order/${theirs.body.order_id}`, { headers: other.agentKey })).body.status, 'pending', 'the other agent\'s order is untouched');
      t.same(c.log.filter(isOrderPush), [], 'no order push for a rejected request');
      t.same((await s.call('GET', '/api/v1/trade/orders', { headers: me.agentKey })).body.total, 0);

      // authorized_actions without 'trade': order entry is PERMISSION_DENIED, account.balance works; and the reverse.
      const noTrade = await createAgent(s, me.jwt, { display_name: 'Reader', starting_balance: '500', authorized_actions: ['account', 'market'] });
      const r = track(await open(s, { api_key: noTrade.api_key }));
      const denied = await r.request('order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.001' });
      t.match(denied, { status: 403, error: { code: 'PERMISSION_DENIED', details: { action: 'trade' } } });
      t.match(await r.request('orders.open'), { status: 403, error: { code: 'PERMISSION_DENIED' } });
      t.match(await r.request('account.balance'), { status: 200, result: { total_equity_usdt: '500.00000000' } });
      const tradeOnly = await createAgent(s, me.jwt, { display_name: 'Trader', starting_balance: '500', authorized_actions: ['trade'] });
      const tr = track(await open(s, { api_key: tradeOnly.api_key }));
      t.match(await tr.request('account.balance'), { status: 403, error: { code: 'PERMISSION_DENIED', details: { action: 'account' } } });
      t.match(await tr.request('orders.open'), { status: 200, result: { total: 0 } });
      t.same((await s.call('GET', '/api/v1/account/balance', { headers: { ...me.jwt, 'x-agent-id': noTrade.agent_id } })).body.total_equity_usdt, '500.00000000');
    });

    t.test('isolation: orders and portfolio pushes reach only their own agent, or the owning account', async (t) => {
      tick(s, 'BTCUSDT', '50000.00');
      const x = await registerAndLogin(s, { starting_balance: '10000' });
      const x2 = await createAgent(s, x.jwt, { display_name: 'X2', starting_balance: '10000' });
      const y = await registerAndLogin(s, { starting_balance: '10000' });
      const A = x.reg.agent_id;
      const B = y.reg.agent_id;

      const sA = track(await open(s, { api_key: x.reg.agent_api_key }));
      const sX2 = track(await open(s, { api_key: x2.api_key }));
      const sAcct = track(await open(s, { api_key: x.reg.api_key }));
      const sScoped = track(await open(s, { api_key: x.reg.api_key, agent_id: x2.agent_id }));
      const sB = track(await open(s, { api_key: y.reg.agent_api_key }));
      // An agent key cannot be narrowed to another agent: agent_id is ignored, in the URL and in the auth frame.
      const sAasX2 = track(await open(s, { api_key: x.reg.agent_api_key, agent_id: x2.agent_id }));
      const sX2asB = track(await open(s));
      sX2asB.send({ action: 'auth', api_key: x2.api_key, agent_id: B });
      t.same(await sX2asB.next(), { type: 'authenticated', account_id: x.reg.account_id, agent_id: x2.agent_id });
      for (const c of [sA, sX2, sAcct, sScoped, sB, sAasX2, sX2asB]) {
        t.same(await c.subscribe({ channel: 'orders' }), { type: 'subscribed', channel: 'orders' });
        t.same(await c.subscribe({ channel: 'portfolio' }), { type: 'subscribed', channel: 'portfolio' });
      }
      // Asking for someone else's stream does not widen the subscription.
      t.same(await sA.subscribe({ channel: 'orders', agent_id: x2.agent_id }), { type: 'subscribed', channel: 'orders' });
      t.same(await sA.subscribe({ channel: 'portfolio', agent_id: B }), { type: 'subscribed', channel: 'portfolio' });
      t.match(await sA.subscribe({ channel: `orders:${B}` }), { type: 'error', code: 'INVALID_CHANNEL' });
      t.match(await sA.subscribe({ channel: `portfolio:${x2.agent_id}` }), { type: 'error', code: 'INVALID_CHANNEL' });

      const place = async (headers: H, body: Record<string, unknown>) => {
        const r = await s.call('POST', '/api/v1/trade/order', { headers, body });
        if (r.status !== 201) throw new Error(JSON.stringify(r.body));
        return r.body.order_id as string;
      };
      const limit = { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.01', price: '40000' };
      const market = { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.01' };
      const b1 = await place(y.agentKey, limit);
      const b2 = await place(y.agentKey, market);
      const x21 = await place({ 'x-api-key': x2.api_key }, limit);
      const x22 = await place({ 'x-api-key': x2.api_key }, market);
      // B also trades over its own socket.
      const b3 = (await sB.request('order.place', market)).result.order_id;
      // The marker: A's own order, last.
      const a1 = await place(x.agentKey, market);
      const is = (id: string) => (f: Frame) => isOrderPush(f) && f.order_id === id;
      const pf = (agent: string) => (f: Frame) => isPortfolioPush(f) && f.agent_id === agent;
      await sA.next(is(a1), 2000, 'A sees its own order');
      await sA.next(pf(A), 2000, 'A sees its own portfolio');
      await sAcct.next(is(a1), 2000, 'the account sees A');
      await sAcct.next(is(x21));
      await sAcct.next(is(x22));
      await sAcct.next(pf(x2.agent_id));
      await sAcct.next(pf(A));
      await sX2.next(is(x22));
      await sX2.next(pf(x2.agent_id));
      await sScoped.next(is(x22));
      await sScoped.next(pf(x2.agent_id));
      await sB.next(is(b3));
      await sB.next(pf(B));
      // A further tick-free delay so that any stray push would have arrived.
      await sleep(150);

      const agents = (c: Client, channel: string) => [...new Set(c.log.filter((f) => f.type !== 'subscribed' && f.channel === channel).map((f) => f.agent_id))].sort();
      const orderIds = (c: Client) => c.log.filter(isOrderPush).map((f) => f.order_id);
      await sAasX2.next(is(a1));
      await sX2asB.next(is(x22));
      t.same(agents(sAasX2, 'orders'), [A], 'agent key with another agent_id: still only its own orders');
      t.same(agents(sAasX2, 'portfolio'), [A]);
      t.same(agents(sX2asB, 'orders'), [x2.agent_id], 'agent key with a foreign agent_id in the auth frame: its own orders');
      t.same(agents(sX2asB, 'portfolio'), [x2.agent_id]);
      t.same(agents(sA, 'orders'), [A], 'agent A: own orders only');
      t.same(agents(sA, 'portfolio'), [A], 'agent A: own portfolio only');
      t.same(orderIds(sA), [a1]);
      t.same(agents(sX2, 'orders'), [x2.agent_id]);
      t.same(orderIds(sX2), [x21, x22]);
      t.same(agents(sScoped, 'orders'), [x2.agent_id], 'account key scoped to X2: X2 only');
      t.same(agents(sScoped, 'portfolio'), [x2.agent_id]);
      t.same(agents(sAcct, 'orders'), [A, x2.agent_id].sort(), 'account key: its own agents, both');
      t.same(agents(sAcct, 'portfolio'), [A, x2.agent_id].sort());
      t.same(orderIds(sAcct), [x21, x22, a1]);
      t.same(agents(sB, 'orders'), [B]);
      t.same(orderIds(sB), [b1, b2, b3]);
      t.same(agents(sB, 'portfolio'), [B]);
      // (error answers echo what was asked, so only pushes are searched)
      const pushes = (c: Client) => JSON.stringify(c.log.filter((f) => f.type !== 'error'));
      for (const c of [sA, sX2, sAcct, sScoped, sAasX2, sX2asB]) t.notOk(pushes(c).includes(B), 'nothing of account Y reaches account X');
      t.notOk(pushes(sB).includes(A) || pushes(sB).includes(x2.agent_id), 'nothing of account X reaches account Y');

      // A cannot act on X2's or B's orders over its socket either.
      t.match(await sA.request('order.cancel', { order_id: x21 }), { status: 404, error: { code: 'ORDER_NOT_FOUND' } });
      t.match(await sA.request('order.status', { order_id: b1 }), { status: 404, error: { code: 'ORDER_NOT_FOUND' } });
      // The account socket sees orders across its agents but cannot trade without naming one.
      t.match(await sAcct.request('order.place', market), { status: 422, error: { code: 'VALIDATION_ERROR' } });
      t.match(await sScoped.request('order.status', { order_id: x21 }), { status: 200, result: { order_id: x21, status: 'pending' } });
    });

    t.test('connections per key: the third handshake gets 429 CONNECTION_LIMIT; closing one frees a slot', async (t) => {
      const { reg } = await registerAndLogin(s);
      const key = { api_key: reg.agent_api_key };
      const c1 = track(await open(s, key));
      const c2 = track(await open(s, key));
      const third = await handshake(s, key);
      t.equal(third.status, 429);
      t.same(third.body, { error: { code: 'CONNECTION_LIMIT', message: 'At most 2 connections per API key.', details: { limit: 2 } } });
      // The auth-frame path counts too: error frame, then 4429.
      const late = track(await open(s));
      late.send({ action: 'auth', api_key: reg.agent_api_key });
      t.match(await late.next(), { type: 'error', code: 'CONNECTION_LIMIT', details: { limit: 2 } });
      t.equal((await closedWithin(late)).code, 4429);
      // The same key padded with whitespace (which authentication trims) is the same key.
      for (const padded of [` ${reg.agent_api_key}`, `${reg.agent_api_key} `, `\t${reg.agent_api_key}\n`]) {
        const r = await handshake(s, { api_key: padded });
        t.equal(r.status, 429, `padded key ${JSON.stringify(padded.replace(reg.agent_api_key, 'KEY'))} counts against the same limit`);
        if (r.client) track(r.client);
      }
      const paddedFrame = track(await open(s));
      paddedFrame.send({ action: 'auth', api_key: ` ${reg.agent_api_key} ` });
      t.match(await paddedFrame.next(), { type: 'error', code: 'CONNECTION_LIMIT' });
      // Other keys of the same account are counted separately.
      track(await open(s, { api_key: reg.api_key }));
      await c1.close();
      const c3 = track(await open(s, key));
      t.equal(c3.ws.readyState, WebSocket.OPEN, 'a slot freed by a close is reusable');
      t.equal((await handshake(s, key)).status, 429);
      c2.ws.terminate();
      await c2.closed;
      let reopened: Handshake | null = null;
      for (let i = 0; i < 20 && reopened?.status !== 101; i++) {
        reopened = await handshake(s, key);
        if (reopened.status !== 101) await sleep(25);
      }
      t.equal(reopened?.status, 101, 'an abrupt disconnect frees its slot too');
      if (reopened?.client) track(reopened.client);
    });

    t.test('slow consumer: a socket that stops reading is closed; other subscribers keep receiving', async (t) => {
      const slowAgent = await registerAndLogin(s);
      const fastAgent = await registerAndLogin(s);
      const key = { api_key: slowAgent.reg.agent_api_key };
      const slow = track(await open(s, key));
      const idle = track(await open(s, key));
      for (const ch of ['ticker:all', 'candles:XRPUSDT:1m', 'candles:XRPUSDT:5m', 'candles:XRPUSDT:1h']) await slow.subscribe({ channel: ch });
      const fast = track(await open(s, { api_key: fastAgent.reg.agent_api_key }));
      await fast.subscribe({ channel: 'ticker:XRPUSDT' });
      t.equal((await handshake(s, key)).status, 429, 'both slots of the slow key are taken');

      (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
      // Ticks (about 1.4 KB of frames each for the slow socket) until the server drops it: first the kernel
      // buffers fill (a few MB on loopback), then uWS's, up to backpressure_bytes_max (64 KiB). The probe:
      // its connection slot comes free while the client still is not reading.
      const price = (i: number) => (2 + (i % 100) / 1000).toFixed(3);
      const base = Date.now();
      let N = 0;
      let freed: Handshake | null = null;
      while (N < 60_000 && freed?.status !== 101) {
        for (let j = 0; j < 250; j++, N++) tick(s, 'XRPUSDT', price(N), '10', base + N);
        await immediate();
        if (N % 2500 === 0) freed = await handshake(s, key);
      }
      for (let i = 0; i < 20 && freed?.status !== 101; i++) {
        await sleep(50);
        freed = await handshake(s, key);
      }
      t.equal(freed?.status, 101, `the slow socket was closed by the server (after ${N} ticks)`);
      if (freed?.client) track(freed.client);
      t.notOk(idle.isClosed, 'the idle socket on the same key is not affected');

      // The normal subscriber got every tick, in order.
      const deadline = Date.now() + 5000;
      while (fast.log.filter((f) => f.type === 'ticker').length < N && Date.now() < deadline) await sleep(20);
      const got = fast.log.filter((f) => f.type === 'ticker');
      t.equal(got.length, N, 'the normal subscriber received every tick');
      t.same(got.map((f) => f.price), Array.from({ length: N }, (_, i) => price(i) + '00000'), 'in order');
      t.notOk(fast.isClosed);

      // Once the slow client reads again it finds what the kernel held, then the end of the connection.
      (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      const end = await closedWithin(slow, 5000);
      t.not(end.code, -1, 'the slow socket ends');
      const perTick = slow.bytes / Math.max(1, slow.log.filter((f) => f.type === 'ticker').length);
      t.ok(slow.log.filter((f) => f.type === 'ticker').length < N, `the slow client did not get everything (${slow.log.length} frames, ${slow.bytes} bytes, ~${Math.round(perTick)} B/tick)`);
    });

    t.test('a regenerated key closes its open sockets at the next ping check', async (t) => {
      const { jwt } = await registerAndLogin(s);
      const a = await createAgent(s, jwt, { display_name: 'Rotating' });
      const c = track(await open(s, { api_key: a.api_key }));
      await c.subscribe({ channel: 'orders' });
      t.match(await c.request('account.balance'), { status: 200 });
      const regen = await s.call('POST', `/api/v1/agents/${a.agent_id}/regenerate-key`, { headers: jwt });
      t.equal(regen.status, 200);
      t.match(await c.next((f) => f.type === 'error', 2000, 'error frame before the close'), { type: 'error', code: 'INVALID_API_KEY' });
      const closed = await closedWithin(c, 2000);
      t.equal(closed.code, 4401);
      t.equal(closed.reason, 'credentials no longer valid');
      t.equal((await handshake(s, { api_key: a.api_key })).status, 401, 'the old key is refused');
      const fresh = track(await open(s, { api_key: regen.body.api_key }));
      t.match(await fresh.request('account.balance'), { status: 200, result: { total_equity_usdt: '10000.00000000' } });
    });
  });

  t.test(`websocket periodic portfolio, revoked credentials mid-connection and shutdown on ${backend.name}`, async (t) => {
    // Long ping interval: a revoked key is caught by the next request, not by the ping check.
    const s = await startTestServer(backend, { ws: ws({ portfolio_interval_ms: 150, ping_interval_ms: 60_000 }) });
    t.teardown(() => s.stop());
    tick(s, 'BTCUSDT', '50000.00', '1000000');
    const x = await registerAndLogin(s, { starting_balance: '2500' });
    const x2 = await createAgent(s, x.jwt, { display_name: 'Second', starting_balance: '700' });

    t.test('portfolio is pushed every portfolio_interval_ms, per agent', async (t) => {
      const c = await open(s, { api_key: x.reg.agent_api_key });
      const acct = await open(s, { api_key: x.reg.api_key });
      t.teardown(() => {
        c.ws.terminate();
        acct.ws.terminate();
      });
      await c.subscribe({ channel: 'portfolio' });
      await acct.subscribe({ channel: 'portfolio' });
      const t0 = Date.now();
      const p1 = await c.next(isPortfolioPush, 1000);
      const p2 = await c.next(isPortfolioPush, 1000);
      const p3 = await c.next(isPortfolioPush, 1000);
      t.ok(Date.now() - t0 < 1000, `three pushes within a second (${Date.now() - t0} ms)`);
      const v = { total_equity: '2500.00000000', available_cash: '2500.00000000', unrealized_pnl: '0.00000000', realized_pnl: '0.00000000', total_pnl: '0.00000000', roi_pct: '0.00000000' };
      for (const p of [p1, p2, p3]) t.match(p, { type: 'portfolio', channel: 'portfolio', agent_id: x.reg.agent_id, ...v, data: v });
      t.ok(Date.parse(p3.timestamp) > Date.parse(p1.timestamp), 'fresh timestamps');
      const mine = await acct.next((f) => f.agent_id === x.reg.agent_id, 1000);
      const second = await acct.next((f) => f.agent_id === x2.agent_id, 1000);
      t.equal(mine.total_equity, '2500.00000000');
      t.match(second, { channel: 'portfolio', total_equity: '700.00000000', available_cash: '700.00000000' });
      // Unsubscribing stops them.
      c.send({ action: 'unsubscribe', channel: 'portfolio' });
      await c.next((f) => f.type === 'unsubscribed');
      c.clear();
      await sleep(400);
      t.same(c.pending(isPortfolioPush), [], 'no push after unsubscribe');
    });

    t.test('a regenerated key or an archived agent fails the next request with INVALID_API_KEY', async (t) => {
      const a = await createAgent(s, x.jwt, { display_name: 'Rotating', starting_balance: '100' });
      const b = await createAgent(s, x.jwt, { display_name: 'Archiving', starting_balance: '100' });
      const ca = await open(s, { api_key: a.api_key });
      const cb = await open(s, { api_key: b.api_key });
      t.teardown(() => {
        ca.ws.terminate();
        cb.ws.terminate();
      });
      t.match(await ca.request('account.balance'), { status: 200 });
      t.equal((await s.call('POST', `/api/v1/agents/${a.agent_id}/regenerate-key`, { headers: x.jwt })).status, 200);
      t.same(await ca.request('account.balance'), { id: 'r2', status: 401, error: { code: 'INVALID_API_KEY', message: 'Invalid API key.', details: null } });
      t.match(await ca.request('order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.001' }), { status: 401, error: { code: 'INVALID_API_KEY' } });
      t.match(await cb.request('account.balance'), { status: 200 });
      t.equal((await s.call('POST', `/api/v1/agents/${b.agent_id}/archive`, { headers: x.jwt })).status, 200);
      t.match(await cb.request('order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.001' }), { status: 401, error: { code: 'INVALID_API_KEY', message: 'Agent is archived.' } });
      t.equal((await s.call('GET', '/api/v1/trade/orders', { headers: { ...x.jwt, 'x-agent-id': b.agent_id } })).body.total, 0, 'nothing was placed');
    });

    t.test('re-authenticating a socket with another key moves its orders/portfolio subscriptions to the new principal', async (t) => {
      // A socket opened with a key that is then revoked, re-authenticated with the holder's own key before
      // any ping check: the revoked agent's events must stop at once.
      const victim = await createAgent(s, x.jwt, { display_name: 'Victim', starting_balance: '1000' });
      const mallory = await registerAndLogin(s, { starting_balance: '1000' });
      const c = await open(s, { api_key: victim.api_key });
      t.teardown(() => c.ws.terminate());
      await c.subscribe({ channel: 'orders' });
      await c.subscribe({ channel: 'ticker:BTCUSDT' });
      const regen = await s.call('POST', `/api/v1/agents/${victim.agent_id}/regenerate-key`, { headers: x.jwt });
      t.equal(regen.status, 200);
      c.send({ action: 'auth', api_key: mallory.reg.agent_api_key });
      t.same(await c.next((f) => f.type === 'authenticated'), { type: 'authenticated', account_id: mallory.reg.account_id, agent_id: mallory.reg.agent_id });
      const body = { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.001', price: '40000' };
      const v = await s.call('POST', '/api/v1/trade/order', { headers: { 'x-api-key': regen.body.api_key }, body });
      t.equal(v.status, 201);
      const m = await s.call('POST', '/api/v1/trade/order', { headers: mallory.agentKey, body });
      t.equal(m.status, 201);
      t.match(await c.next(isOrderPush), { order_id: m.body.order_id, agent_id: mallory.reg.agent_id }, 'the new principal\'s orders arrive without re-subscribing');
      tick(s, 'BTCUSDT', '50000.00');
      await c.next((f) => f.type === 'ticker');
      t.same(c.log.filter((f) => f.order_id === v.body.order_id || f.agent_id === victim.agent_id), [], 'nothing of the revoked agent');
      t.match(await c.request('account.balance'), { status: 200, result: { total_equity_usdt: '1000.00000000' } });

      // The same while an account-key subscription is still being resolved: subscribe, then re-auth, back to back.
      const d = await open(s, { api_key: x.reg.api_key });
      t.teardown(() => d.ws.terminate());
      d.send({ action: 'subscribe', channel: 'orders' });
      d.send({ action: 'auth', api_key: mallory.reg.agent_api_key });
      await d.next((f) => f.type === 'authenticated');
      await d.next((f) => f.type === 'subscribed');
      const xo = await s.call('POST', '/api/v1/trade/order', { headers: x.agentKey, body });
      t.equal(xo.status, 201);
      const m2 = await s.call('POST', '/api/v1/trade/order', { headers: mallory.agentKey, body });
      t.match(await d.next(isOrderPush), { order_id: m2.body.order_id, agent_id: mallory.reg.agent_id });
      t.same(d.log.filter(isOrderPush).map((f) => f.agent_id), [mallory.reg.agent_id], 'no order of the previous account');
    });

    t.test('shutdown closes open sockets with 1001 and refuses new ones', async (t) => {
      const authed = await open(s, { api_key: x.reg.agent_api_key });
      await authed.subscribe({ channel: 'ticker:BTCUSDT' });
      const unauthed = await open(s);
      const closing = s.server.close();
      const [a, u] = await Promise.all([closedWithin(authed), closedWithin(unauthed)]);
      t.same(a, { code: 1001, reason: 'server shutting down' });
      t.same(u, { code: 1001, reason: 'server shutting down' });
      await closing;
      await t.rejects(handshake(s, { api_key: x.reg.agent_api_key }), 'the listener is closed');
      tick(s, 'BTCUSDT', '50001.00');
      t.same(authed.pending((f) => f.type === 'ticker'), [], 'no push after shutdown');
    });
  });
}
