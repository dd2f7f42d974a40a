import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import WebSocket from 'ws';
import { RISK_BOUNDS } from '../engine/core/risk-profile.js';
import { freePort, http, must } from './lib.js';

/**
 * Soak: the real server (`node dist/gateway/main.js`, synthetic price feed) under steady mixed load for a set
 * time, to see that throughput holds and memory levels off instead of growing.
 *
 *   npx tsc -p . && node dist/bench/soak.js --minutes 10
 *
 * Load (open loop, steady rates):
 *  - `--clients` WebSocket order clients, one agent each, `--order-rate` places/s in all: resting limit buys far
 *    below the market, each cancelled once acknowledged; every 10th place a market buy or sell (fills and trades).
 *    Every place carries a client_order_id (as agents that retry do). Each socket also subscribes to `orders`.
 *  - `--readers` REST readers, `--read-rate` GETs/s in all: balance, positions, open orders, history, prices.
 *  - `--subscribers` ticker sockets (half `ticker:BTCUSDT`+`ticker:ETHUSDT`, half `ticker_all`).
 *  - historical battles, one after another for the whole run (closed loop): two agents, one day of generated
 *    1-minute candles imported with the server's CLI, batches of 20 steps with an order before each, results.
 *    Left out (and said so) when the server has no /api/v1/battles.
 * Every minute: places/cancels acked per s (p50/p99 ack latency), REST reads/s, WS pushes/s, battle steps/s and
 * battles completed, errors by code, server RSS (/proc/<pid>/status VmRSS), heap used (its /health) and live heap
 * (what survived the last full collection: the server runs with --trace-gc). At the end: the slopes of RSS and
 * live heap in the first and last third of the run, the change of their median level from the middle third to
 * the last, and whether memory levelled off.
 *
 * Options: --minutes=10 --clients=8 --order-rate=200 --readers=4 --read-rate=100 --subscribers=20
 *   --no-battle --no-client-ids --keep (keep the data dir / schema). Env: DATABASE_URL (PostgreSQL in a fresh
 *   schema instead of embedded PGlite in a temp DATA_DIR), REDIS_URL (passed to the server).
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER_ENTRY = join(ROOT, 'dist/gateway/main.js');
const CLI_ENTRY = join(ROOT, 'dist/engine/cli.js');
const API = '/api/v1';
const SAMPLE_MS = 3000;
const REPORT_MS = 60_000;
const OUTSTANDING_MAX = 50;
/** Battle candles: a warm-up day, then the battle's day. */
const CANDLES_FROM = Date.parse('2024-03-01T00:00:00Z');
const CANDLE_DAYS = 2;

const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    clients: { type: 'string', default: '8' },
    'order-rate': { type: 'string', default: '200' },
    readers: { type: 'string', default: '4' },
    'read-rate': { type: 'string', default: '100' },
    subscribers: { type: 'string', default: '20' },
    'no-battle': { type: 'boolean', default: false },
    'no-client-ids': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const num = (v: string | undefined, name: string) => {
  const n = Number(v);
  if (!(n >= 0) || !Number.isFinite(n)) throw new Error(`--${name} must be a non-negative number`);
  return n;
};
const cfg = {
  minutes: num(opt.minutes, 'minutes'), clients: Math.max(1, Math.round(num(opt.clients, 'clients'))), orderRate: num(opt['order-rate'], 'order-rate'),
  readers: Math.round(num(opt.readers, 'readers')), readRate: num(opt['read-rate'], 'read-rate'), subscribers: Math.round(num(opt.subscribers, 'subscribers')),
  battle: !opt['no-battle'], clientIds: !opt['no-client-ids'], keep: opt.keep,
};

const log = (line: string) => process.stdout.write(line + '\n');

// ---------------------------------------------------------------------------------------------------------
// Counters: totals since start; the report prints the change per interval.

const counters = { places: 0, cancels: 0, reads: 0, pushes: 0, battle_steps: 0, battles_done: 0 };
const errors = new Map<string, number>();
const latencies: number[] = [];
const fail = (code: string) => errors.set(code, (errors.get(code) ?? 0) + 1);

// ---------------------------------------------------------------------------------------------------------
// Server process and storage

interface Server {
  child: ChildProcess;
  base: string;
  /** Warn/error log events by name since start. */
  logged: Map<string, number>;
  /** After each full (mark-compact) collection in any isolate: the live JS heap of all isolates, MB. */
  live: Array<{ at: number; mb: number }>;
  exited: Promise<number | null>;
}

/** `--trace-gc` line of a full collection: `[pid:isolate] 187 ms: Mark-Compact 27.6 (55.4) -> 8.0 (42.1) MB, …`. */
const MARK_COMPACT = /^\[\d+:(0x[0-9a-f]+)\].*Mark-Compact (?:\(reduce\) )?[\d.]+ \([\d.]+\) -> ([\d.]+) \(/;

function startServer(env: Record<string, string>, port: number): Server {
  // Full collections are traced: what survives one is the live heap, which a sample of heapUsed (anywhere on the
  // garbage saw-tooth) is not. Scavenges are left out; worker threads' isolates are counted too.
  const args = ['--trace-gc', '--trace-gc-ignore-scavenger', SERVER_ENTRY];
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logged = new Map<string, number>();
  const live: Server['live'] = [];
  const isolates = new Map<string, number>();
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const lines = (partial + d).split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      if (l.startsWith('[')) {
        const m = MARK_COMPACT.exec(l);
        if (m) {
          isolates.set(m[1], Number(m[2]));
          live.push({ at: performance.now(), mb: [...isolates.values()].reduce((a, b) => a + b, 0) });
        }
        continue;
      }
      try {
        const e = JSON.parse(l) as { level: string; event: string };
        if (e.level === 'warn' || e.level === 'error') logged.set(`${e.level}:${e.event}`, (logged.get(`${e.level}:${e.event}`) ?? 0) + 1);
      } catch {
        logged.set('stdout:not-json', (logged.get('stdout:not-json') ?? 0) + 1);
      }
    }
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-10_000)));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => {
    if (code !== 0 && stderr) log(`server stderr:\n${stderr}`);
    r(code);
  }));
  return { child, base: `http://127.0.0.1:${port}`, logged, live, exited };
}

async function waitForHealth(s: Server, ms = 120_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (s.child.exitCode !== null) throw new Error(`server exited (${s.child.exitCode}) during start-up`);
    try {
      const r = await fetch(s.base + '/health');
      await r.arrayBuffer();
      if (r.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) throw new Error(`server not healthy within ${ms} ms`);
    await sleep(100);
  }
}

/** Random-walk 1-minute candles for the battle (written as CSV and imported with the server's own CLI). */
function writeCandles(dir: string): void {
  mkdirSync(dir, { recursive: true });
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (const [symbol, start] of [['BTCUSDT', 62000], ['ETHUSDT', 3400]] as const) {
    const rows = ['open_time,open,high,low,close,volume'];
    let price: number = start;
    for (let i = 0; i < CANDLE_DAYS * 1440; i++) {
      const open = price;
      const close = open * (1 + (rand() - 0.5) * 0.004);
      const high = Math.max(open, close) * (1 + rand() * 0.001);
      const low = Math.min(open, close) * (1 - rand() * 0.001);
      price = close;
      rows.push(`${new Date(CANDLES_FROM + i * 60_000).toISOString()},${open.toFixed(2)},${high.toFixed(2)},${low.toFixed(2)},${close.toFixed(2)},${(rand() * 50 + 1).toFixed(4)}`);
    }
    writeFileSync(join(dir, `${symbol}_1m_soak.csv`), rows.join('\n') + '\n');
  }
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ---------------------------------------------------------------------------------------------------------
// HTTP

// ---------------------------------------------------------------------------------------------------------
// Load

interface OrderClient {
  ws: WebSocket;
  seq: number;
  sent: number;
  outstanding: number;
  pending: Map<number, { place: boolean; at: number; kind: string }>;
  /** BTC bought by market orders and not yet sold (so sells never run out). */
  held: number;
}

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function orderClient(wsBase: string, key: string): Promise<OrderClient> {
  const ws = await openSocket(`${wsBase}?api_key=${encodeURIComponent(key)}`);
  const c: OrderClient = { ws, seq: 0, sent: 0, outstanding: 0, pending: new Map(), held: 0 };
  ws.on('error', () => fail('ws:socket-error'));
  ws.on('close', () => fail('ws:order-socket-closed'));
  ws.on('message', (data: Buffer) => {
    const f = JSON.parse(data.toString('utf8'));
    if (f.id === undefined) {
      if (f.type === 'order') counters.pushes++;
      return;
    }
    const req = c.pending.get(f.id);
    if (!req) return;
    c.pending.delete(f.id);
    if (f.status !== 200) {
      c.outstanding -= 1;
      fail(`ws:${f.status} ${f.error?.code}`);
      return;
    }
    latencies.push(performance.now() - req.at);
    if (!req.place) {
      counters.cancels++;
      c.outstanding -= 1;
      return;
    }
    counters.places++;
    if (req.kind === 'buy') c.held += 1;
    if (f.result.status === 'pending') send(c, 'order.cancel', { order_id: f.result.order_id }, false, 'cancel');
    else c.outstanding -= 1;
  });
  ws.send(JSON.stringify({ action: 'subscribe', channel: 'orders' }));
  return c;
}

function send(c: OrderClient, method: string, params: Record<string, unknown>, place: boolean, kind: string): void {
  const id = ++c.seq;
  c.pending.set(id, { place, at: performance.now(), kind });
  c.ws.send(JSON.stringify({ id, method, params }));
}

function placeNext(c: OrderClient, index: number): void {
  const n = ++c.sent;
  c.outstanding += 1;
  const cid = cfg.clientIds ? { client_order_id: `soak${index}-${n}` } : {};
  if (n % 10 === 0 && c.held > 0) {
    c.held -= 1;
    return send(c, 'order.place', { symbol: 'BTCUSDT', side: 'sell', type: 'market', quantity: '0.0002', ...cid }, true, 'sell');
  }
  if (n % 10 === 5) return send(c, 'order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.0002', ...cid }, true, 'buy');
  send(c, 'order.place', { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.0002', price: '50000', ...cid }, true, 'rest');
}

/** Steady open-loop places across the clients; a client with too much outstanding skips (counted). */
function driveOrders(clients: OrderClient[], stop: () => boolean): Promise<void> {
  const t0 = performance.now();
  let due = 0;
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (stop()) {
        clearInterval(timer);
        return resolve();
      }
      const target = Math.floor(((performance.now() - t0) / 1000) * cfg.orderRate);
      for (; due < target; due++) {
        const i = due % clients.length;
        const c = clients[i];
        if (c.ws.readyState !== WebSocket.OPEN) fail('client:socket-not-open');
        else if (c.outstanding >= OUTSTANDING_MAX) fail('client:backlog-skip');
        else placeNext(c, i);
      }
    }, 20);
  });
}

async function reader(base: string, keys: string[], index: number, rate: number, stop: () => boolean): Promise<void> {
  const paths = [`${API}/account/balance`, `${API}/account/positions`, `${API}/trade/orders/open`, `${API}/trade/history?limit=20`, `${API}/market/prices`, `${API}/account/portfolio`];
  const period = 1000 / rate;
  const t0 = performance.now();
  for (let n = 0; !stop(); n++) {
    const wait = t0 + n * period - performance.now();
    if (wait > 0) await sleep(wait);
    const path = paths[(n + index) % paths.length];
    try {
      const r = await http(base, 'GET', path, { 'x-api-key': keys[(n + index) % keys.length] });
      if (r.status === 200) counters.reads++;
      else fail(`http:${r.status} ${r.body?.error?.code ?? ''}`);
    } catch (err) {
      fail(`http:${(err as Error).name}`);
    }
  }
}

async function subscriber(wsBase: string, key: string, index: number): Promise<WebSocket> {
  const ws = await openSocket(`${wsBase}?api_key=${encodeURIComponent(key)}`);
  ws.on('error', () => fail('ws:socket-error'));
  ws.on('message', (data: Buffer) => {
    if (data.includes('"ticker"')) counters.pushes++;
  });
  const channels = index % 2 === 0 ? ['ticker:BTCUSDT', 'ticker:ETHUSDT'] : ['ticker_all'];
  for (const channel of channels) ws.send(JSON.stringify({ action: 'subscribe', channel }));
  return ws;
}

/** Historical battles one after another: create, two participants, start, batches of steps with an order each, results. */
async function battles(base: string, jwt: Record<string, string>, agents: string[], stop: () => boolean): Promise<void> {
  const B = `${API}/battles`;
  const day = new Date(CANDLES_FROM + 86_400_000).toISOString();
  const end = new Date(CANDLES_FROM + 2 * 86_400_000).toISOString();
  for (let round = 1; !stop(); round++) {
    try {
      const b = await must(base, 'POST', B, jwt, {
        name: `Soak ${round}`, battle_mode: 'historical', starting_balance: '10000',
        backtest_config: { start_time: day, end_time: end, candle_interval: '1m', pairs: ['BTCUSDT', 'ETHUSDT'] },
      });
      const id = b.battle_id ?? b.id;
      for (const a of agents) await must(base, 'POST', `${B}/${id}/participants`, jwt, { agent_id: a });
      await must(base, 'POST', `${B}/${id}/start`, jwt);
      for (let n = 0; !stop(); n++) {
        // Each agent alternates: buy, then sell what it bought.
        const side = Math.floor(n / agents.length) % 2 === 0 ? 'buy' : 'sell';
        const o = await http(base, 'POST', `${B}/${id}/trade/order`, jwt, { agent_id: agents[n % agents.length], symbol: 'BTCUSDT', side, type: 'market', quantity: '0.01' });
        if (o.status >= 300 && o.body?.error?.code !== 'INSUFFICIENT_BALANCE') fail(`battle-order:${o.status} ${o.body?.error?.code}`);
        const step = await must(base, 'POST', `${B}/${id}/step/batch`, jwt, { steps: 20 });
        counters.battle_steps += 20;
        if (step.is_complete || step.status === 'completed') {
          await must(base, 'GET', `${B}/${id}/results`, jwt);
          counters.battles_done++;
          break;
        }
      }
      if (stop()) await http(base, 'POST', `${B}/${id}/stop`, jwt);
    } catch (err) {
      fail(`battle:${(err as Error).message.slice(0, 80)}`);
      await sleep(1000);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reporting

interface Sample {
  t_min: number;
  rss_mb: number;
  heap_mb: number;
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

interface Point {
  t_min: number;
  mb: number;
}

/** RSS floors are taken per bucket: a twelfth of the run, between 10 s and 30 s (so each third has about 4). */
const bucketMin = () => Math.min(0.5, Math.max(1 / 6, cfg.minutes / 12));

/** The lowest RSS in each bucket of time: what stayed resident. */
function rssFloors(samples: Sample[]): Point[] {
  const w = bucketMin();
  const buckets = new Map<number, Point>();
  for (const s of samples) {
    if (!Number.isFinite(s.rss_mb)) continue;
    const b = Math.floor(s.t_min / w);
    const cur = buckets.get(b);
    if (!cur || s.rss_mb < cur.mb) buckets.set(b, { t_min: (b + 0.5) * w, mb: s.rss_mb });
  }
  return [...buckets.values()];
}

/** The points in [from, to) minutes. */
const within = (points: Point[], from: number, to: number) => points.filter((p) => p.t_min >= from && p.t_min < to);

/** Least-squares slope (MB per minute) of the points in [from, to) minutes; NaN with fewer than 3. */
function slope(points: Point[], from: number, to: number): number {
  const xs = within(points, from, to);
  if (xs.length < 3) return NaN;
  const mx = xs.reduce((a, p) => a + p.t_min, 0) / xs.length;
  const my = xs.reduce((a, p) => a + p.mb, 0) / xs.length;
  const num = xs.reduce((a, p) => a + (p.t_min - mx) * (p.mb - my), 0);
  const den = xs.reduce((a, p) => a + (p.t_min - mx) ** 2, 0);
  return den === 0 ? NaN : num / den;
}

/**
 * The change of level from the middle third to the last, per minute: median against median, so that one
 * battle's peak or a late collection does not read as growth the way a least-squares fit over a few minutes does.
 */
function levelSlope(points: Point[], thirds: number[]): number {
  const median = (from: number, to: number) => {
    const v = within(points, from, to).map((p) => p.mb).sort((a, b) => a - b);
    return v.length < 3 ? NaN : v[Math.floor(v.length / 2)];
  };
  return (median(thirds[2], thirds[3]) - median(thirds[1], thirds[2])) / (thirds[2] - thirds[1]);
}

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
/** The last value in each sixth of the run (a coarse shape of the curve). */
const sixths = (points: Point[]) => {
  const out: string[] = [];
  for (let i = 1; i <= 6; i++) out.push(f1([...points].reverse().find((p) => p.t_min <= (cfg.minutes * i) / 6)?.mb ?? NaN));
  return out.join(' ');
};
const diffMap = (now: Map<string, number>, before: Map<string, number>) => {
  const out: Record<string, number> = {};
  for (const [k, v] of now) if (v - (before.get(k) ?? 0) > 0) out[k] = v - (before.get(k) ?? 0);
  return out;
};

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ae-soak-'));
  const dbUrl = process.env.DATABASE_URL || null;
  let schema: string | null = null;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !['DATABASE_URL', 'PORT', 'DATA_DIR', 'FEED', 'LOG_LEVEL'].includes(k)) env[k] = v;
  Object.assign(env, {
    HOST: '127.0.0.1', DATA_DIR: dataDir, FEED: 'synthetic', FEED_SEED: '7', LOG_LEVEL: 'warn', KDF_COST: '1024',
    RATE_AGENT_PER_MINUTE: '0', RATE_ACCOUNT_PER_MINUTE: '0', RATE_AUTH_PER_IP_PER_MINUTE: '0', RATE_PUBLIC_PER_IP_PER_MINUTE: '0',
  });
  if (dbUrl) {
    schema = `soak_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 5000 });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    env.DATABASE_URL = `${dbUrl}${dbUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  }
  log(`soak: ${cfg.minutes} min on ${dbUrl ? `PostgreSQL (schema ${schema})` : 'embedded PGlite'}${process.env.REDIS_URL ? ' + Redis' : ''}; ` +
    `${cfg.clients} order sockets at ${cfg.orderRate} places/s${cfg.clientIds ? ' (with client_order_id)' : ''}, ${cfg.readers} readers at ${cfg.readRate} GET/s, ` +
    `${cfg.subscribers} ticker sockets, battle ${cfg.battle ? 'on' : 'off'}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);

  let server: Server | null = null;
  const sockets: WebSocket[] = [];
  let stopping = false;
  const stop = () => stopping;
  const cleanup = async () => {
    stopping = true;
    for (const ws of sockets) ws.terminate();
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      const t = setTimeout(() => server!.child.kill('SIGKILL'), 30_000);
      log(`server exit code after SIGTERM: ${await server.exited}`);
      clearTimeout(t);
    }
    if (!cfg.keep) {
      if (schema) {
        const c = new pg.Client({ connectionString: dbUrl! });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await c.end();
      }
      rmSync(dataDir, { recursive: true, force: true });
    } else log(`kept: ${dataDir}${schema ? `, schema ${schema}` : ''}`);
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

  try {
    let battle = cfg.battle;
    if (battle) {
      const dir = join(dataDir, 'candles');
      writeCandles(dir);
      const t0 = Date.now();
      try {
        execFileSync(process.execPath, [CLI_ENTRY, 'import', dir, '--json'], { cwd: ROOT, env, stdio: 'pipe' });
        log(`candles: ${CANDLE_DAYS} days × 2 symbols of 1m imported with the CLI in ${Date.now() - t0} ms`);
      } catch (err) {
        log(`candles: import failed, battle part left out: ${String((err as { stderr?: Buffer }).stderr ?? err).slice(0, 300)}`);
        battle = false;
      }
    }
    const port = await freePort();
    server = startServer(env, port);
    await waitForHealth(server);
    const base = server.base;
    const wsBase = `ws://127.0.0.1:${port}/ws/v1`;
    const paths = Object.keys((await must(base, 'GET', '/openapi.json')).paths ?? {});
    const hasBattles = paths.includes(`${API}/battles`);
    if (battle && !hasBattles) log(`no ${API}/battles in the route table${paths.some((p) => p.startsWith(`${API}/backtest`)) ? ' (backtests exist, but the soak steps battles only)' : ''}: battle part left out`);
    battle &&= hasBattles;

    // Set-up: one account, an agent per order socket (limits wide open), a price to trade at.
    const reg = await must(base, 'POST', `${API}/auth/register`, {}, { display_name: 'Soak', starting_balance: '1000000' });
    const { token } = await must(base, 'POST', `${API}/auth/login`, {}, { api_key: reg.api_key, api_secret: reg.api_secret });
    const jwt = { authorization: `Bearer ${token}` };
    const risk = {
      order_rate_limit: RISK_BOUNDS.order_rate_limit.max, max_open_orders: RISK_BOUNDS.max_open_orders.max, max_order_size_pct: 100,
      max_position_size_pct: 100, daily_loss_limit_pct: 100, min_order_size_usd: 0,
    };
    const agents: Array<{ id: string; key: string }> = [];
    for (let i = 0; i < cfg.clients; i++) {
      const a = await must(base, 'POST', `${API}/agents`, jwt, { display_name: `soak-${i}`, starting_balance: '1000000', risk_profile: risk });
      agents.push({ id: a.agent_id, key: a.api_key });
    }
    const keys = agents.map((a) => a.key);
    for (const until = Date.now() + 30_000; (await http(base, 'GET', `${API}/market/price/BTCUSDT`)).status !== 200; await sleep(200)) {
      if (Date.now() > until) throw new Error('no BTCUSDT price from the synthetic feed');
    }

    const clients = await Promise.all(agents.map((a) => orderClient(wsBase, a.key)));
    sockets.push(...clients.map((c) => c.ws));
    for (let i = 0; i < cfg.subscribers; i++) sockets.push(await subscriber(wsBase, keys[i % keys.length], i));
    const started = performance.now();
    const minutes = () => (performance.now() - started) / 60_000;
    const load: Array<Promise<void>> = [driveOrders(clients, stop)];
    for (let i = 0; i < cfg.readers; i++) load.push(reader(base, keys, i, cfg.readRate / cfg.readers, stop));
    if (battle) load.push(battles(base, jwt, agents.slice(0, 2).map((a) => a.id), stop));

    const samples: Sample[] = [];
    const sample = async () => {
      const h = await http(base, 'GET', '/health').catch(() => null);
      samples.push({ t_min: minutes(), rss_mb: rssMb(server!.child.pid!), heap_mb: Number(h?.body?.memory?.heap_used_mb ?? NaN) });
    };
    await sample();
    log(`start: server RSS ${f1(samples[0].rss_mb)} MB, heap ${f1(samples[0].heap_mb)} MB`);
    log('min | places/s cancels/s p50/p99 ms | reads/s | pushes/s | battle steps/s (done) | RSS MB, heap used MB, live heap MB | errors (this minute) | server warn/error logs');
    const liveNow = () => server!.live[server!.live.length - 1]?.mb ?? NaN;
    let last = { ...counters, errors: new Map(errors), logged: new Map(server.logged), at: performance.now() };
    const endAt = started + cfg.minutes * 60_000;
    let nextReport = started + Math.min(REPORT_MS, cfg.minutes * 60_000);
    while (performance.now() < endAt) {
      if (server.child.exitCode !== null) throw new Error(`server exited (${server.child.exitCode}) during the run`);
      await sleep(Math.min(SAMPLE_MS, Math.max(0, nextReport - performance.now())));
      await sample();
      if (performance.now() < nextReport - 50) continue;
      const now = performance.now();
      const s = (now - last.at) / 1000;
      const rate = (k: keyof typeof counters) => ((counters[k] - last[k]) / s).toFixed(1);
      const lat = latencies.splice(0);
      const m = samples[samples.length - 1];
      log(`${minutes().toFixed(1).padStart(4)} | ${rate('places')} ${rate('cancels')} ${f1(pct(lat, 50))}/${f1(pct(lat, 99))} | ${rate('reads')} | ${rate('pushes')} | ` +
        `${battle ? `${rate('battle_steps')} (${counters.battles_done - last.battles_done})` : '-'} | ${f1(m.rss_mb)}, ${f1(m.heap_mb)}, ${f1(liveNow())} | ` +
        `${JSON.stringify(diffMap(errors, last.errors))} | ${JSON.stringify(diffMap(server.logged, last.logged))}`);
      last = { ...counters, errors: new Map(errors), logged: new Map(server.logged), at: now };
      nextReport = Math.min(endAt, nextReport + REPORT_MS);
    }
    stopping = true;
    await Promise.race([Promise.all(load), sleep(30_000)]);

    const total = cfg.minutes;
    const thirds = [0, total / 3, (2 * total) / 3, total + 1];
    const live: Point[] = server.live.filter((x) => x.at >= started).map((x) => ({ t_min: (x.at - started) / 60_000, mb: x.mb }));
    const floorsRss = rssFloors(samples);
    const rss = [slope(floorsRss, thirds[0], thirds[1]), slope(floorsRss, thirds[2], thirds[3])];
    const heap = [slope(live, thirds[0], thirds[1]), slope(live, thirds[2], thirds[3])];
    const level = [levelSlope(floorsRss, thirds), levelSlope(live, thirds)];
    const flat = (first: number, lastThird: number, levelled: number, floor: number) =>
      lastThird <= floor || levelled <= floor || (Number.isFinite(first) && first > 0 && lastThird <= 0.3 * first);
    log(`totals: ${JSON.stringify(counters)}; errors ${JSON.stringify(Object.fromEntries(errors))}; server logs ${JSON.stringify(Object.fromEntries(server.logged))}`);
    log(`memory: RSS ${f1(samples[0].rss_mb)} → ${f1(samples[samples.length - 1].rss_mb)} MB (max ${f1(Math.max(...samples.map((x) => x.rss_mb)))}); ` +
      `live heap after full collections (${live.length} of them): ${live.length ? `${f1(live[0].mb)} → ${f1(live[live.length - 1].mb)} MB, per sixth of the run ${sixths(live)}` : 'none'}`);
    log(`slopes: first third RSS ${f1(rss[0])} live heap ${f1(heap[0])} MB/min; last third RSS ${f1(rss[1])} live heap ${f1(heap[1])} MB/min; ` +
      `median level, middle third to last: RSS ${f1(level[0])} live heap ${f1(level[1])} MB/min`);
    const verdict = !Number.isFinite(rss[1]) || !Number.isFinite(heap[1]) ? 'INCONCLUSIVE (too few samples or full collections in the last third)'
      : flat(rss[0], rss[1], level[0], 1) && flat(heap[0], heap[1], level[1], 0.5) ? 'LEVELLED OFF' : 'STILL GROWING';
    log(`verdict: memory ${verdict} (levelled = for RSS and live heap, the last third's slope or the median level's ` +
      `change from the middle third ≤ 1 MB/min RSS and ≤ 0.5 MB/min live heap, or the last third's slope ≤ 30 % of the first's)` +
      (total < 10 ? ` — a ${total}-minute run is mostly warm-up; --minutes 10 or more gives a verdict that means something` : ''));
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  process.stderr.write(`soak failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
