import type { Queryable } from './db.js';
import type { CandleIn } from '../core/series.js';

/**
 * SQL for the `candles` table (PK symbol, interval, open_time). Prices and volumes go to SQL as the strings
 * they arrived as and come back as NUMERIC text: they never pass through a JS number.
 *
 * Upserts are idempotent: a row whose values are already stored is left alone (not rewritten), a row whose
 * values differ is updated (late data, corrections, the live minute that is still filling), a new row is
 * inserted. Counting the three lets an importer say what a re-import changed.
 *
 * Derived candles (5m … 1d from 1m): a period gets a candle when at least one source candle lies in it and the
 * period lies entirely within the stored source span (first source open … last source close). Missing minutes
 * inside the span do not drop the period, as an exchange with no trades for a minute still prints the hour;
 * a period cut by either end of the stored data gets no candle, so a file starting at 16:40 never yields a
 * 16:00 hour whose open is really 16:40's. Re-deriving after more data arrives completes such periods.
 */

export type { CandleIn };

export interface CandleRow {
  time: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  trade_count: number;
}

export interface UpsertResult {
  inserted: number;
  updated: number;
  unchanged: number;
}

export interface IntervalRange {
  interval: string;
  earliest: string;
  latest: string;
  count: number;
  /** Periods without a candle between earliest and latest. */
  gaps: number;
}

export interface DataRange {
  earliest: string | null;
  latest: string | null;
  pairs: Array<{ symbol: string; intervals: IntervalRange[] }>;
}

export const UPSERT_CHUNK_ROWS = 5000;
export const DERIVED_INTERVALS = ['5m', '15m', '1h', '4h', '1d'] as const;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** '15m' → 900000; null for anything that is not a fixed length ('1M' is a calendar month). */
export function intervalMs(interval: string): number | null {
  const m = /^([1-9]\d*)([smhdw])$/.exec(interval);
  return m ? Number(m[1]) * UNIT_MS[m[2]] : null;
}

/** 3600000 → '1h', 300000 → '5m'; the largest unit that divides it. */
export function intervalName(ms: number): string {
  for (const [u, len] of Object.entries(UNIT_MS).reverse()) if (ms % len === 0 && ms >= len) return `${ms / len}${u}`;
  return `${ms}ms`;
}

const iso = (ms: number) => new Date(ms).toISOString();
const VALUES = ['open', 'high', 'low', 'close', 'volume', 'trade_count'] as const;

/** Shared tail of both upserts: counts rows that were inserted or changed; the rest were already there. */
const upsertTail = (total: string) => `
  ON CONFLICT (symbol, interval, open_time) DO UPDATE SET
    ${VALUES.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}
  WHERE (${VALUES.map((c) => `candles.${c}`).join(', ')}) IS DISTINCT FROM (${VALUES.map((c) => `EXCLUDED.${c}`).join(', ')})
  RETURNING (xmax = 0) AS fresh
)
SELECT count(*) FILTER (WHERE fresh)::int AS inserted, count(*) FILTER (WHERE NOT fresh)::int AS updated, ${total} AS total FROM up`;

const UPSERT_SQL = `
WITH up AS (
  INSERT INTO candles (symbol, interval, open_time, open, high, low, close, volume, trade_count)
  SELECT $1, $2, s.* FROM unnest($3::timestamptz[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[], $8::numeric[], $9::int[])
    AS s(open_time, open, high, low, close, volume, trade_count)
  ${upsertTail('0')}`;

/** Later rows win over earlier ones with the same open time (one statement cannot touch a row twice). */
function uniqueByTime(candles: ReadonlyArray<CandleIn>): ReadonlyArray<CandleIn> {
  let sorted = true;
  for (let i = 1; i < candles.length && sorted; i++) sorted = candles[i].time > candles[i - 1].time;
  if (sorted) return candles;
  return [...new Map(candles.map((c) => [c.time, c])).values()].sort((a, b) => a.time - b.time);
}

export async function upsertCandles(
  q: Queryable, symbol: string, interval: string, candles: ReadonlyArray<CandleIn>,
  onProgress?: (done: number, total: number) => void,
): Promise<UpsertResult> {
  const rows = uniqueByTime(candles);
  const out: UpsertResult = { inserted: 0, updated: 0, unchanged: 0 };
  for (let i = 0; i < rows.length; i += UPSERT_CHUNK_ROWS) {
    const chunk = rows.slice(i, i + UPSERT_CHUNK_ROWS);
    const col = (k: 'open' | 'high' | 'low' | 'close' | 'volume') => chunk.map((c) => c[k]);
    const [r] = await q.query<{ inserted: number; updated: number }>(UPSERT_SQL, [
      symbol, interval, chunk.map((c) => iso(c.time)), col('open'), col('high'), col('low'), col('close'), col('volume'),
      chunk.map((c) => c.trade_count ?? 0),
    ]);
    out.inserted += r.inserted;
    out.updated += r.updated;
    out.unchanged += chunk.length - r.inserted - r.updated;
    onProgress?.(Math.min(i + UPSERT_CHUNK_ROWS, rows.length), rows.length);
  }
  return out;
}

/** Candles opening within [fromMs, toMs], oldest first; values as 8-dp decimal strings. */
export async function loadCandles(q: Queryable, symbol: string, interval: string, fromMs: number, toMs: number): Promise<CandleRow[]> {
  return q.query<CandleRow>(
    `SELECT (extract(epoch FROM open_time) * 1000)::int8 AS time, open::text AS open, high::text AS high, low::text AS low,
            close::text AS close, volume::text AS volume, trade_count
       FROM candles WHERE symbol = $1 AND interval = $2 AND open_time BETWEEN $3::timestamptz AND $4::timestamptz
      ORDER BY open_time`,
    [symbol, interval, iso(fromMs), iso(toMs)],
  );
}

/** What is stored, per symbol and interval, with the overall first and last open time (ISO, UTC). */
export async function dataRange(q: Queryable): Promise<DataRange> {
  const rows = await q.query<{ symbol: string; interval: string; earliest: number; latest: number; count: number }>(
    `SELECT symbol, interval, (extract(epoch FROM min(open_time)) * 1000)::int8 AS earliest,
            (extract(epoch FROM max(open_time)) * 1000)::int8 AS latest, count(*)::int AS count
       FROM candles GROUP BY symbol, interval`,
  );
  const bySymbol = new Map<string, Array<IntervalRange & { ms: number }>>();
  let earliest = Infinity;
  let latest = -Infinity;
  for (const r of rows) {
    earliest = Math.min(earliest, r.earliest);
    latest = Math.max(latest, r.latest);
    const ms = intervalMs(r.interval) ?? 0;
    const gaps = ms > 0 ? Math.max(0, Math.floor((r.latest - r.earliest) / ms) + 1 - r.count) : 0;
    const list = bySymbol.get(r.symbol) ?? [];
    list.push({ interval: r.interval, earliest: iso(r.earliest), latest: iso(r.latest), count: r.count, gaps, ms });
    bySymbol.set(r.symbol, list);
  }
  const pairs = [...bySymbol.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([symbol, list]) => ({
      symbol,
      intervals: list.sort((a, b) => a.ms - b.ms || (a.interval < b.interval ? -1 : 1)).map(({ ms: _ms, ...r }) => r),
    }));
  return { earliest: rows.length ? iso(earliest) : null, latest: rows.length ? iso(latest) : null, pairs };
}

const DERIVE_SQL = `
WITH agg AS (
  SELECT date_bin($4::interval, open_time, timestamptz '1970-01-01 00:00:00+00') AS open_time,
         (array_agg(open ORDER BY open_time))[1] AS open, max(high) AS high, min(low) AS low,
         (array_agg(close ORDER BY open_time DESC))[1] AS close, sum(volume) AS volume, sum(trade_count)::int AS trade_count
    FROM candles WHERE symbol = $1 AND interval = $2 AND open_time >= $5::timestamptz AND open_time < $6::timestamptz
   GROUP BY 1
), up AS (
  INSERT INTO candles (symbol, interval, open_time, open, high, low, close, volume, trade_count)
  SELECT $1, $3, open_time, open, high, low, close, volume, trade_count FROM agg
  ${upsertTail('(SELECT count(*)::int FROM agg)')}`;

export interface DeriveOptions {
  /** Target intervals; default every one of DERIVED_INTERVALS that is a multiple of the source. */
  intervals?: readonly string[];
  /** Only periods touching [from, to] (epoch ms) are rebuilt; default all stored source data. */
  from?: number;
  to?: number;
}

/** Builds coarser candles of `symbol` from its `fromInterval` candles (see the rule at the top of this file). */
export async function deriveIntervals(q: Queryable, symbol: string, fromInterval: string, opts: DeriveOptions = {}): Promise<Record<string, UpsertResult>> {
  const srcMs = intervalMs(fromInterval);
  if (!srcMs) throw new Error(`cannot derive from interval "${fromInterval}"`);
  const targets = (opts.intervals ?? DERIVED_INTERVALS).filter((i) => {
    const ms = intervalMs(i);
    return ms !== null && ms > srcMs && ms % srcMs === 0;
  });
  const [span] = await q.query<{ lo: number | null; hi: number | null }>(
    `SELECT (extract(epoch FROM min(open_time)) * 1000)::int8 AS lo, (extract(epoch FROM max(open_time)) * 1000)::int8 AS hi
       FROM candles WHERE symbol = $1 AND interval = $2`,
    [symbol, fromInterval],
  );
  const out: Record<string, UpsertResult> = {};
  if (span.lo === null || span.hi === null) return out;
  for (const target of targets) {
    const ms = intervalMs(target)!;
    // Whole periods inside the stored span only, narrowed to the periods touching [from, to].
    const first = Math.max(Math.ceil(span.lo / ms) * ms, opts.from === undefined ? -Infinity : Math.floor(opts.from / ms) * ms);
    const end = Math.min(Math.floor((span.hi + srcMs) / ms) * ms, opts.to === undefined ? Infinity : Math.floor(opts.to / ms) * ms + ms);
    if (end <= first) {
      out[target] = { inserted: 0, updated: 0, unchanged: 0 };
      continue;
    }
    const [r] = await q.query<{ inserted: number; updated: number; total: number }>(DERIVE_SQL, [
      symbol, fromInterval, target, `${ms} milliseconds`, iso(first), iso(end),
    ]);
    out[target] = { inserted: r.inserted, updated: r.updated, unchanged: r.total - r.inserted - r.updated };
  }
  return out;
}
