import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from './config.js';
import { openEmbedded, openPostgres, type Db } from './store/db.js';
import { migrate } from './store/migrations.js';
import { candleProblem, loadCandleCsv, symbolFromFile, type CsvCandle } from './market/csv.js';
import { deriveIntervals, intervalMs, intervalName, upsertCandles, type UpsertResult } from './store/candles-repo.js';
import { fetchBinancePairs } from './market/pairs.js';
import { loadPairs, upsertPairs } from './market/pairs-repo.js';

/**
 * Historical data from the command line, on the database the server uses (DATABASE_URL, else the embedded one
 * in DATA_DIR/pg; stop a server that uses the same embedded database first). Exit codes: 0 done, 1 a file,
 * the network or the database failed, 2 bad arguments.
 */

const USAGE = `usage: node dist/engine/cli.js <command>
  import <files or dirs...> [--symbol S] [--interval 1m] [--json]
      Reads candle CSVs (timestamp|open_time,open,high,low,close,volume, or Binance archives in ms or µs),
      upserts them and derives 5m/15m/1h/4h/1d. Symbol from the file name, interval from the row spacing.
  download --symbol BTCUSDT [--interval 1m] --start 2024-01-01 [--end 2024-01-31] [--base-url URL] [--json]
      Pages Binance's /api/v3/klines (1000 per request) into the database. A date-only --end is inclusive.
  refresh-pairs [--base-url URL]
      Upserts USDT pairs that are TRADING on Binance (/api/v3/exchangeInfo) into trading_pairs.`;

const BINANCE_URL = 'https://api.binance.com';
const KLINES_PAGE_ROWS = 1000;
const HTTP_TIMEOUT_MS = 15_000;
const HTTP_RETRIES_MAX = 3;
const DETAILS_PER_FILE_MAX = 10;
const BINANCE_INTERVALS = ['1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w'];
const FINER_INTERVALS = ['1m', '5m', '15m', '1h'];
const SYMBOL = /^[A-Z0-9]{2,30}$/;

class UsageError extends Error {}

interface Io {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream & { isTTY?: boolean };
}

interface Report {
  file: string;
  symbol: string;
  interval: string;
  rows: number;
  result: UpsertResult;
  gaps: Array<{ after: number; missing: number }>;
  bad_rows: Array<{ line: number; text: string; reason: string }>;
  derived: Record<string, UpsertResult>;
  seconds: number;
  error?: string;
}

const iso = (ms: number) => new Date(ms).toISOString();
const fail = (msg: string): never => {
  throw new UsageError(msg);
};

async function openDb(): Promise<Db> {
  const config = loadConfig(process.env);
  const db = config.databaseUrl ? await openPostgres(config.databaseUrl) : await openEmbedded(join(config.dataDir, 'pg'));
  await migrate(db);
  return db;
}

/** A progress bar on a terminal, else nothing (the caller prints one line per file). */
function progress(io: Io, label: string): (done: number, total: number) => void {
  if (!io.err.isTTY) return () => {};
  return (done, total) => {
    const f = total > 0 ? done / total : 1;
    const bar = '#'.repeat(Math.round(f * 30)).padEnd(30, '.');
    io.err.write(`\r${label} [${bar}] ${String(Math.round(f * 100)).padStart(3)}% ${done}/${total}\x1b[K`);
  };
}

/** Derives coarser intervals over [from, to] unless a finer interval of the symbol is stored (that one is the source). */
async function deriveAfter(db: Db, symbol: string, interval: string, from: number, to: number): Promise<Record<string, UpsertResult>> {
  const ms = intervalMs(interval)!;
  for (const finer of FINER_INTERVALS) {
    const f = intervalMs(finer)!;
    if (f >= ms || ms % f !== 0) continue;
    const rows = await db.query('SELECT 1 FROM candles WHERE symbol = $1 AND interval = $2 LIMIT 1', [symbol, finer]);
    if (rows.length > 0) return {};
  }
  return deriveIntervals(db, symbol, interval, { from, to });
}

/** `BTCUSDT_60m.csv`, `BTCUSDT-1m-2024-01.csv` → the interval the name announces, in ms (0 when it says none). */
const namedIntervalMs = (file: string) => intervalMs(/[_-](\d+[smhdw])(?=[_.-])/.exec(basename(file))?.[1] ?? '') ?? 0;

/**
 * CSV files under the given paths, each symbol's coarser files first: where a coarse file and candles derived from
 * a finer one disagree (an exchange's last, still-open candle), the finer data is imported last and wins.
 */
function csvFiles(paths: string[]): string[] {
  const walk = (p: string): string[] => {
    let dir = false;
    try {
      dir = statSync(p).isDirectory();
    } catch {
      // A missing path is reported by the import as a file that could not be read.
    }
    return !dir ? [p] : readdirSync(p).sort().flatMap((n) => (/\.csv$/i.test(n) || statSync(join(p, n)).isDirectory() ? walk(join(p, n)) : []));
  };
  const groups = new Map<string, string[]>();
  for (const f of paths.flatMap(walk)) groups.set(`${dirname(f)}/${symbolFromFile(f)}`, [...(groups.get(`${dirname(f)}/${symbolFromFile(f)}`) ?? []), f]);
  return [...groups.values()].flatMap((g) => g.sort((a, b) => namedIntervalMs(b) - namedIntervalMs(a)));
}

async function importFile(db: Db, io: Io, file: string, opts: { symbol?: string; interval?: string }): Promise<Report> {
  const t0 = performance.now();
  const report: Report = {
    file, symbol: opts.symbol ?? symbolFromFile(file), interval: opts.interval ?? '', rows: 0,
    result: { inserted: 0, updated: 0, unchanged: 0 }, gaps: [], bad_rows: [], derived: {}, seconds: 0,
  };
  try {
    const parsed = loadCandleCsv(file, { bad_rows: 'collect' });
    Object.assign(report, { rows: parsed.candles.length, gaps: parsed.gaps, bad_rows: parsed.bad_rows });
    report.interval = opts.interval ?? intervalName(parsed.interval_ms);
    if (!SYMBOL.test(report.symbol)) throw new Error(`"${report.symbol}" is not a symbol; name the file SYMBOL_… or pass --symbol`);
    report.result = await upsertCandles(db, report.symbol, report.interval, parsed.candles, progress(io, basename(file)));
    const c = parsed.candles;
    if (c.length > 0) report.derived = await deriveAfter(db, report.symbol, report.interval, c[0].time, c[c.length - 1].time);
  } catch (err) {
    report.error = (err as Error).message;
  }
  report.seconds = Math.round((performance.now() - t0) / 10) / 100;
  if (io.err.isTTY) io.err.write('\r\x1b[K');
  io.err.write(`${basename(file)}: ${report.error ? `FAILED: ${report.error}` : `${report.rows} rows, ${report.result.inserted} inserted, ${report.result.updated} updated, ${report.result.unchanged} unchanged, ${report.gaps.length} gaps, ${report.bad_rows.length} bad rows (${report.seconds} s)`}\n`);
  for (const b of report.bad_rows.slice(0, DETAILS_PER_FILE_MAX)) io.err.write(`  bad row, line ${b.line}: ${b.reason}\n`);
  for (const g of report.gaps.slice(0, DETAILS_PER_FILE_MAX)) io.err.write(`  gap after ${iso(g.after)}: ${g.missing} missing\n`);
  return report;
}

function table(reports: Report[]): string {
  const head = ['file', 'symbol', 'interval', 'rows', 'inserted', 'updated', 'unchanged', 'gaps', 'bad rows', 'derived'];
  const rows = reports.map((r) => [
    basename(r.file), r.symbol, r.interval, r.error ? 'FAILED' : String(r.rows), String(r.result.inserted), String(r.result.updated),
    String(r.result.unchanged), String(r.gaps.length), String(r.bad_rows.length),
    Object.entries(r.derived).map(([i, d]) => `${i}:${d.inserted + d.updated + d.unchanged}`).join(' ') || '-',
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 || i === 9 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ').trimEnd();
  return [line(head), line(width.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

async function cmdImport(io: Io, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { symbol: { type: 'string' }, interval: { type: 'string' }, json: { type: 'boolean' } } });
  if (positionals.length === 0) fail('import: give at least one CSV file or directory');
  if (values.interval !== undefined && !intervalMs(values.interval)) fail(`import: --interval "${values.interval}" is not like 1m, 15m, 1h, 1d`);
  const symbol = values.symbol?.toUpperCase();
  if (symbol !== undefined && !SYMBOL.test(symbol)) fail(`import: --symbol "${values.symbol}" is not a symbol`);
  const files = csvFiles(positionals);
  if (files.length === 0) fail('import: no .csv files found');
  const db = await openDb();
  const reports: Report[] = [];
  try {
    for (const f of files) reports.push(await importFile(db, io, f, { symbol, interval: values.interval }));
  } finally {
    await db.close();
  }
  io.out.write(values.json ? JSON.stringify({ files: reports }, null, 2) + '\n' : table(reports));
  return reports.some((r) => r.error) ? 1 : 0;
}

function parseWhen(text: string, name: string, endOfDay: boolean): number {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return Date.parse(`${text}T00:00:00Z`) + (endOfDay ? 86_400_000 - 1 : 0);
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  return Number.isFinite(ms) ? ms : fail(`download: --${name} "${text}" is not a date (2024-01-31 or ISO-8601)`);
}

/** GET with a timeout; 429/418/5xx are retried after Retry-After (or a short back-off). */
async function getJson(url: string): Promise<unknown> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(url, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS), headers: { accept: 'application/json' } });
    const retry = res.status === 429 || res.status === 418 || res.status >= 500;
    if (retry && attempt < HTTP_RETRIES_MAX) {
      const wait = Number(res.headers.get('retry-after')) || 2 ** attempt;
      await new Promise((r) => setTimeout(r, Math.min(wait, 60) * 1000));
      continue;
    }
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const b = body as { msg?: string; code?: number } | null;
      throw new Error(`HTTP ${res.status}${b?.msg ? `: ${b.msg}` : ''}${b?.code !== undefined ? ` (code ${b.code})` : ''}`);
    }
    return body;
  }
}

/** One kline: [openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, …]; null when malformed. */
function klineCandle(k: unknown): CsvCandle | null {
  if (!Array.isArray(k) || k.length < 9 || typeof k[0] !== 'number') return null;
  const c: CsvCandle = { time: k[0], open: k[1], high: k[2], low: k[3], close: k[4], volume: k[5], trade_count: Number.isInteger(k[8]) ? k[8] : 0 };
  return candleProblem(c) ? null : c;
}

async function cmdDownload(io: Io, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: {
    symbol: { type: 'string' }, interval: { type: 'string', default: '1m' }, start: { type: 'string' }, end: { type: 'string' },
    'base-url': { type: 'string', default: BINANCE_URL }, json: { type: 'boolean' },
  } });
  const symbol = (values.symbol ?? fail('download: --symbol is required')).toUpperCase();
  if (!SYMBOL.test(symbol)) fail(`download: --symbol "${values.symbol}" is not a symbol`);
  const interval = values.interval!;
  if (!BINANCE_INTERVALS.includes(interval)) fail(`download: --interval must be one of ${BINANCE_INTERVALS.join(', ')}`);
  const start = parseWhen(values.start ?? fail('download: --start is required'), 'start', false);
  const end = values.end === undefined ? Date.now() : parseWhen(values.end, 'end', true);
  if (end < start) fail('download: --end is before --start');
  const step = intervalMs(interval)!;
  const base = values['base-url']!.replace(/\/+$/, '');
  const t0 = performance.now();
  const report: Report = { file: `${base}/api/v3/klines`, symbol, interval, rows: 0, result: { inserted: 0, updated: 0, unchanged: 0 }, gaps: [], bad_rows: [], derived: {}, seconds: 0 };
  const bar = progress(io, `${symbol} ${interval}`);
  const db = await openDb();
  let first = Infinity;
  let last = -Infinity;
  try {
    for (let cursor = start, page = 0; cursor <= end; page++) {
      const url = `${base}/api/v3/klines?symbol=${symbol}&interval=${interval}&startTime=${cursor}&endTime=${end}&limit=${KLINES_PAGE_ROWS}`;
      const body = await getJson(url);
      if (!Array.isArray(body)) throw new Error('klines: the answer is not an array');
      const candles: CsvCandle[] = [];
      body.forEach((k, i) => {
        const c = klineCandle(k);
        if (c && c.time >= cursor && c.time <= end) candles.push(c);
        else if (!c) report.bad_rows.push({ line: page * KLINES_PAGE_ROWS + i + 1, text: JSON.stringify(k).slice(0, 200), reason: 'not a kline' });
      });
      if (candles.length === 0) break;
      const r = await upsertCandles(db, symbol, interval, candles);
      for (const k of ['inserted', 'updated', 'unchanged'] as const) report.result[k] += r[k];
      report.rows += candles.length;
      const next = candles[candles.length - 1].time;
      for (const c of candles) {
        if (c.time - last > step && last > -Infinity) report.gaps.push({ after: last, missing: Math.round((c.time - last) / step) - 1 });
        [first, last] = [Math.min(first, c.time), Math.max(last, c.time)];
      }
      bar(Math.min(next + step, end) - start, end - start);
      if (body.length < KLINES_PAGE_ROWS) break;
      cursor = next + step;
    }
    if (report.rows > 0) report.derived = await deriveAfter(db, symbol, interval, first, last);
  } catch (err) {
    report.error = `${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}`;
  } finally {
    await db.close();
  }
  report.seconds = Math.round((performance.now() - t0) / 10) / 100;
  if (io.err.isTTY) io.err.write('\r\x1b[K');
  if (report.error) io.err.write(`download: ${report.error}; ${report.rows} candles were stored before it (running the command again is safe)\n`);
  io.out.write(values.json ? JSON.stringify({ files: [report] }, null, 2) + '\n' : table([report]));
  return report.error ? 1 : 0;
}

async function cmdRefreshPairs(io: Io, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { 'base-url': { type: 'string', default: BINANCE_URL } } });
  const url = `${values['base-url']!.replace(/\/+$/, '')}/api/v3/exchangeInfo`;
  let pairs;
  try {
    pairs = await fetchBinancePairs(url, HTTP_TIMEOUT_MS);
    if (pairs.length === 0) throw new Error('no USDT pair with status TRADING in the answer');
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    io.err.write(`refresh-pairs: could not get ${url}: ${(err as Error).message}${cause ? ` (${cause.message})` : ''}. trading_pairs was left unchanged.\n`);
    return 1;
  }
  const db = await openDb();
  try {
    const known = new Set((await loadPairs(db)).map((p) => p.symbol));
    await db.tx((q) => upsertPairs(q, pairs));
    const added = pairs.filter((p) => !known.has(p.symbol)).length;
    io.out.write(`trading_pairs: ${pairs.length} pairs from exchangeInfo (${added} new, ${pairs.length - added} updated); a running server picks them up at its next start.\n`);
  } finally {
    await db.close();
  }
  return 0;
}

export async function main(argv: string[], io: Io = { out: process.stdout, err: process.stderr }): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'import') return await cmdImport(io, rest);
    if (command === 'download') return await cmdDownload(io, rest);
    if (command === 'refresh-pairs') return await cmdRefreshPairs(io, rest);
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
      io.out.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    }
    throw new UsageError(`unknown command "${command}"`);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err.write(`${(err as Error).message}\n\n${USAGE}\n`);
      return 2;
    }
    io.err.write(`error: ${(err as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
