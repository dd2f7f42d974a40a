import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { WebSocketServer, type WebSocket } from 'ws';
import { openEmbedded, openPostgres, type Db } from '../../engine/store/db.js';

/**
 * The real server as a child process (`node dist/gateway/main.js`), its storage, and a price feed the test
 * controls: a local WebSocket server speaking Binance's trade-stream format, given to the child as FEED_URL.
 */

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ENTRY = join(ROOT, 'dist/gateway/main.js');

/** `npm test` builds first (pretest); a direct `npx tap` of a file builds when dist is missing or stale. */
export function ensureBuilt(comment: (msg: string) => void): void {
  const newest = (dir: string): number => {
    let m = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      m = Math.max(m, e.isDirectory() ? newest(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
    }
    return m;
  };
  const sources = Math.max(...['engine', 'gateway', 'schemas', 'workers'].map((d) => join(ROOT, d)).filter(existsSync).map(newest));
  if (existsSync(ENTRY) && statSync(ENTRY).mtimeMs >= sources) return;
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'pipe' });
  } catch (err) {
    // tsc still emits on type errors; the spawn fails loudly if the output is unusable.
    comment(`tsc reported errors:\n${String((err as { stdout?: Buffer }).stdout ?? err)}`);
  }
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the server and resolves once /health answers. */
export async function startGateway(env: Record<string, string>, readyWithin_ms = 60_000): Promise<GatewayProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [ENTRY], { cwd: ROOT, env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  let gone = false;
  void exited.then(() => (gone = true));
  const gw = { child, url: `http://127.0.0.1:${port}`, output: () => out, exited };
  const until = Date.now() + readyWithin_ms;
  for (;;) {
    if (gone) throw new Error(`server exited during start-up:\n${out}`);
    try {
      const r = await fetch(gw.url + '/health');
      await r.arrayBuffer();
      return gw;
    } catch {
      if (Date.now() > until) {
        reap(gw);
        throw new Error(`server not answering within ${readyWithin_ms} ms:\n${out}`);
      }
      await sleep(50);
    }
  }
}

/** Kills a server left running by a failed assertion (only a child this test started). */
export function reap(p: GatewayProcess): void {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
}

export interface Storage {
  /** Environment for the server process: DATA_DIR, and DATABASE_URL (+ REDIS_URL) on postgres. */
  env: Record<string, string>;
  /** The same database, opened by the test (embedded: only while no server runs on it). */
  open(): Promise<Db>;
  drop(): Promise<void>;
}

/**
 * A fresh store for one test: a temporary data folder, and on postgres a fresh schema that the server
 * process is pointed at through the URL's `options=-c search_path=…`.
 */
export async function freshStorage(backend: 'embedded' | 'postgres'): Promise<Storage> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ae-crash-'));
  if (backend === 'embedded') {
    return { env: { DATA_DIR: dataDir }, open: () => openEmbedded(join(dataDir, 'pg')), drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const url = process.env.DATABASE_URL!;
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    DATABASE_URL: `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
  };
  if (process.env.REDIS_URL) env.REDIS_URL = process.env.REDIS_URL;
  return {
    env,
    open: () => openPostgres(url, { schema, poolSize: 2 }),
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The parent's environment without anything that would point the child elsewhere. */
export function baseEnv(): Record<string, string> {
  const drop = ['DATABASE_URL', 'REDIS_URL', 'JWT_SECRET', 'SERVER_KEY', 'PORT', 'HOST', 'DATA_DIR', 'LOG_LEVEL', 'KDF_COST', 'FEED', 'FEED_URL', 'FEED_SEED', 'FEED_FILE'];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !drop.includes(k)) env[k] = v;
  return env;
}

/** A Binance-compatible trade stream whose prices the test sets: `FEED=binance FEED_URL=<url>`. */
export class FakeBinance {
  private readonly wss: WebSocketServer;
  private seq = 0;
  /** Connections accepted so far (a restarted server connects anew). */
  connections = 0;
  readonly ready: Promise<void>;

  constructor() {
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    this.wss.on('connection', () => this.connections++);
    this.ready = new Promise((r) => this.wss.once('listening', () => r()));
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as { port: number }).port}`;
  }

  /** Resolves once more than `seen` connections have been accepted. */
  async connectionAfter(seen: number, within_ms = 10_000): Promise<void> {
    const until = Date.now() + within_ms;
    while (this.connections <= seen) {
      if (Date.now() > until) throw new Error('the server did not connect to the price stream');
      await sleep(10);
    }
  }

  tick(symbol: string, price: string, quantity = '1'): void {
    const frame = JSON.stringify({
      stream: `${symbol.toLowerCase()}@trade`,
      data: { e: 'trade', E: Date.now(), s: symbol, t: ++this.seq, p: price, q: quantity, T: Date.now(), m: false },
    });
    for (const c of this.wss.clients as Set<WebSocket>) c.send(frame);
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}
