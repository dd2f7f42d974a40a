import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig, type Config } from '../../engine/config.js';
import { createLogger } from '../../engine/log.js';
import { createEngine, type Engine } from '../../engine/system.js';
import { createMemoryBus, createRedisBus, type Bus } from '../../engine/bus.js';
import { openEmbedded, openPostgres, type Db } from '../../engine/store/db.js';
import { startServer, type Server } from '../../gateway/server.js';

/**
 * Storage backends a test runs against: always the embedded database with the in-process bus; also real
 * PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set (CI sets both). An unreachable service then
 * fails the test; it never skips.
 */
export interface Backend {
  name: 'embedded' | 'postgres';
  db(): Promise<{ db: Db; drop: () => Promise<void> }>;
  bus(): Promise<Bus>;
}

export function backends(): Backend[] {
  const list: Backend[] = [
    { name: 'embedded', db: async () => ({ db: await openEmbedded(null), drop: async () => {} }), bus: async () => createMemoryBus() },
  ];
  const url = process.env.DATABASE_URL;
  if (url) {
    const redisUrl = process.env.REDIS_URL;
    list.push({
      name: 'postgres',
      async db() {
        const schema = `t_${randomBytes(6).toString('hex')}`;
        const db = await openPostgres(url, { schema, poolSize: 4 });
        return {
          db,
          drop: async () => {
            const c = new pg.Client({ connectionString: url });
            await c.connect();
            await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
            await c.end();
          },
        };
      },
      bus: async () => (redisUrl ? createRedisBus(redisUrl, `t_${randomBytes(6).toString('hex')}:`) : createMemoryBus()),
    });
  }
  return list;
}

export interface TestServer {
  url: string;
  engine: Engine;
  server: Server;
  /** JSON request helper: returns status, parsed body (or text) and headers. */
  call(method: string, path: string, opts?: { body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
}

export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({}),
    port: 0,
    dataDir: mkdtempSync(join(tmpdir(), 'ae-test-')),
    logLevel: 'silent',
    jwtSecret: randomBytes(32).toString('hex'),
    serverKey: randomBytes(32).toString('hex'),
    kdfCost: 1024,
    // Tests never touch the network: prices come only from what a test ingests.
    feed: 'none',
    // Suites register many accounts from one address; the rate-limit test sets its own limits.
    rate: { ...loadConfig({}).rate, auth_per_ip_per_minute: 0 },
    ...overrides,
  };
}

export async function startTestServer(backend: Backend, overrides: Partial<Config> = {}): Promise<TestServer> {
  const config = testConfig(overrides);
  const { db, drop } = await backend.db();
  const bus = await backend.bus();
  const engine = await createEngine(config, createLogger('silent'), { db, bus });
  const server = await startServer(engine, { port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    url,
    engine,
    server,
    call: httpCaller(url),
    async stop() {
      await server.close();
      await engine.close();
      await drop();
      rmSync(config.dataDir, { recursive: true, force: true });
    },
  };
}

/** The JSON request helper of a TestServer, for a server at `base`: status, parsed body (or text) and headers. */
export function httpCaller(base: string): TestServer['call'] {
  return async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const res = await fetch(base + path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').startsWith('application/json') && text) parsed = JSON.parse(text);
    return { status: res.status, body: parsed, headers: res.headers };
  };
}

/** Registers an account and logs in: its keys, JWT, default agent and auth headers. */
export async function registerAndLogin(s: TestServer, body: Record<string, unknown> = {}) {
  const reg = await s.call('POST', '/api/v1/auth/register', { body: { display_name: 'Tester', ...body } });
  if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${JSON.stringify(reg.body)}`);
  const login = await s.call('POST', '/api/v1/auth/login', { body: { api_key: reg.body.api_key, api_secret: reg.body.api_secret } });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${JSON.stringify(login.body)}`);
  const token: string = login.body.token;
  return {
    reg: reg.body,
    token,
    jwt: { authorization: `Bearer ${token}` },
    agentKey: { 'x-api-key': reg.body.agent_api_key as string },
    accountKey: { 'x-api-key': reg.body.api_key as string },
  };
}
