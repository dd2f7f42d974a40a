import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Candle } from './candles.js';

/**
 * Reads historical candle CSVs in the formats users bring: `timestamp|open_time,open,high,low,close,volume`
 * with times like `2025-05-30 16:40:00+00:00`, and Binance's public archive (open time in ms or µs, 12 columns,
 * with or without a header). Gaps are reported, never filled: inventing candles would invent prices.
 */

/** A candle as a CSV row gives it: no quote volume; a trade count only when the file has one (Binance archives). */
export type CsvCandle = Omit<Candle, 'quote_volume' | 'trade_count'> & { trade_count?: number };

export interface BadRow {
  /** 1-based line number in the file (the header is line 1 when there is one). */
  line: number;
  text: string;
  reason: string;
}

export interface CandleFile {
  candles: CsvCandle[];
  /** The most common spacing between candles. */
  interval_ms: number;
  /** Where candles are missing: after which open time, and how many. */
  gaps: Array<{ after: number; missing: number }>;
  /** Rows that were skipped (only with `bad_rows: 'collect'`; the default throws on the first). */
  bad_rows: BadRow[];
}

export interface CsvOptions {
  /** 'throw' (default): a bad row fails the whole file. 'collect': bad rows are skipped and listed. */
  bad_rows?: 'throw' | 'collect';
}

const NUM = /^\d+(\.\d+)?$/;
const TIME_COLUMNS = ['timestamp', 'open_time', 'time', 'date', 'datetime'];
const COUNT_COLUMNS = ['count', 'trades', 'trade_count', 'number_of_trades'];
/** Binance archive column of the trade count, when a row has all 12 columns and no header names them. */
const ARCHIVE_COUNT_INDEX = 8;
const BAD_ROW_TEXT_CHARS_MAX = 200;

function parseTime(text: string): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    // Binance archives switched from ms to µs open times in 2025.
    return n >= 1e14 ? Math.floor(n / 1000) : n;
  }
  return Date.parse(text.includes('T') ? text : text.replace(' ', 'T'));
}

function mostCommonStep(candles: CsvCandle[]): number {
  const counts = new Map<number, number>();
  for (let i = 1; i < candles.length; i++) {
    const d = candles[i].time - candles[i - 1].time;
    counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  let best = 60_000;
  let n = 0;
  for (const [d, c] of counts) if (c > n) [best, n] = [d, c];
  return best;
}

type Columns = { time: number; open: number; high: number; low: number; close: number; volume: number; count: number };

/** Why a candle is not one (bad time, a value that is not a plain decimal, open/close outside low..high), or null. */
export function candleProblem(c: CsvCandle): string | null {
  if (!Number.isFinite(c.time)) return 'open time is not a date or epoch time';
  for (const k of ['open', 'high', 'low', 'close', 'volume'] as const) {
    if (typeof c[k] !== 'string' || !NUM.test(c[k])) return `${k} "${c[k] ?? ''}" is not a plain decimal`;
  }
  if (!/[1-9]/.test(c.low)) return 'prices must be positive';
  const { open: o, high: h, low: l, close: cl } = c;
  if (cmp(h, l) < 0 || cmp(o, h) > 0 || cmp(o, l) < 0 || cmp(cl, h) > 0 || cmp(cl, l) < 0) return 'open and close must lie between low and high';
  return null;
}

/** Orders two plain non-negative decimal strings without parsing them (a file has hundreds of thousands). */
function cmp(a: string, b: string): number {
  const [ai, af = ''] = a.split('.');
  const [bi, bf = ''] = b.split('.');
  const x = ai.replace(/^0+/, '');
  const y = bi.replace(/^0+/, '');
  if (x.length !== y.length) return x.length - y.length;
  if (x !== y) return x < y ? -1 : 1;
  const n = Math.max(af.length, bf.length);
  const [p, q] = [af.padEnd(n, '0'), bf.padEnd(n, '0')];
  return p === q ? 0 : p < q ? -1 : 1;
}

function rowProblem(c: CsvCandle, f: string[], idx: Columns): string | null {
  if (f.length < 6) return `expected at least 6 columns, got ${f.length}`;
  if (!Number.isFinite(c.time)) return `open time "${f[idx.time] ?? ''}" is not a date or epoch time`;
  return candleProblem(c);
}

function columnsOf(header: string[]): Columns {
  const at = (name: string) => header.indexOf(name);
  return {
    time: header.findIndex((c) => TIME_COLUMNS.includes(c)), open: at('open'), high: at('high'), low: at('low'),
    close: at('close'), volume: at('volume'), count: header.findIndex((c) => COUNT_COLUMNS.includes(c)),
  };
}

export function parseCandleCsv(text: string, opts: CsvOptions = {}): CandleFile {
  const lines = text.split(/\r?\n/);
  let first = 0;
  while (first < lines.length && lines[first].trim() === '') first++;
  let idx: Columns = { time: 0, open: 1, high: 2, low: 3, close: 4, volume: 5, count: -1 };
  const head = lines[first]?.split(',').map((c) => c.trim().toLowerCase()) ?? [];
  if (first < lines.length && Number.isNaN(parseTime(head[0]))) {
    idx = columnsOf(head);
    const { count: _optional, ...needed } = idx;
    if (Object.values(needed).some((i) => i < 0)) throw new Error(`candle CSV: header needs time, open, high, low, close, volume: "${lines[first]}"`);
    first++;
  }
  const byTime = new Map<number, CsvCandle>();
  const bad_rows: BadRow[] = [];
  let row = 0;
  for (let i = first; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    row++;
    const f = line.split(',').map((c) => c.trim());
    const c: CsvCandle = { time: parseTime(f[idx.time] ?? ''), open: f[idx.open], high: f[idx.high], low: f[idx.low], close: f[idx.close], volume: f[idx.volume] };
    const problem = rowProblem(c, f, idx);
    if (problem) {
      if (opts.bad_rows !== 'collect') throw new Error(`candle CSV: bad row ${row} (line ${i + 1}, ${problem}): "${line}"`);
      bad_rows.push({ line: i + 1, text: line.slice(0, BAD_ROW_TEXT_CHARS_MAX), reason: problem });
      continue;
    }
    const countIdx = idx.count >= 0 ? idx.count : f.length === 12 ? ARCHIVE_COUNT_INDEX : -1;
    if (countIdx >= 0 && /^\d+$/.test(f[countIdx] ?? '')) c.trade_count = Number(f[countIdx]);
    byTime.set(c.time, c);
  }
  const candles = [...byTime.values()].sort((a, b) => a.time - b.time);
  const interval_ms = mostCommonStep(candles);
  const gaps: CandleFile['gaps'] = [];
  for (let i = 1; i < candles.length; i++) {
    const d = candles[i].time - candles[i - 1].time;
    if (d > interval_ms) gaps.push({ after: candles[i - 1].time, missing: Math.round(d / interval_ms) - 1 });
  }
  return { candles, interval_ms, gaps, bad_rows };
}

export function loadCandleCsv(path: string, opts: CsvOptions = {}): CandleFile {
  return parseCandleCsv(readFileSync(path, 'utf8'), opts);
}

/** `BTCUSDT_60m.csv`, `BTCUSDT-1m-2024-01.csv` → BTCUSDT. */
export function symbolFromFile(path: string): string {
  return basename(path).split(/[_.-]/)[0].toUpperCase();
}
