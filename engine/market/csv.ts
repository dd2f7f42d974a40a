import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Candle } from './candles.js';

/**
 * Reads historical candle CSVs in the formats users bring: `timestamp|open_time,open,high,low,close,volume`
 * with times like `2025-05-30 16:40:00+00:00`, and Binance's public archive (no header, open time in ms or µs).
 * Gaps are reported, never filled: inventing candles would invent prices.
 */

/** A candle as a CSV row gives it: no quote volume or trade count. */
export type CsvCandle = Omit<Candle, 'quote_volume' | 'trade_count'>;

export interface CandleFile {
  candles: CsvCandle[];
  /** The most common spacing between candles. */
  interval_ms: number;
  /** Where candles are missing: after which open time, and how many. */
  gaps: Array<{ after: number; missing: number }>;
}

const NUM = /^\d+(\.\d+)?$/;
const TIME_COLUMNS = ['timestamp', 'open_time', 'time', 'date', 'datetime'];

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

export function parseCandleCsv(text: string): CandleFile {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  let idx = { time: 0, open: 1, high: 2, low: 3, close: 4, volume: 5 };
  const first = lines[0]?.split(',').map((c) => c.trim().toLowerCase()) ?? [];
  if (first.length > 0 && Number.isNaN(parseTime(first[0]))) {
    const at = (name: string) => first.indexOf(name);
    const time = first.findIndex((c) => TIME_COLUMNS.includes(c));
    idx = { time, open: at('open'), high: at('high'), low: at('low'), close: at('close'), volume: at('volume') };
    if (Object.values(idx).some((i) => i < 0)) throw new Error(`candle CSV: header needs time, open, high, low, close, volume: "${lines[0]}"`);
    lines.shift();
  }
  const byTime = new Map<number, CsvCandle>();
  lines.forEach((line, n) => {
    const f = line.split(',').map((c) => c.trim());
    const c = { time: parseTime(f[idx.time] ?? ''), open: f[idx.open], high: f[idx.high], low: f[idx.low], close: f[idx.close], volume: f[idx.volume] };
    if (!Number.isFinite(c.time) || ![c.open, c.high, c.low, c.close, c.volume].every((v) => v !== undefined && NUM.test(v))) {
      throw new Error(`candle CSV: bad row ${n + 1}: "${line}"`);
    }
    byTime.set(c.time, c);
  });
  const candles = [...byTime.values()].sort((a, b) => a.time - b.time);
  const interval_ms = mostCommonStep(candles);
  const gaps: CandleFile['gaps'] = [];
  for (let i = 1; i < candles.length; i++) {
    const d = candles[i].time - candles[i - 1].time;
    if (d > interval_ms) gaps.push({ after: candles[i - 1].time, missing: Math.round(d / interval_ms) - 1 });
  }
  return { candles, interval_ms, gaps };
}

export function loadCandleCsv(path: string): CandleFile {
  return parseCandleCsv(readFileSync(path, 'utf8'));
}

/** `BTCUSDT_60m.csv`, `BTCUSDT-1m-2024-01.csv` → BTCUSDT. */
export function symbolFromFile(path: string): string {
  return basename(path).split(/[_.-]/)[0].toUpperCase();
}
