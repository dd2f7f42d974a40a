import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { backends } from '../helpers/server.js';
import { ENTRY, ensureBuilt, freePort, ROOT } from '../helpers/gateway-process.js';

interface LogLine {
  time: string;
  level: string;
  event: string;
  [k: string]: unknown;
}

interface Proc {
  child: ChildProcess;
  port: number;
  url: string;
  /** Raw stdout lines so far. */
  lines: string[];
  stderr: () => string;
  /** Every stdout line parsed; throws naming the first line that is not a JSON log entry. */
  logs(): LogLine[];
  waitForEvent(event: string, ms?: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startGateway(env: Record<string, string>, port: number): Proc {
  const child = spawn(process.execPath, [ENTRY], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const l of listeners) l();
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => (stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => {
      if (partial) lines.push(partial);
      partial = '';
      for (const l of listeners) l();
      r({ code, signal });
    }),
  );
  let done = false;
  void exited.then(() => (done = true));
  const parse = (line: string): LogLine | null => {
    try {
      return JSON.parse(line) as LogLine;
    } catch {
      return null;
    }
  };
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    lines,
    stderr: () => stderr,
    exited,
    logs() {
      return lines.map((line, i) => {
        const entry = parse(line);
        if (!entry || typeof entry !== 'object') throw new Error(`stdout line ${i + 1} is not JSON: ${line}`);
        return entry;
      });
    },
    waitForEvent(event, ms = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.map(parse).find((e) => e?.event === event);
          if (hit) return finish(() => resolve(hit));
          if (done) finish(() => reject(new Error(`exited before "${event}"; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`)));
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`no "${event}" within ${ms} ms; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`))),
          ms,
        );
        const finish = (f: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          f();
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** Kills a gateway left running by a failed assertion (only the child this test started). */
function reap(p: Proc) {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
}

async function call(base: string, method: string, path: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/**
 * A request whose body is sent in two halves: the server has the request (and counts it in flight)
 * as soon as the headers and the first half arrive; it cannot answer before `finish()` sends the rest.
 */
function slowRequest(port: number, path: string, body: unknown) {
  const bytes = Buffer.from(JSON.stringify(body));
  const cut = Math.floor(bytes.length / 2);
  let finish!: () => void;
  const response = new Promise<{ status: number; headers: Record<string, unknown>; text: string }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1', port, method: 'POST', path, agent: false,
        headers: { 'content-type': 'application/json', 'content-length': bytes.length },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.flushHeaders();
    req.write(bytes.subarray(0, cut));
    finish = () => req.end(bytes.subarray(cut));
  });
  return { response, finish: () => finish() };
}

/** Polls /health until the gateway answers (used when info logs, and so "server.listening", are off). */
async function waitForHealth(base: string, ms = 30_000) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(base + '/health');
      await r.arrayBuffer();
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
      await sleep(100);
    }
  }
}

function checkLogShape(t: Tap, p: Proc) {
  const logs = p.logs();
  t.ok(logs.length > 0, 'something was logged');
  for (const [i, e] of logs.entries()) {
    if (typeof e.time !== 'string' || Number.isNaN(Date.parse(e.time)) || typeof e.level !== 'string' || typeof e.event !== 'string') {
      t.fail(`line ${i + 1} lacks time/level/event: ${p.lines[i]}`);
      return logs;
    }
  }
  t.pass(`all ${logs.length} stdout lines are JSON with time, level and event`);
  return logs;
}
/** The type of a subtest's `t`. */
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

ensureBuilt((msg) => t.comment(msg));

for (const backend of backends()) {
  t.test(`graceful shutdown on ${backend.name}`, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ae-shutdown-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    const baseEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !['DATABASE_URL', 'REDIS_URL', 'JWT_SECRET', 'SERVER_KEY', 'PORT', 'HOST', 'DATA_DIR', 'LOG_LEVEL', 'KDF_COST'].includes(k)) baseEnv[k] = v;
    }
    Object.assign(baseEnv, { HOST: '127.0.0.1', DATA_DIR: dataDir, KDF_COST: '1024', FEED: 'none' });

    if (backend.name === 'postgres') {
      // The gateway's own schema, so this test's tables never mix with another run's.
      const url = process.env.DATABASE_URL!;
      const schema = `t_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
      await admin.connect();
      await admin.query(`CREATE SCHEMA ${schema}`);
      await admin.end();
      t.teardown(async () => {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await c.end();
      });
      baseEnv.DATABASE_URL = `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      if (process.env.REDIS_URL) baseEnv.REDIS_URL = process.env.REDIS_URL;
    }

    const accounts: Array<{ api_key: string; api_secret: string; agent_api_key: string; email: string; account_id: string }> = [];

    t.test('SIGTERM lets every in-flight request finish, flushes, logs and exits 0', async (t) => {
      const port = await freePort();
      const gw = startGateway({ ...baseEnv, PORT: String(port), LOG_LEVEL: 'info' }, port);
      t.teardown(() => reap(gw));
      const ready = await gw.waitForEvent('storage.ready');
      const redis = backend.name === 'postgres' && !!process.env.REDIS_URL;
      t.match(ready, { db: backend.name, bus: redis ? 'redis' : 'memory' }, `runs on ${backend.name}`);
      const listening = await gw.waitForEvent('server.listening');
      t.equal(listening.port, port);
      t.equal(listening.level, 'info');

      const n = 10;
      const inflight = Array.from({ length: n }, (_, i) =>
        slowRequest(port, '/api/v1/auth/register', {
          display_name: `Inflight ${i}`, email: `inflight${i}@example.com`, password: `password-${i}`, starting_balance: '2500',
        }),
      );
      // A complete request answered after the slow ones were sent means the server has read their headers.
      t.equal((await fetch(gw.url + '/health')).status, 200);
      await sleep(200);

      gw.child.kill('SIGTERM');
      await gw.waitForEvent('shutdown.begin', 10_000);
      await sleep(100);
      for (const r of inflight) r.finish();
      const responses = await Promise.all(inflight.map((r) => r.response));

      for (const [i, r] of responses.entries()) {
        t.equal(r.status, 201, `request ${i}: 201`);
        t.equal(Buffer.byteLength(r.text), Number(r.headers['content-length']), `request ${i}: whole body`);
        const body = JSON.parse(r.text);
        t.match(body, { api_key: /^ak_live_/, api_secret: /^sk_live_/, agent_api_key: /^ak_live_/, display_name: `Inflight ${i}`, starting_balance: '2500.00000000' });
        accounts.push({ ...body, email: `inflight${i}@example.com` });
      }

      const exit = await gw.exited;
      t.same(exit, { code: 0, signal: null }, 'exit code 0');
      const logs = checkLogShape(t, gw);
      const events = logs.map((e) => e.event);
      const begin = events.indexOf('shutdown.begin');
      const closed = events.indexOf('server.closed');
      const done = events.indexOf('shutdown.done');
      t.ok(begin >= 0, 'shutdown.begin logged');
      t.ok(done >= 0, 'shutdown.done logged');
      t.ok(begin < closed && closed < done, 'begin, server closed, done: in that order');
      t.equal(logs[begin].signal, 'SIGTERM');
      t.equal(done, events.length - 1, 'nothing logged after shutdown.done');
      t.notOk(events.includes('shutdown.failed'));
      t.notOk(logs.some((e) => e.level === 'error'), 'no error lines');
      t.notOk(gw.stderr().includes('startup.failed'), 'no startup failure on stderr');
    });

    t.test('a new connection after SIGTERM is not served', async (t) => {
      const port = await freePort();
      const gw = startGateway({ ...baseEnv, PORT: String(port), LOG_LEVEL: 'info' }, port);
      t.teardown(() => reap(gw));
      await gw.waitForEvent('server.listening');
      const slow = slowRequest(port, '/api/v1/auth/register', { display_name: 'keeps the server busy' });
      await fetch(gw.url + '/health');
      await sleep(100);
      gw.child.kill('SIGTERM');
      await gw.waitForEvent('shutdown.begin', 10_000);
      await sleep(100);
      const late = await fetch(gw.url + '/health').then((r) => r.status, (err: Error) => err);
      t.ok(late instanceof Error || late === 503, `late request refused (${late instanceof Error ? late.message : late})`);
      slow.finish();
      t.equal((await slow.response).status, 201);
      t.same(await gw.exited, { code: 0, signal: null });
    });

    t.test('a second server on the same data dir still has the accounts', async (t) => {
      t.equal(accounts.length, 10, 'accounts from the first server');
      const port = await freePort();
      const gw = startGateway({ ...baseEnv, PORT: String(port), LOG_LEVEL: 'info' }, port);
      t.teardown(() => reap(gw));
      const ready = await gw.waitForEvent('storage.ready');
      t.same(ready.migrations_applied, [], 'nothing left to migrate on restart');
      await gw.waitForEvent('server.listening');

      const login = await call(gw.url, 'POST', '/api/v1/auth/login', { api_key: accounts[3].api_key, api_secret: accounts[3].api_secret });
      t.equal(login.status, 200, 'login with an account registered during shutdown');
      t.type(login.body.token, 'string');
      const byPassword = await call(gw.url, 'POST', '/api/v1/auth/user-login', { email: accounts[7].email, password: 'password-7' });
      t.equal(byPassword.status, 200, 'user-login by email and password');
      for (const [i, a] of accounts.entries()) {
        const res = await fetch(gw.url + '/api/v1/account/info', { headers: { 'x-api-key': a.agent_api_key } });
        const info = await res.json();
        t.equal(res.status, 200, `agent key ${i} still works`);
        t.equal(info.account_id, a.account_id);
      }
      gw.child.kill('SIGTERM');
      t.same(await gw.exited, { code: 0, signal: null });
      checkLogShape(t, gw);
    });

    t.test('with LOG_LEVEL=warn no info lines appear', async (t) => {
      const port = await freePort();
      const gw = startGateway({ ...baseEnv, PORT: String(port), LOG_LEVEL: 'warn' }, port);
      t.teardown(() => reap(gw));
      await waitForHealth(gw.url);
      t.equal((await call(gw.url, 'POST', '/api/v1/auth/register', { display_name: 'Quiet' })).status, 201);
      t.equal((await call(gw.url, 'GET', '/api/v1/nothing-here')).status, 404);
      gw.child.kill('SIGTERM');
      t.same(await gw.exited, { code: 0, signal: null });
      const logs = gw.logs();
      t.same(logs.filter((e) => e.level === 'info' || e.level === 'debug'), [], 'no info or debug lines');
      t.notOk(gw.lines.some((l) => l.includes('server.listening') || l.includes('shutdown.done')));
    });
  });
}
