import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { freePort, must } from './lib.js';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import WebSocket from 'ws';
import { RISK_BOUNDS } from '../engine/core/risk-profile.js';
import { formatSummary, summarise, type CpuProfile, type ProfileSummary } from './profile-summary.js';

/**
 * WebSocket order-entry benchmark: the real server (`node dist/gateway/main.js`, risk checks on, every
 * order event made durable in the journal before it is acknowledged) against a bare uWebSockets.js echo
 * (bench/echo-server) driven by the same client code with the same frames.
 *
 *   npx tsc -p . && node dist/bench/ws-orders.js [options]
 *
 * Load: one socket per agent. Each place is a resting limit buy far below the market (BTCUSDT, 0.0002 @ 50000,
 * synthetic feed near 104000, so it never fills) and is cancelled once acknowledged: 50 % places, 50 % cancels.
 * "requests" = places + cancels (each one a durable wallet event); "places" = new orders only.
 *
 * Phases, each run on the echo first and then on the server:
 *  - saturation: closed loop, `--window` chains per socket (place → ack → cancel → ack → place …);
 *  - fixed offered rates (requests/s, open loop): sends are scheduled at intended times; latency = ack time −
 *    intended time, so a stalled server is charged for every request it delayed (no coordinated omission).
 *    A socket never has more than `--open-max` orders outstanding (the server's max_open_orders is 200):
 *    past that, a due send waits in the client, and that wait is part of its latency.
 *
 * Options: --agents=20 --window=50 --client-workers=1 --sat-seconds=5 --rate-seconds=3 --warmup-seconds=1
 *   --open-max=190 --rates=1000,10000,50000 --only=server|echo --phases=saturation,rates --profile (server under --cpu-prof;
 *   the summary covers the server's saturation phase) --keep (keep the data dir).
 * Env: DATABASE_URL (use PostgreSQL instead of embedded PGlite in a temp DATA_DIR).
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER_ENTRY = join(ROOT, 'dist/gateway/main.js');
const ECHO_ENTRY = join(ROOT, 'dist/bench/echo-server.js');
const SELF = fileURLToPath(import.meta.url);

const SYMBOL = 'BTCUSDT';
const QTY = '0.0002';
const PRICE = '50000';

// ---------------------------------------------------------------------------------------------------------
// Shared shapes (main thread ↔ client workers)

type Target = 'echo' | 'server';

interface PhaseSpec {
  name: string;
  mode: 'closed' | 'open';
  /** closed: in-flight chains per socket. */
  window: number;
  /** open: offered requests/s for this worker. */
  rate: number;
  warmup_ms: number;
  duration_ms: number;
  /** open: how long after the last intended send requests may still complete before they count as late. */
  grace_ms: number;
  /** open: orders a socket may have outstanding (place sent … cancel acknowledged). */
  open_max: number;
}

interface PhaseResult {
  /** Acks received in the measured window (closed) or for requests intended in it (open). */
  places: number;
  cancels: number;
  /** Successful acks received during the measured window, whatever their intended time: the throughput. */
  tput_places: number;
  tput_cancels: number;
  errors: Record<string, number>;
  /** Ack − intended send time, ms (completed requests). */
  lat: Float64Array;
  /** Ack − actual send time, ms. */
  svc: Float64Array;
  /** Actual − intended send time, ms (client scheduling lag plus waits for the open-order cap). */
  lag: Float64Array;
  /** Lower bounds (cutoff − intended) of requests not acknowledged by the cutoff. */
  late: Float64Array;
  measure_ms: number;
  /** open: requests scheduled in the measured window. */
  offered: number;
}

type ToWorker =
  | { type: 'connect'; urls: Record<Target, string>; keys: string[] }
  | { type: 'phase'; target: Target; spec: PhaseSpec; start_epoch_ms: number }
  | { type: 'close' };

type FromWorker = { type: 'connected' } | { type: 'result'; result: PhaseResult } | { type: 'error'; message: string };

// ---------------------------------------------------------------------------------------------------------
// Client (runs in each worker)

const ID_PREFIX = '{"id":';
const ORDER_ID = '"order_id":"';
const STATUS = '"status":';

interface Req {
  phase: number;
  place: boolean;
  intended: number;
  sent: number;
  measured: boolean;
}

class ClientConn {
  nextId = 1;
  readonly pending = new Map<number, Req>();
  /** Acknowledged open orders waiting for their cancel (open loop). */
  readonly toCancel: string[] = [];
  /** Orders from place sent until cancel acknowledged (or place refused). */
  outstanding = 0;
  /** Intended times of due sends held back by the open-order cap (open loop). */
  readonly deferred: number[] = [];
  onAck: (c: ClientConn, req: Req, ok: boolean, orderId: string | null, code: string | null) => void = () => {};

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.receive(data.toString('latin1')));
  }

  place(phase: number, intended: number, measured: boolean): void {
    const id = this.nextId++;
    const now = performance.now();
    this.pending.set(id, { phase, place: true, intended, sent: now, measured });
    this.outstanding++;
    this.ws.send(`{"id":${id},"method":"order.place","params":{"symbol":"${SYMBOL}","side":"buy","type":"limit","quantity":"${QTY}","price":"${PRICE}"}}`);
  }

  cancel(orderId: string, phase: number, intended: number, measured: boolean): void {
    const id = this.nextId++;
    const now = performance.now();
    this.pending.set(id, { phase, place: false, intended, sent: now, measured });
    this.ws.send(`{"id":${id},"method":"order.cancel","params":{"order_id":"${orderId}"}}`);
  }

  private receive(text: string): void {
    if (!text.startsWith(ID_PREFIX)) return; // pushes and pings
    const comma = text.indexOf(',', ID_PREFIX.length);
    const id = Number(text.slice(ID_PREFIX.length, comma));
    const req = this.pending.get(id);
    if (!req) return;
    this.pending.delete(id);
    const s = text.indexOf(STATUS, comma);
    const ok = s >= 0 && text.startsWith('200', s + STATUS.length);
    let orderId: string | null = null;
    let code: string | null = null;
    if (ok && req.place) {
      const o = text.indexOf(ORDER_ID);
      orderId = text.slice(o + ORDER_ID.length, o + ORDER_ID.length + 36);
    } else if (!ok) {
      const m = /"code":"([A-Z_]+)"/.exec(text);
      code = m ? m[1] : `status_${text.slice(s + STATUS.length, s + STATUS.length + 3)}`;
    }
    if (!req.place || !ok) this.outstanding--;
    this.onAck(this, req, ok, orderId, code);
  }
}

async function clientWorker(): Promise<void> {
  const port = parentPort!;
  const conns: Record<Target, ClientConn[]> = { echo: [], server: [] };
  let phaseNo = 0;

  const connect = (url: string) =>
    new Promise<ClientConn>((res, rej) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.once('open', () => res(new ClientConn(ws)));
      ws.once('error', rej);
      ws.on('close', (code, reason) => {
        if (code !== 1000 && code !== 1001 && code !== 1005) port.postMessage({ type: 'error', message: `socket closed ${code} ${reason}` } satisfies FromWorker);
      });
    });

  async function runPhase(target: Target, spec: PhaseSpec, startEpoch: number): Promise<PhaseResult> {
    const list = conns[target];
    const phase = ++phaseNo;
    const t0 = startEpoch - performance.timeOrigin;
    const mStart = t0 + spec.warmup_ms;
    const mEnd = mStart + spec.duration_ms;
    const lat: number[] = [];
    const svc: number[] = [];
    const lag: number[] = [];
    const late: number[] = [];
    const errors: Record<string, number> = {};
    let places = 0;
    let cancels = 0;
    let tputPlaces = 0;
    let tputCancels = 0;
    let offered = 0;
    let running = true;
    let closedResult = false;

    const record = (req: Req, now: number, ok: boolean, code: string | null) => {
      if (ok && now >= mStart && now < mEnd) {
        if (req.place) tputPlaces++;
        else tputCancels++;
      }
      const inWindow = spec.mode === 'closed' ? now >= mStart && now < mEnd : req.measured;
      if (!inWindow || (spec.mode === 'open' && closedResult)) return;
      if (ok) {
        if (req.place) places++;
        else cancels++;
      } else errors[code ?? 'unknown'] = (errors[code ?? 'unknown'] ?? 0) + 1;
      lat.push(now - req.intended);
      svc.push(now - req.sent);
      lag.push(req.sent - req.intended);
    };

    /** One due send at `intended` on `c` (open loop): cancel an acknowledged order, else place, else wait. */
    const slot = (c: ClientConn, intended: number, measured: boolean) => {
      if (c.toCancel.length > 0) c.cancel(c.toCancel.shift()!, phase, intended, measured);
      else if (c.outstanding < spec.open_max) c.place(phase, intended, measured);
      else c.deferred.push(intended);
    };
    const isMeasured = (intended: number) => intended >= mStart && intended < mEnd;

    for (const c of list) {
      c.onAck = (c, req, ok, orderId, code) => {
        const now = performance.now();
        if (req.phase === phase) record(req, now, ok, code);
        if (spec.mode === 'closed') {
          if (ok && req.place) c.cancel(orderId!, phase, now, false);
          else if (running) c.place(phase, now, false);
          return;
        }
        if (ok && req.place) {
          if (running) c.toCancel.push(orderId!);
          else c.cancel(orderId!, phase, now, false);
        }
        while (running && c.deferred.length > 0 && (c.toCancel.length > 0 || c.outstanding < spec.open_max)) {
          const intended = c.deferred.shift()!;
          slot(c, intended, isMeasured(intended));
        }
      };
    }

    const wait = (ms: number) => sleep(Math.max(0, ms));
    await wait(t0 - performance.now());

    if (spec.mode === 'closed') {
      for (const c of list) for (let i = 0; i < spec.window; i++) c.place(phase, performance.now(), false);
      await wait(mEnd - performance.now());
      running = false;
    } else {
      const interval = 1000 / spec.rate;
      const end = mEnd;
      const total = Math.floor((end - t0) / interval);
      let k = 0;
      await new Promise<void>((done) => {
        const tick = () => {
          const due = Math.min(total, Math.floor((performance.now() - t0) / interval) + 1);
          for (; k < due; k++) {
            const intended = t0 + k * interval;
            const m = isMeasured(intended);
            if (m) offered++;
            slot(list[k % list.length], intended, m);
          }
          if (k >= total) done();
          else setTimeout(tick, 1);
        };
        tick();
      });
      // Let measured requests finish (deferred ones included), up to the grace period.
      const cutoff = end + spec.grace_ms;
      const measuredLeft = () => {
        for (const c of list) {
          if (c.deferred.some(isMeasured)) return true;
          for (const r of c.pending.values()) if (r.phase === phase && r.measured) return true;
        }
        return false;
      };
      while (performance.now() < cutoff && measuredLeft()) await sleep(5);
      const now = performance.now();
      for (const c of list) {
        for (const t of c.deferred) if (isMeasured(t)) late.push(now - t);
        for (const r of c.pending.values()) if (r.phase === phase && r.measured) late.push(now - r.intended);
        c.deferred.length = 0;
      }
      closedResult = true;
      running = false;
      // Cancel what was acknowledged but not yet cancelled (not measured).
      for (const c of list) while (c.toCancel.length > 0) c.cancel(c.toCancel.shift()!, phase, now, false);
    }
    // Drain: every request of this phase answered and every order cancelled before the next phase.
    const drainUntil = performance.now() + 120_000;
    while (performance.now() < drainUntil && list.some((c) => c.pending.size > 0 || c.outstanding > 0)) await sleep(10);
    const stuck = list.reduce((n, c) => n + c.pending.size, 0);
    if (stuck > 0) port.postMessage({ type: 'error', message: `${stuck} requests unanswered after the drain` } satisfies FromWorker);
    for (const c of list) {
      c.onAck = () => {};
      c.outstanding = 0;
      c.toCancel.length = 0;
    }
    return {
      places, cancels, errors, tput_places: tputPlaces, tput_cancels: tputCancels,
      lat: Float64Array.from(lat), svc: Float64Array.from(svc), lag: Float64Array.from(lag), late: Float64Array.from(late),
      measure_ms: spec.duration_ms, offered,
    };
  }

  port.on('message', async (msg: ToWorker) => {
    try {
      if (msg.type === 'connect') {
        for (const target of ['echo', 'server'] as const) {
          if (!msg.urls[target]) continue;
          conns[target] = await Promise.all(msg.keys.map((k) => connect(`${msg.urls[target]}?api_key=${encodeURIComponent(k)}`)));
        }
        port.postMessage({ type: 'connected' } satisfies FromWorker);
      } else if (msg.type === 'phase') {
        const result = await runPhase(msg.target, msg.spec, msg.start_epoch_ms);
        port.postMessage({ type: 'result', result } satisfies FromWorker, [result.lat.buffer, result.svc.buffer, result.lag.buffer, result.late.buffer] as ArrayBuffer[]);
      } else if (msg.type === 'close') {
        for (const list of Object.values(conns)) for (const c of list) c.ws.close(1000);
        await sleep(100);
        process.exit(0);
      }
    } catch (err) {
      port.postMessage({ type: 'error', message: (err as Error).stack ?? String(err) } satisfies FromWorker);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------
// Main thread: processes, setup, phases, report

interface Args {
  agents: number;
  window: number;
  clientWorkers: number;
  satSeconds: number;
  rateSeconds: number;
  warmupSeconds: number;
  rates: number[];
  openMax: number;
  only: Target | null;
  phases: Set<string>;
  profile: boolean;
  keep: boolean;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string): string | undefined => {
    const a = argv.find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
    return a === undefined ? undefined : a.includes('=') ? a.slice(a.indexOf('=') + 1) : 'true';
  };
  const num = (name: string, d: number) => {
    const v = get(name);
    if (v === undefined) return d;
    const n = Number(v);
    if (!(n > 0)) throw new Error(`--${name} must be a positive number`);
    return n;
  };
  const only = get('only');
  if (only !== undefined && only !== 'echo' && only !== 'server') throw new Error('--only must be echo or server');
  return {
    agents: num('agents', 20),
    window: num('window', 50),
    clientWorkers: num('client-workers', 1),
    satSeconds: num('sat-seconds', 5),
    rateSeconds: num('rate-seconds', 3),
    warmupSeconds: num('warmup-seconds', 1),
    rates: (get('rates') ?? '1000,10000,50000').split(',').map(Number).filter((n) => n > 0),
    openMax: num('open-max', 190),
    only: (only as Target | undefined) ?? null,
    phases: new Set((get('phases') ?? 'saturation,rates').split(',')),
    profile: get('profile') === 'true',
    keep: get('keep') === 'true',
  };
}

interface Proc {
  child: ChildProcess;
  stdout: string[];
  stderr: () => string;
  exited: Promise<number | null>;
  spawned_at: number;
}

function startProc(args: string[], env: Record<string, string>): Proc {
  const spawned_at = Date.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  let err = '';
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop()!;
    stdout.push(...parts);
    if (stdout.length > 2000) stdout.splice(0, stdout.length - 2000);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-20_000);
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, stdout, stderr: () => err, exited, spawned_at };
}

async function stopProc(p: Proc, ms = 30_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), ms);
  await p.exited;
  clearTimeout(t);
}

async function waitForHealth(base: string, p: Proc, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (p.child.exitCode !== null) throw new Error(`server exited (${p.child.exitCode}) before it was healthy:\n${p.stdout.join('\n')}\n${p.stderr()}`);
    try {
      const r = await fetch(base + '/health');
      await r.arrayBuffer();
      if (r.ok) return;
    } catch {
      /* not yet listening */
    }
    if (Date.now() > until) throw new Error(`server not healthy within ${ms} ms:\n${p.stderr()}`);
    await sleep(100);
  }
}

async function journalStats(base: string): Promise<{ commits: number; events: number } | null> {
  try {
    const r = await fetch(base + '/health');
    const body = (await r.json()) as { journal?: { commits: number; events: number } };
    return body.journal ?? null;
  } catch {
    return null;
  }
}

/** One account, `n` agents with the loosest risk profile the bounds allow; returns their API keys. */
async function setupAgents(base: string, n: number): Promise<{ keys: string[]; risk: Record<string, number> }> {
  const reg = await must(base, 'POST', '/api/v1/auth/register', {}, { display_name: 'ws-orders bench', starting_balance: '1000000' });
  const { token } = await must(base, 'POST', '/api/v1/auth/login', {}, { api_key: reg.api_key, api_secret: reg.api_secret });
  const risk = {
    order_rate_limit: RISK_BOUNDS.order_rate_limit.max,
    max_open_orders: RISK_BOUNDS.max_open_orders.max,
    max_order_size_pct: RISK_BOUNDS.max_order_size_pct.max,
    max_position_size_pct: RISK_BOUNDS.max_position_size_pct.max,
    daily_loss_limit_pct: RISK_BOUNDS.daily_loss_limit_pct.max,
    min_order_size_usd: RISK_BOUNDS.min_order_size_usd.min,
  };
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = await must(base, 'POST', '/api/v1/agents', { authorization: `Bearer ${token}` }, { display_name: `bench-${i}`, starting_balance: '1000000', risk_profile: risk });
    keys.push(a.api_key);
  }
  return { keys, risk };
}

/** One place + cancel on the real server: the answer sizes the echo must reproduce, and a check that orders rest. */
async function probe(url: string, key: string): Promise<{ place: number; cancel: number; placeText: string }> {
  const ws = new WebSocket(`${url}?api_key=${encodeURIComponent(key)}`);
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  const ask = (frame: object) =>
    new Promise<string>((r) => {
      const on = (d: Buffer) => {
        const t = d.toString();
        if (!t.startsWith(ID_PREFIX)) return;
        ws.off('message', on);
        r(t);
      };
      ws.on('message', on);
      ws.send(JSON.stringify(frame));
    });
  const placed = await ask({ id: 1, method: 'order.place', params: { symbol: SYMBOL, side: 'buy', type: 'limit', quantity: QTY, price: PRICE } });
  const p = JSON.parse(placed);
  if (p.status !== 200 || p.result.status !== 'pending') throw new Error(`probe order did not rest: ${placed}`);
  const cancelled = await ask({ id: 2, method: 'order.cancel', params: { order_id: p.result.order_id } });
  if (JSON.parse(cancelled).status !== 200) throw new Error(`probe cancel failed: ${cancelled}`);
  ws.close();
  return { place: Buffer.byteLength(placed), cancel: Buffer.byteLength(cancelled), placeText: placed };
}

// CPU accounting from /proc (clock ticks of 10 ms on Linux).
const CLK_TCK = 100;
function procTicks(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]); // utime + stime
  } catch {
    return 0;
  }
}
/** Main thread of `pid`: ns on a CPU and ns runnable but waiting for one (/proc/<pid>/task/<pid>/schedstat). */
function schedstat(pid: number | undefined): { run: number; wait: number } {
  if (!pid) return { run: 0, wait: 0 };
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { run, wait };
  } catch {
    return { run: 0, wait: 0 };
  }
}
function systemTicks(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = line[3] + (line[4] ?? 0);
    const total = line.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

interface Merged {
  target: Target;
  name: string;
  mode: 'closed' | 'open';
  offered_rps: number | null;
  requests_per_s: number;
  places_per_s: number;
  errors: Record<string, number>;
  p50: number; p99: number; p999: number; max: number;
  svc_p50: number; svc_p99: number;
  lag_p99: number;
  late: number;
  /** Smallest lower bound among late requests: a percentile at or above it is itself only a lower bound. */
  late_min: number;
  completed_pct: number;
  /** % of one core over the measured window; main_* = the server's (or echo's) main thread: on a CPU / runnable but waiting for one. */
  cpu: { server_pct: number; client_pct: number; others_pct: number; main_run_pct: number; main_wait_pct: number };
  wall: { start: number; end: number };
  journal: { commits_per_s: number; events_per_commit: number } | null;
}

function pct(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function concat(arrays: Float64Array[]): Float64Array {
  const out = new Float64Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

function merge(target: Target, spec: PhaseSpec & { total_rate: number | null }, results: PhaseResult[]): Omit<Merged, 'cpu' | 'wall' | 'journal'> {
  const places = results.reduce((n, r) => n + r.places, 0);
  const cancels = results.reduce((n, r) => n + r.cancels, 0);
  const tputPlaces = results.reduce((n, r) => n + r.tput_places, 0);
  const tputCancels = results.reduce((n, r) => n + r.tput_cancels, 0);
  const errors: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const errCount = Object.values(errors).reduce((a, b) => a + b, 0);
  const late = concat(results.map((r) => r.late));
  // Late requests count at their lower bound (they took at least that long).
  const lat = concat([...results.map((r) => r.lat), late]).sort();
  const svc = concat(results.map((r) => r.svc)).sort();
  const lag = concat(results.map((r) => r.lag)).sort();
  const offered = results.reduce((n, r) => n + r.offered, 0);
  const secs = spec.duration_ms / 1000;
  return {
    target, name: spec.name, mode: spec.mode, offered_rps: spec.total_rate,
    // Acknowledged (200) during the measured window, over its length: the throughput in both modes.
    requests_per_s: (tputPlaces + tputCancels) / secs,
    places_per_s: tputPlaces / secs,
    errors,
    p50: pct(lat, 0.5), p99: pct(lat, 0.99), p999: pct(lat, 0.999), max: lat.length ? lat[lat.length - 1] : NaN,
    svc_p50: pct(svc, 0.5), svc_p99: pct(svc, 0.99), lag_p99: pct(lag, 0.99),
    late: late.length,
    late_min: late.reduce((m, v) => Math.min(m, v), Infinity),
    completed_pct: spec.mode === 'open' && offered > 0 ? (100 * (places + cancels + errCount)) / offered : 100,
  };
}

class Clients {
  private readonly workers: Worker[] = [];
  private readonly waiters: Array<Array<(m: FromWorker) => void>> = [];
  errors: string[] = [];

  constructor(n: number) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(SELF, { workerData: { role: 'client' } });
      this.waiters.push([]);
      w.on('message', (m: FromWorker) => {
        if (m.type === 'error') {
          this.errors.push(m.message);
          process.stderr.write(`client worker ${i}: ${m.message}\n`);
          return;
        }
        this.waiters[i].shift()?.(m);
      });
      w.on('error', (err) => {
        process.stderr.write(`client worker ${i} crashed: ${err.stack}\n`);
        process.exit(1);
      });
      this.workers.push(w);
    }
  }

  get size() {
    return this.workers.length;
  }

  private ask(i: number, msg: ToWorker): Promise<FromWorker> {
    return new Promise((r) => {
      this.waiters[i].push(r);
      this.workers[i].postMessage(msg);
    });
  }

  async connect(urls: Record<Target, string>, keys: string[]): Promise<void> {
    await Promise.all(this.workers.map((_, i) => this.ask(i, { type: 'connect', urls, keys: keys.filter((_, k) => k % this.workers.length === i) })));
  }

  async phase(target: Target, spec: PhaseSpec, start: number): Promise<PhaseResult[]> {
    const share = { ...spec, rate: spec.rate / this.workers.length };
    const out = await Promise.all(this.workers.map((_, i) => this.ask(i, { type: 'phase', target, spec: share, start_epoch_ms: start })));
    return out.map((m) => (m as { result: PhaseResult }).result);
  }

  async close(): Promise<void> {
    for (const w of this.workers) w.postMessage({ type: 'close' } satisfies ToWorker);
    await Promise.all(this.workers.map((w) => new Promise((r) => w.once('exit', r))));
  }
}

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) : '-');
const k = (n: number) => (n >= 1000 ? `${(n / 1000).toFixed(n >= 10_000 ? 1 : 2)}k` : n.toFixed(0));
const lb = (r: { late_min: number }, v: number) => (v >= r.late_min ? '≥' : '') + f1(v);
const padL = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);
const padR = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  for (const f of [SERVER_ENTRY, ECHO_ENTRY]) if (!existsSync(f)) throw new Error(`${f} is missing: run \`npx tsc -p .\` first`);
  const log = (s: string) => process.stdout.write(s + '\n');
  const dbUrl = process.env.DATABASE_URL || null;
  const dataDir = mkdtempSync(join(tmpdir(), 'ae-bench-'));
  const profDir = join(dataDir, 'cpuprofile');
  log(`ws-orders bench: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), node ${process.version}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const git = (...a: string[]) => spawnSync('git', ['-C', ROOT, ...a], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const commit = git('rev-parse', '--short', 'HEAD') || 'unknown';
  const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
  log(`code: ${commit}${dirty ? ' + uncommitted changes' : ''}`);
  log(`storage: ${dbUrl ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${dataDir}`}; feed: synthetic (seed 7); risk checks on; journal group commit on`);

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const wantServer = args.only !== 'echo';
  const wantEcho = args.only !== 'server';
  let server: Proc | null = null;
  let echo: Proc | null = null;
  let clients: Clients | null = null;
  let pgSchema: string | null = null;
  const cleanup = async () => {
    await clients?.close().catch(() => {});
    if (echo) await stopProc(echo);
    if (server) await stopProc(server);
    if (dbUrl && pgSchema) {
      const c = new pg.Client({ connectionString: dbUrl });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`);
      await c.end();
    }
  };
  try {
    const urls: Record<Target, string> = { echo: '', server: '' };
    let keys: string[] = [];
    let sizes = { place: 600, cancel: 630 };
    let httpBase = '';
    if (wantServer || wantEcho) {
      // The echo needs the real answers' sizes, so the server always starts (it idles during echo phases).
      const port = await freePort();
      const serverEnv: Record<string, string> = {
        ...env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, FEED: 'synthetic', FEED_SEED: '7', LOG_LEVEL: 'warn',
      };
      if (!dbUrl) delete serverEnv.DATABASE_URL;
      else {
        // A schema of its own, dropped at the end, so the bench never mixes with (or leaves rows in) anything else.
        pgSchema = `bench_${randomBytes(6).toString('hex')}`;
        const admin = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 5000 });
        await admin.connect();
        await admin.query(`CREATE SCHEMA ${pgSchema}`);
        await admin.end();
        serverEnv.DATABASE_URL = `${dbUrl}${dbUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${pgSchema}`)}`;
        log(`  PostgreSQL schema ${pgSchema} (dropped at the end)`);
      }
      const nodeArgs = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=250'] : [];
      server = startProc([...nodeArgs, SERVER_ENTRY], serverEnv);
      const base = `http://127.0.0.1:${port}`;
      httpBase = base;
      await waitForHealth(base, server);
      urls.server = `ws://127.0.0.1:${port}/ws/v1`;
      const t = Date.now();
      const setup = await setupAgents(base, args.agents);
      keys = setup.keys;
      log(`setup: ${args.agents} agents in ${Date.now() - t} ms, one socket each; risk profile ${JSON.stringify(setup.risk)}`);
      const perAgent = setup.risk.order_rate_limit / 60;
      log(`  order_rate_limit bound ${setup.risk.order_rate_limit}/min/agent = ${k(perAgent)} places/s/agent → ${k(perAgent * args.agents)} places/s across ${args.agents} agents; max_open_orders ${setup.risk.max_open_orders}/agent`);
      const p = await probe(urls.server, keys[0]);
      sizes = { place: p.place, cancel: p.cancel };
      log(`frames: place ${Buffer.byteLength(`{"id":1,"method":"order.place","params":{"symbol":"${SYMBOL}","side":"buy","type":"limit","quantity":"${QTY}","price":"${PRICE}"}}`)} B → ack ${p.place} B; cancel ~99 B → ack ${p.cancel} B`);
      log(`mix: 100 % limit buys ${QTY} ${SYMBOL} @ ${PRICE} (market ~104000: they rest, never fill), each cancelled once acknowledged`);
    }
    if (wantEcho) {
      echo = startProc([ECHO_ENTRY], { ...env, PORT: '0', PLACE_BYTES: String(sizes.place), CANCEL_BYTES: String(sizes.cancel) });
      const until = Date.now() + 10_000;
      let port = 0;
      while (!port) {
        const line = echo.stdout.find((l) => l.includes('echo.listening'));
        if (line) port = JSON.parse(line).port;
        else if (Date.now() > until || echo.child.exitCode !== null) throw new Error(`echo server did not start: ${echo.stderr()}`);
        else await sleep(20);
      }
      urls.echo = `ws://127.0.0.1:${port}/ws/v1`;
    }
    if (!wantServer) urls.server = '';

    clients = new Clients(args.clientWorkers);
    await clients.connect(urls, keys);
    log(`clients: ${args.clientWorkers} worker thread(s), ${keys.length} sockets per target`);

    const targets: Target[] = [...(wantEcho ? ['echo' as const] : []), ...(wantServer ? ['server' as const] : [])];
    const specs: Array<PhaseSpec & { total_rate: number | null }> = [];
    const base = { window: args.window, rate: 0, warmup_ms: args.warmupSeconds * 1000, grace_ms: 5000, open_max: Math.min(args.openMax, 195), total_rate: null };
    if (args.phases.has('saturation')) specs.push({ ...base, name: 'saturation', mode: 'closed', duration_ms: args.satSeconds * 1000 });
    if (args.phases.has('rates')) {
      for (const r of args.rates) specs.push({ ...base, name: `${k(r)}/s`, mode: 'open', rate: r, total_rate: r, warmup_ms: Math.min(base.warmup_ms, 500), duration_ms: args.rateSeconds * 1000 });
    }

    const rows: Merged[] = [];
    let profileWindow: { from_ms: number; to_ms: number } | null = null;
    for (const spec of specs) {
      for (const target of targets) {
        const pid = target === 'server' ? server!.child.pid : echo!.child.pid;
        const startAt = Date.now() + 200;
        const measureFrom = startAt + spec.warmup_ms;
        // Sample CPU over the measured window (from the end of warm-up to the end of the window).
        const sampleAt = (at: number) => sleep(Math.max(0, at - Date.now())).then(() => ({ srv: procTicks(pid), sched: schedstat(pid), me: process.cpuUsage(), sys: systemTicks(), t: Date.now() }));
        const samples = Promise.all([sampleAt(measureFrom), sampleAt(measureFrom + spec.duration_ms)]);
        // The journal's own counters (GET /health) over the same window: commits/s and events per commit.
        const journalAt = (at: number) => (target === 'server' ? sleep(Math.max(0, at - Date.now())).then(() => journalStats(httpBase)) : Promise.resolve(null));
        const journal = Promise.all([journalAt(measureFrom), journalAt(measureFrom + spec.duration_ms)]);
        const results = await clients.phase(target, spec, startAt);
        const [c0, c1] = await samples;
        const [j0, j1] = await journal;
        const wall = (c1.t - c0.t) / 1000;
        const srvPct = ((c1.srv - c0.srv) / CLK_TCK / wall) * 100;
        const me = process.cpuUsage(c0.me);
        const clientPct = ((me.user + me.system) / 1e6 / wall) * 100;
        const sysBusy = c1.sys.total > c0.sys.total ? ((c1.sys.busy - c0.sys.busy) / (c1.sys.total - c0.sys.total)) * 100 * cpus().length : 0;
        const m: Merged = {
          ...merge(target, spec, results),
          cpu: {
            server_pct: srvPct, client_pct: clientPct, others_pct: Math.max(0, sysBusy - srvPct - clientPct),
            main_run_pct: ((c1.sched.run - c0.sched.run) / 1e6 / (wall * 1000)) * 100,
            main_wait_pct: ((c1.sched.wait - c0.sched.wait) / 1e6 / (wall * 1000)) * 100,
          },
          wall: { start: measureFrom, end: measureFrom + spec.duration_ms },
          journal: j0 && j1 ? { commits_per_s: (j1.commits - j0.commits) / wall, events_per_commit: (j1.events - j0.events) / Math.max(1, j1.commits - j0.commits) } : null,
        };
        rows.push(m);
        if (args.profile && target === 'server' && server) log(`    (profile window of this phase: --from=${measureFrom - server.spawned_at} --to=${measureFrom + spec.duration_ms - server.spawned_at})`);
        if (target === 'server' && spec.name === 'saturation' && server) profileWindow = { from_ms: measureFrom - server.spawned_at, to_ms: measureFrom + spec.duration_ms - server.spawned_at };
        const errs = Object.entries(m.errors).map(([c, n]) => `${c}×${n}`).join(' ');
        log(`  ${padR(target, 6)} ${padR(spec.name, 10)} ${k(m.requests_per_s)} req/s (${k(m.places_per_s)} places/s)  p50 ${lb(m, m.p50)} p99 ${lb(m, m.p99)} p99.9 ${lb(m, m.p999)} max ${lb(m, m.max)} ms  cpu srv ${m.cpu.server_pct.toFixed(0)}% (main thread run ${m.cpu.main_run_pct.toFixed(0)}% / waiting for a CPU ${m.cpu.main_wait_pct.toFixed(0)}%) cli ${m.cpu.client_pct.toFixed(0)}% other ${m.cpu.others_pct.toFixed(0)}%${errs ? '  errors ' + errs : ''}${m.late ? `  late ${m.late}` : ''}${m.journal ? `  journal ${m.journal.commits_per_s.toFixed(0)} commits/s × ${m.journal.events_per_commit.toFixed(1)} events` : ''}`);
        await sleep(500);
      }
    }

    // ---- report
    log('');
    log('Latency (ms; p50..max = ack time − intended send time, so waits caused by the server count; svc = ack − actual send;');
    log('lag99 = p99 of actual − intended send, i.e. the client\'s own timer lag plus waits for the open-order cap; cpu in % of one core)');
    const head = `${padR('target', 7)}${padR('phase', 11)}${padL('offered', 9)}${padL('req/s', 9)}${padL('places/s', 10)}${padL('done%', 7)}${padL('p50', 8)}${padL('p99', 8)}${padL('p99.9', 8)}${padL('max', 8)}${padL('svc50', 8)}${padL('svc99', 8)}${padL('lag99', 7)}${padL('srv%', 6)}${padL('run%', 6)}${padL('wait%', 6)}${padL('cli%', 6)}${padL('oth%', 6)}  errors`;
    log(head);
    log('-'.repeat(head.length));
    for (const r of rows) {
      const errs = Object.entries(r.errors).map(([c, n]) => `${c}×${n}`).join(' ');
      log(`${padR(r.target, 7)}${padR(r.name, 11)}${padL(r.offered_rps ? k(r.offered_rps) : 'closed', 9)}${padL(k(r.requests_per_s), 9)}${padL(k(r.places_per_s), 10)}${padL(r.completed_pct.toFixed(1), 7)}${padL(lb(r, r.p50), 8)}${padL(lb(r, r.p99), 8)}${padL(lb(r, r.p999), 8)}${padL(lb(r, r.max), 8)}${padL(f1(r.svc_p50), 8)}${padL(f1(r.svc_p99), 8)}${padL(f1(r.lag_p99), 7)}${padL(r.cpu.server_pct.toFixed(0), 6)}${padL(r.cpu.main_run_pct.toFixed(0), 6)}${padL(r.cpu.main_wait_pct.toFixed(0), 6)}${padL(r.cpu.client_pct.toFixed(0), 6)}${padL(r.cpu.others_pct.toFixed(0), 6)}  ${errs}${r.late ? ` late×${r.late} (at their lower bound)` : ''}`);
    }
    log('srv% = server (or echo) process CPU; run% / wait% = its main thread on a CPU / runnable but waiting for a CPU (schedstat); cli% = this bench process; oth% = everything else on the machine');
    const satRows = rows.filter((r) => r.mode === 'closed');
    if (satRows.length) {
      log('');
      log('Saturation (closed loop) cost per request:');
      const h2 = `${padR('target', 7)}${padL('req/s', 9)}${padL('places/s', 10)}${padL('srv µs CPU/req', 16)}${padL('cli µs CPU/req', 16)}${padL('req/s per core-s of main thread', 33)}  journal`;
      log(h2);
      log('-'.repeat(h2.length + 30));
      for (const r of satRows) {
        const srvUs = (r.cpu.server_pct / 100 / Math.max(1e-9, r.requests_per_s)) * 1e6;
        const cliUs = (r.cpu.client_pct / 100 / Math.max(1e-9, r.requests_per_s)) * 1e6;
        const perCore = r.requests_per_s / Math.max(1e-9, r.cpu.main_run_pct / 100);
        log(`${padR(r.target, 7)}${padL(k(r.requests_per_s), 9)}${padL(k(r.places_per_s), 10)}${padL(srvUs.toFixed(1), 16)}${padL(cliUs.toFixed(1), 16)}${padL(k(perCore), 33)}  ${r.journal ? `${r.journal.commits_per_s.toFixed(1)} commits/s × ${r.journal.events_per_commit.toFixed(0)} events/commit` : ''}`);
      }
      log('(req/s per core-s of main thread = throughput ÷ share of wall time the main thread was on a CPU: what one uncontended core would give if the main thread is the limit)');
    }
    const sat = (t: Target) => rows.find((r) => r.target === t && r.name === 'saturation');
    const srvSat = sat('server');
    const echoSat = sat('echo');
    const ratio = srvSat && echoSat ? srvSat.requests_per_s / echoSat.requests_per_s : null;
    log('');
    if (srvSat) log(`server saturation: ${k(srvSat.requests_per_s)} requests/s = ${k(srvSat.places_per_s)} places/s + ${k(srvSat.requests_per_s - srvSat.places_per_s)} cancels/s (window ${args.window}/socket × ${keys.length} sockets)`);
    if (echoSat) log(`echo ceiling:      ${k(echoSat.requests_per_s)} requests/s (same client, same frames, answers of the same size)`);
    if (ratio !== null) log(`orders/s as fraction of echo ceiling: ${(ratio * 100).toFixed(1)} %`);
    const at10k = rows.find((r) => r.target === 'server' && r.offered_rps === 10_000);
    if (srvSat) log(`targets: ≥ 50,000 orders/s durable → ${srvSat.requests_per_s >= 50_000 ? 'MET' : 'NOT MET'} (requests/s) / ${srvSat.places_per_s >= 50_000 ? 'MET' : 'NOT MET'} (places/s)`);
    if (at10k) log(`         p99 ≤ 2 ms at 10,000 orders/s → ${at10k.p99 <= 2 && at10k.completed_pct >= 99.9 ? 'MET' : 'NOT MET'} (p99 ${f1(at10k.p99)} ms, ${at10k.completed_pct.toFixed(1)} % done)`);

    await clients.close();
    clients = null;
    let profile: ProfileSummary | null = null;
    if (echo) await stopProc(echo);
    if (server) {
      await stopProc(server);
      const code = server.child.exitCode;
      if (code !== 0) log(`server exited with ${code}; stderr tail:\n${server.stderr().slice(-2000)}`);
      const warnLines = server.stdout.filter((l) => /"level":"(warn|error)"/.test(l));
      if (warnLines.length) log(`server logged ${warnLines.length} warn/error lines; last: ${warnLines.at(-1)}`);
    }
    if (args.profile && existsSync(profDir)) {
      const file = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(profDir, f))[0];
      if (file) {
        const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
        profile = summarise(prof, { ...(profileWindow ?? {}), top: 15 });
        log('');
        log(`CPU profile of the server (${file}${profileWindow ? `, saturation window ${(profileWindow.from_ms / 1000).toFixed(1)}–${(profileWindow.to_ms / 1000).toFixed(1)} s after spawn` : ''})`);
        log(formatSummary(profile));
      } else log('no .cpuprofile was written');
    }
    const round = (n: number) => (Number.isFinite(n) ? Math.round(n * 1000) / 1000 : null);
    const summary = {
      bench: 'ws-orders', commit: dirty ? `${commit}+dirty` : commit, cpus: cpus().length, storage: dbUrl ? 'postgres' : 'pglite', agents: keys.length, window: args.window, client_workers: args.clientWorkers,
      server_requests_per_s: srvSat ? Math.round(srvSat.requests_per_s) : null,
      server_places_per_s: srvSat ? Math.round(srvSat.places_per_s) : null,
      server_cpu_us_per_request: srvSat ? round((srvSat.cpu.server_pct / 100 / Math.max(1e-9, srvSat.requests_per_s)) * 1e6) : null,
      server_requests_per_main_thread_core_s: srvSat ? Math.round(srvSat.requests_per_s / Math.max(1e-9, srvSat.cpu.main_run_pct / 100)) : null,
      server_main_thread_waiting_for_cpu_pct: srvSat ? round(srvSat.cpu.main_wait_pct) : null,
      echo_requests_per_s: echoSat ? Math.round(echoSat.requests_per_s) : null,
      fraction_of_echo: ratio === null ? null : round(ratio),
      latency_ms: Object.fromEntries(
        rows.filter((r) => r.mode === 'open').map((r) => [`${r.target}@${r.offered_rps}`, {
          throughput_rps: Math.round(r.requests_per_s), p50: round(r.p50), p99: round(r.p99), p999: round(r.p999), max: round(r.max),
          p99_is_lower_bound: r.p99 >= r.late_min, done_pct: round(r.completed_pct), errors: Object.values(r.errors).reduce((a, b) => a + b, 0),
        }]),
      ),
      profile_top: profile?.top_self.slice(0, 5).map((f) => ({ fn: f.name, where: f.where, pct: round(f.self_pct) })) ?? undefined,
    };
    log('');
    log(JSON.stringify(summary));
  } finally {
    await cleanup();
    if (args.keep || args.profile) process.stderr.write(`kept ${dataDir}\n`);
    else rmSync(dataDir, { recursive: true, force: true });
  }
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'client') {
  void clientWorker();
} else if (isMainThread) {
  main().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
