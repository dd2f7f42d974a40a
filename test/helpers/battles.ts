import { loadCandleCsv } from '../../engine/market/csv.js';
import { upsertCandles } from '../../engine/store/candles-repo.js';
import { fmt, money } from '../../engine/core/money.js';
import type { Queryable } from '../../engine/store/db.js';
import { dataFile } from './candles.js';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Config } from '../../engine/config.js';
import { createLogger } from '../../engine/log.js';
import { createEngine } from '../../engine/system.js';
import { openEmbedded, openPostgres } from '../../engine/store/db.js';
import { startServer } from '../../gateway/server.js';
import { httpCaller, testConfig, type Backend, type TestServer } from './server.js';

/**
 * Candles for the seed's "Historical Battle Full Workflow" (BTCUSDT and ETHUSDT, 1-minute, 2025-01-15).
 * The shared data folder has no January 2025 minutes, so real Binance.US minutes of 2023-03-01/02 are re-dated
 * to 2025-01-14/15 (the 14th is the warm-up day) and scaled to January 2025's price level: BTCUSDT from
 * BTCUSDT × 4 (≈ 94 000, so the seed's Python branch `btc < 42000` stays false as it would have), ETHUSDT from
 * BTCUSDC × 0.14 (≈ 3 300). Shapes, gaps and volumes are the real ones; a scale keeps every relative move.
 * Rows whose volume is written in exponent form (a few zero-volume minutes) are skipped, as the importer's
 * "collect" mode does.
 */
export const SEED_BODY = {
  name: 'January 2025 Challenge',
  battle_mode: 'historical',
  starting_balance: '10000.00',
  backtest_config: { start_time: '2025-01-15T00:00:00Z', end_time: '2025-01-16T00:00:00Z', candle_interval: '1m', pairs: ['BTCUSDT', 'ETHUSDT'] },
};

const SHIFT_MS = Date.parse('2025-01-14T00:00:00Z') - Date.parse('2023-03-01T00:00:00Z');

async function importScaled(db: Queryable, rel: string, symbol: string, factor: string): Promise<number> {
  const lo = Date.parse('2023-03-01T00:00:00Z');
  const hi = Date.parse('2023-03-03T00:00:00Z');
  const k = money(factor);
  const scale = (p: string) => fmt(money(p).times(k));
  const rows = loadCandleCsv(dataFile(rel), { bad_rows: 'collect' }).candles
    .filter((c) => c.time >= lo && c.time < hi)
    .map((c) => ({ ...c, time: c.time + SHIFT_MS, open: scale(c.open), high: scale(c.high), low: scale(c.low), close: scale(c.close) }));
  await upsertCandles(db, symbol, '1m', rows);
  return rows.length;
}

export async function loadSeedDay(db: Queryable): Promise<void> {
  await importScaled(db, 'binance-us/BTCUSDT_1m_20230301_20230321.csv', 'BTCUSDT', '4');
  await importScaled(db, 'binance-us/BTCUSDC_1m_20230301_20230321.csv', 'ETHUSDT', '0.14');
}

export const B = '/api/v1/battles';

/** JSON calls that must succeed (any 2xx), with the caller's headers. */
export function caller(s: TestServer, headers: Record<string, string>) {
  const call = (method: string, path: string, body?: unknown) => s.call(method, path, { headers, body });
  const ok = async (method: string, path: string, body?: unknown) => {
    const r = await call(method, path, body);
    if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  return { call, ok };
}

/**
 * A server whose engine can be restarted on the same database (embedded: a data folder; PostgreSQL: the same
 * schema), as a process restart would: `restart()` closes the server and the engine, then starts both again.
 */
export async function restartableServer(backend: Backend, overrides: Partial<Config> = {}): Promise<{ s: () => TestServer; restart: () => Promise<TestServer>; stop: () => Promise<void> }> {
  const config = testConfig(overrides);
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const url = process.env.DATABASE_URL;
  const openDb = () => (backend.name === 'postgres' ? openPostgres(url!, { schema, poolSize: 4 }) : openEmbedded(join(config.dataDir, 'pg')));
  let current: TestServer;
  const boot = async (): Promise<TestServer> => {
    const engine = await createEngine(config, createLogger('silent'), { db: await openDb(), bus: await backend.bus() });
    const server = await startServer(engine, { port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${server.port}`;
    return {
      url: base, engine, server,
      call: httpCaller(base),
      async stop() {
        await server.close();
        await engine.close();
      },
    };
  };
  current = await boot();
  return {
    s: () => current,
    async restart() {
      await current.stop();
      current = await boot();
      return current;
    },
    async stop() {
      await current.stop();
      if (backend.name === 'postgres') {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await c.end();
      }
      rmSync(config.dataDir, { recursive: true, force: true });
    },
  };
}
