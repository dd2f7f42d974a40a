import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { loadPairs } from '../../engine/market/pairs-repo.js';
import { dataRange, loadCandles } from '../../engine/store/candles-repo.js';
import { openEmbedded, openPostgres, type Db } from '../../engine/store/db.js';

/** The built CLI (`npm test` builds first; by hand: `npx tsc -p .`), run as a user would. */
const CLI = resolve('dist/engine/cli.js');
const ADA = resolve('../shared/data/bybit-linear/ADAUSDT_1m.csv');
const EXCHANGE_INFO = readFileSync(resolve('test/engine/market/fixtures/exchange-info.json'), 'utf8');
const MIN = 60_000;
const JAN1 = Date.UTC(2024, 0, 1);

// Several cold starts of the embedded database plus two imports of 43,200 rows per backend.
t.setTimeout(600_000);

interface Target {
  name: string;
  env: Record<string, string>;
  prepare(): Promise<void>;
  /** Opens the CLI's database from the test (close it before the next CLI run: PGlite is single-process). */
  open(): Promise<Db>;
  cleanup(): Promise<void>;
}

function targets(): Target[] {
  const dir = mkdtempSync(join(tmpdir(), 'ae-cli-'));
  const list: Target[] = [{
    name: 'embedded', env: { DATA_DIR: dir, DATABASE_URL: '' },
    prepare: async () => {},
    open: () => openEmbedded(join(dir, 'pg')),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  }];
  const url = process.env.DATABASE_URL;
  if (url) {
    const schema = `t_${randomBytes(6).toString('hex')}`;
    const admin = async (sql: string) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(sql);
      await c.end();
    };
    list.push({
      name: 'postgres', env: { DATA_DIR: dir, DATABASE_URL: url, PGOPTIONS: `-c search_path=${schema}` },
      // The CLI reaches the test's own schema through libpq's PGOPTIONS, which pg honours.
      prepare: () => admin(`CREATE SCHEMA ${schema}`),
      open: () => openPostgres(url, { schema, poolSize: 2 }),
      cleanup: () => admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`),
    });
  }
  return list;
}

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, LOG_LEVEL: 'silent', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', fail);
    p.on('close', (code) => done({ code, out, err }));
  });
}

/** Binance's kline row: [open time, o, h, l, c, v, close time, quote volume, trades, taker base, taker quote, ignore]. */
function kline(time: number): unknown[] {
  const i = (time - JAN1) / MIN;
  const p = (x: number) => (42_000 + (i % 100) + x).toFixed(8);
  return [time, p(0), p(5), p(-5), p(1), '1.50000000', time + MIN - 1, '63000.00000000', 10 + (i % 7), '0.70000000', '29400.00000000', '0'];
}

/** A local stand-in for api.binance.com: klines of BTCUSDT every minute, exchangeInfo from the fixture. */
async function fakeBinance(): Promise<{ url: string; klineRequests: URLSearchParams[]; server: Server }> {
  const klineRequests: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/api/v3/exchangeInfo') return send(200, JSON.parse(EXCHANGE_INFO));
    if (url.pathname !== '/api/v3/klines') return send(404, { code: -1, msg: 'Not found.' });
    klineRequests.push(url.searchParams);
    if (url.searchParams.get('symbol') !== 'BTCUSDT') return send(400, { code: -1121, msg: 'Invalid symbol.' });
    const [start, end, limit] = ['startTime', 'endTime', 'limit'].map((k) => Number(url.searchParams.get(k)));
    const rows: unknown[] = [];
    for (let time = Math.ceil(start / MIN) * MIN; time <= end && rows.length < limit; time += MIN) rows.push(kline(time));
    send(200, rows);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, klineRequests, server };
}

async function closedPort(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

t.test('the CLI was built', async (t) => {
  t.ok(existsSync(CLI), `${CLI} exists (run npx tsc -p . first)`);
});

t.test('usage errors exit 2 without touching a database', async (t) => {
  for (const args of [[], ['frobnicate'], ['import'], ['import', 'x.csv', '--interval', 'often'], ['download', '--symbol', 'BTCUSDT'], ['download', '--start', '2024-01-01']]) {
    const r = await run(args, { DATA_DIR: '/nonexistent/never-created' });
    t.equal(r.code, 2, args.join(' ') || '(none)');
    t.match(r.err + r.out, /usage: node dist\/engine\/cli\.js/);
  }
});

for (const target of targets()) {
  t.test(`CLI on ${target.name}`, async (t) => {
    await target.prepare();
    const binance = await fakeBinance();
    const work = mkdtempSync(join(tmpdir(), 'ae-cli-files-'));
    t.teardown(async () => {
      binance.server.close();
      rmSync(work, { recursive: true, force: true });
      await target.cleanup();
    });
    const withDb = async <T>(fn: (db: Db) => Promise<T>): Promise<T> => {
      const db = await target.open();
      try {
        return await fn(db);
      } finally {
        await db.close();
      }
    };

    t.test('import: the real file, a file with a bad row and a missing file; non-zero exit for the missing one', async (t) => {
      const bad = join(work, 'XRPUSDT_1m.csv');
      writeFileSync(bad, ['timestamp,open,high,low,close,volume', '2025-01-01 00:00:00+00:00,1,2,0.5,1.5,10',
        '2025-01-01 00:01:00+00:00,1,2,0.5,1.5,10', '2025-01-01 00:02:00+00:00,1,2,0.5,oops,10', '2025-01-01 00:04:00+00:00,1,2,0.5,1.5,10'].join('\n'));
      const t0 = performance.now();
      const r = await run(['import', ADA, bad, join(work, 'missing.csv'), '--json'], target.env);
      t.comment(`${target.name}: CLI import of 43,200 rows (with start-up) in ${Math.round(performance.now() - t0)} ms`);
      t.equal(r.code, 1, r.err);
      const files = JSON.parse(r.out).files;
      t.match(files[0], { symbol: 'ADAUSDT', interval: '1m', rows: 43_200, result: { inserted: 43_200, updated: 0, unchanged: 0 }, gaps: [], bad_rows: [] });
      t.same(Object.fromEntries(Object.entries(files[0].derived).map(([k, v]) => [k, (v as { inserted: number }).inserted])), { '5m': 8640, '15m': 2879, '1h': 719, '4h': 179, '1d': 29 });
      t.match(files[1], { symbol: 'XRPUSDT', interval: '1m', rows: 3, result: { inserted: 3 }, gaps: [{ after: Date.UTC(2025, 0, 1, 0, 1), missing: 2 }] });
      t.same(files[1].bad_rows, [{ line: 4, text: '2025-01-01 00:02:00+00:00,1,2,0.5,oops,10', reason: 'close "oops" is not a plain decimal' }]);
      t.match(files[2], { symbol: 'MISSING', error: /ENOENT/ });
      t.match(r.err, /^ADAUSDT_1m\.csv: 43200 rows, 43200 inserted, 0 updated, 0 unchanged, 0 gaps, 0 bad rows/m, 'one line per file when stderr is not a terminal');
      t.match(r.err, /bad row, line 4: close "oops"/);
      t.match(r.err, /gap after 2025-01-01T00:01:00.000Z: 2 missing/);
      t.match(r.err, /missing\.csv: FAILED: ENOENT/);
      t.notMatch(r.err, /\r/, 'no progress bar');
    });

    t.test('import again: nothing inserted, a summary table, exit 0', async (t) => {
      const r = await run(['import', ADA], target.env);
      t.equal(r.code, 0, r.err);
      t.match(r.out, /^file\s+symbol\s+interval\s+rows\s+inserted\s+updated\s+unchanged\s+gaps\s+bad rows\s+derived$/m);
      t.match(r.out, /^ADAUSDT_1m\.csv\s+ADAUSDT\s+1m\s+43200\s+0\s+0\s+43200\s+0\s+0\s+5m:8640 15m:2879 1h:719 4h:179 1d:29$/m);
      const range = await withDb((db) => dataRange(db));
      t.same(range.pairs.map((p) => [p.symbol, p.intervals.map((i) => `${i.interval}:${i.count}:${i.gaps}`)]), [
        ['ADAUSDT', ['1m:43200:0', '5m:8640:0', '15m:2879:0', '1h:719:0', '4h:179:0', '1d:29:0']],
        ['XRPUSDT', ['1m:3:2', '5m:1:0']],
      ]);
    });

    t.test('download: pages /api/v3/klines by 1000 and stores the real response format; again changes nothing', async (t) => {
      const args = ['download', '--symbol', 'btcusdt', '--interval', '1m', '--start', '2024-01-01', '--end', '2024-01-02', '--base-url', binance.url, '--json'];
      const r = await run(args, target.env);
      t.equal(r.code, 0, r.err);
      const end = Date.UTC(2024, 0, 3) - 1;
      t.same(binance.klineRequests.map((q) => [q.get('symbol'), q.get('interval'), Number(q.get('startTime')), Number(q.get('endTime')), q.get('limit')]), [
        ['BTCUSDT', '1m', JAN1, end, '1000'], ['BTCUSDT', '1m', JAN1 + 1000 * MIN, end, '1000'], ['BTCUSDT', '1m', JAN1 + 2000 * MIN, end, '1000'],
      ]);
      const [report] = JSON.parse(r.out).files;
      t.match(report, { symbol: 'BTCUSDT', interval: '1m', rows: 2880, result: { inserted: 2880, updated: 0, unchanged: 0 }, gaps: [], bad_rows: [] });
      t.same(Object.fromEntries(Object.entries(report.derived).map(([k, v]) => [k, (v as { inserted: number }).inserted])), { '5m': 576, '15m': 192, '1h': 48, '4h': 12, '1d': 2 });
      const [first, rows, days] = await withDb(async (db) => [
        (await loadCandles(db, 'BTCUSDT', '1m', JAN1, JAN1))[0], await loadCandles(db, 'BTCUSDT', '1m', 0, end), await loadCandles(db, 'BTCUSDT', '1d', 0, end),
      ] as const);
      t.same(first, { time: JAN1, open: '42000.00000000', high: '42005.00000000', low: '41995.00000000', close: '42001.00000000', volume: '1.50000000', trade_count: 10 });
      t.equal(rows.length, 2880);
      const trades = (day: number) => Array.from({ length: 1440 }, (_, m) => 10 + ((day * 1440 + m) % 7)).reduce((a, b) => a + b);
      t.same(days.map((d) => [d.time, d.volume, d.trade_count]), [[JAN1, '2160.00000000', trades(0)], [JAN1 + 1440 * MIN, '2160.00000000', trades(1)]]);
      binance.klineRequests.length = 0;
      const again = await run(args, target.env);
      t.equal(again.code, 0, again.err);
      t.match(JSON.parse(again.out).files[0], { rows: 2880, result: { inserted: 0, updated: 0, unchanged: 2880 } });
    });

    t.test('download: an error from Binance is shown and exits 1', async (t) => {
      const r = await run(['download', '--symbol', 'NOPEUSDT', '--start', '2024-01-01', '--end', '2024-01-01', '--base-url', binance.url], target.env);
      t.equal(r.code, 1);
      t.match(r.err, /download: HTTP 400: Invalid symbol\. \(code -1121\)/);
    });

    t.test('refresh-pairs: upserts the TRADING USDT pairs of exchangeInfo', async (t) => {
      const r = await run(['refresh-pairs', '--base-url', binance.url], target.env);
      t.equal(r.code, 0, r.err);
      t.match(r.out, /trading_pairs: 3 pairs from exchangeInfo \(3 new, 0 updated\)/);
      const pairs = await withDb((db) => loadPairs(db));
      t.same(pairs.map((p) => [p.symbol, p.min_qty, p.step_size, p.min_notional]), [
        ['ACMEUSDT', '0', '0', '0'], ['BTCUSDT', '0.00001', '0.00001', '5'], ['DOGEUSDT', '1', '1', '1'],
      ]);
    });

    t.test('refresh-pairs: a network failure says so, exits 1 and leaves trading_pairs as it was', async (t) => {
      const before = await withDb((db) => loadPairs(db));
      const r = await run(['refresh-pairs', '--base-url', await closedPort()], target.env);
      t.equal(r.code, 1);
      t.match(r.err, /refresh-pairs: could not get http:\/\/127\.0\.0\.1:\d+\/api\/v3\/exchangeInfo: .*ECONNREFUSED.*trading_pairs was left unchanged/);
      t.same(await withDb((db) => loadPairs(db)), before);
    });
  });
}
