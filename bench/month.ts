import { resolve } from 'node:path';
import { loadCandleCsv } from '../engine/market/csv.js';
import { mulberry32 } from '../engine/market/prng.js';
import { allocSeries, setCandle, type CandleIn, type Series } from '../engine/core/series.js';

/**
 * The month the backtest and battle benchmarks step over: 1-minute candles × 5 symbols. ADA, DOGE and DOT are
 * real Bybit minutes from ../shared/data; BTC and ETH are seeded random walks over the same minutes (the shared
 * data has no month of 1-minute BTC/ETH). Same files, window and seeds in every benchmark, so figures compare.
 */
export const REAL = ['ADAUSDT', 'DOGEUSDT', 'DOTUSDT'];
export const SYNTH: Array<[string, number]> = [['BTCUSDT', 105_000], ['ETHUSDT', 2_500]];
export const SYMBOLS = [...REAL, ...SYNTH.map(([s]) => s)];
export const MIN = 60_000;
export const START = Date.parse('2025-05-30T16:40:00Z');
export const STEPS = 30 * 1440;
export const WARMUP = 1440;
export const CELLS = STEPS * SYMBOLS.length;

export function monthOfCandles(): Record<string, CandleIn[]> {
  const out: Record<string, CandleIn[]> = {};
  for (const sym of REAL) out[sym] = loadCandleCsv(resolve('../shared/data/bybit-linear', `${sym}_1m.csv`)).candles.filter((c) => c.time >= START && c.time < START + STEPS * MIN);
  for (const [k, [sym, p0]] of SYNTH.entries()) {
    const draw = mulberry32(1000 + k);
    let p = p0 * 100;
    out[sym] = Array.from({ length: STEPS }, (_, j) => {
      const o = p;
      p = Math.max(1, Math.round(p * (1 + ((draw() % 2001) - 1000) / 1e6)));
      const wick = () => Math.round(p * ((draw() % 500) / 1e6));
      const f = (x: number) => (x / 100).toFixed(2);
      return { time: START + j * MIN, open: f(o), high: f(Math.max(o, p) + wick()), low: f(Math.min(o, p) - wick()), close: f(p), volume: String(1 + (draw() % 500)) };
    });
  }
  return out;
}

export function seriesOf(candles: Record<string, CandleIn[]>): Series {
  const s = allocSeries({ symbols: SYMBOLS, interval_ms: MIN, t0: START - WARMUP * MIN, length: WARMUP + STEPS });
  SYMBOLS.forEach((sym, k) => candles[sym].forEach((c) => setCandle(s, k, c)));
  return s;
}
