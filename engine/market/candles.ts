import type { Decimal } from 'decimal.js';
import { fmt } from '../core/money.js';

/**
 * One-minute buckets are the only aggregate the book stores: 1m candles are the buckets themselves,
 * coarser candles and the rolling 24 h ticker are folded from them on demand.
 */

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;
export const CANDLE_INTERVALS = ['1m', '5m', '1h', '1d'] as const;
export type CandleInterval = (typeof CANDLE_INTERVALS)[number];
export const INTERVAL_MS: Record<CandleInterval, number> = { '1m': MINUTE_MS, '5m': 5 * MINUTE_MS, '1h': 60 * MINUTE_MS, '1d': DAY_MS };

export interface Bucket {
  /** Open time, epoch ms, a multiple of the bucket length. */
  start: number;
  open: Decimal;
  high: Decimal;
  low: Decimal;
  close: Decimal;
  volume: Decimal;
  quote_volume: Decimal;
  trade_count: number;
  /** Times of the trades that set open and close, so a late trade cannot overwrite them. */
  first_time: number;
  last_time: number;
}

export interface Candle {
  /** Open time, epoch ms. */
  time: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  quote_volume: string;
  trade_count: number;
}

export function newBucket(start: number, time: number, price: Decimal, qty: Decimal): Bucket {
  return {
    start, open: price, high: price, low: price, close: price, volume: qty, quote_volume: price.times(qty),
    trade_count: 1, first_time: time, last_time: time,
  };
}

export function addTrade(b: Bucket, time: number, price: Decimal, qty: Decimal): void {
  if (price.gt(b.high)) b.high = price;
  if (price.lt(b.low)) b.low = price;
  if (time < b.first_time) {
    b.open = price;
    b.first_time = time;
  }
  if (time >= b.last_time) {
    b.close = price;
    b.last_time = time;
  }
  b.volume = b.volume.plus(qty);
  b.quote_volume = b.quote_volume.plus(price.times(qty));
  b.trade_count += 1;
}

/** Folds buckets that are in time order into one (a copy; the inputs are not changed). */
export function fold(buckets: ReadonlyArray<Bucket>, start = buckets[0].start): Bucket {
  const acc: Bucket = { ...buckets[0], start };
  for (let i = 1; i < buckets.length; i++) {
    const b = buckets[i];
    if (b.high.gt(acc.high)) acc.high = b.high;
    if (b.low.lt(acc.low)) acc.low = b.low;
    acc.close = b.close;
    acc.last_time = b.last_time;
    acc.volume = acc.volume.plus(b.volume);
    acc.quote_volume = acc.quote_volume.plus(b.quote_volume);
    acc.trade_count += b.trade_count;
  }
  return acc;
}

export const toCandle = (b: Bucket): Candle => ({
  time: b.start, open: fmt(b.open), high: fmt(b.high), low: fmt(b.low), close: fmt(b.close),
  volume: fmt(b.volume), quote_volume: fmt(b.quote_volume), trade_count: b.trade_count,
});

/** Groups minute buckets into candles of `interval_ms`, aligned to the epoch (UTC), oldest first. Empty periods give no candle. */
export function aggregate(minutes: ReadonlyArray<Bucket>, interval_ms: number): Bucket[] {
  if (interval_ms === MINUTE_MS) return [...minutes];
  const out: Bucket[] = [];
  let group: Bucket[] = [];
  let groupStart = NaN;
  for (const m of minutes) {
    const s = Math.floor(m.start / interval_ms) * interval_ms;
    if (s !== groupStart && group.length > 0) {
      out.push(fold(group, groupStart));
      group = [];
    }
    groupStart = s;
    group.push(m);
  }
  if (group.length > 0) out.push(fold(group, groupStart));
  return out;
}
