/**
 * The candles of one backtest as columns of float64 on a fixed time grid: slot j of a symbol is the candle
 * that opens at t0 + j·interval and closes one interval later; a missing candle is NaN in every column.
 * One buffer holds every column so it can be a SharedArrayBuffer that workers read without a copy.
 *
 * Prices are stored as exact integers in units of 1e-8 ("scaled"): every value with at most 8 decimals and
 * at most PRICE_MAX whole units is an integer below 2^53, which float64 represents exactly, so comparing two
 * scaled prices with < and <= gives the same answer as comparing the decimals, and converting back to a
 * string loses nothing. Only trigger detection compares them; fills and balances are computed in Decimal
 * from the exact strings. Volume only sizes slippage and is not money, so it stays a plain float64.
 */
export const PRICE_SCALE = 100_000_000;
/** The largest whole price whose scaled value stays below 2^53. */
export const PRICE_MAX = Math.floor(Number.MAX_SAFE_INTEGER / PRICE_SCALE);
const COLUMNS = 5;
const PLAIN = /^(\d{1,8})(?:\.(\d{1,8}))?$/;

export interface SeriesLayout {
  symbols: string[];
  interval_ms: number;
  /** Open time of slot 0, epoch ms. */
  t0: number;
  /** Slots per symbol. */
  length: number;
}

export interface Series extends SeriesLayout {
  buffer: SharedArrayBuffer | ArrayBuffer;
  /** Column c of symbol s at slot j is at index s·length + j. */
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
}

/** A candle as files and the candles table give it (decimal strings). */
export interface CandleIn {
  /** Open time, epoch ms. */
  time: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  trade_count?: number;
}

/** "123.45" → 12345000000. Throws past 8 decimals or PRICE_MAX: such a price would not compare exactly. */
export function toScaled(price: string): number {
  const m = PLAIN.exec(price);
  if (!m || Number(m[1]) > PRICE_MAX) throw new RangeError(`price ${price} is not a plain decimal of at most ${PRICE_MAX} with 8 decimals`);
  return Number(m[1]) * PRICE_SCALE + Number((m[2] ?? '').padEnd(8, '0'));
}

/** An order level as scaled units; a level above PRICE_MAX is +Infinity, which still compares correctly with any candle. */
export function levelOf(price: string): number {
  const m = PLAIN.exec(price);
  return m && Number(m[1]) <= PRICE_MAX ? toScaled(price) : Infinity;
}

/** Exact inverse of toScaled, with 8 decimals. */
export function fromScaled(n: number): string {
  const int = Math.floor(n / PRICE_SCALE);
  return `${int}.${String(n - int * PRICE_SCALE).padStart(8, '0')}`;
}

export function seriesView(buffer: SharedArrayBuffer | ArrayBuffer, layout: SeriesLayout): Series {
  const n = layout.symbols.length * layout.length;
  const col = (i: number) => new Float64Array(buffer, i * n * 8, n);
  return { ...layout, buffer, open: col(0), high: col(1), low: col(2), close: col(3), volume: col(4) };
}

/** An empty series (every candle missing); shared memory unless `shared` is false. */
export function allocSeries(layout: SeriesLayout, shared = true): Series {
  const bytes = layout.symbols.length * layout.length * 8 * COLUMNS;
  const s = seriesView(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes), layout);
  new Float64Array(s.buffer).fill(NaN);
  return s;
}

export const layoutOf = (s: Series): SeriesLayout => ({ symbols: s.symbols, interval_ms: s.interval_ms, t0: s.t0, length: s.length });

/** Writes one candle; false when it is off the grid (not aligned, or outside the series). */
export function setCandle(s: Series, sym: number, c: CandleIn): boolean {
  const j = (c.time - s.t0) / s.interval_ms;
  if (!Number.isInteger(j) || j < 0 || j >= s.length) return false;
  const i = sym * s.length + j;
  s.open[i] = toScaled(c.open);
  s.high[i] = toScaled(c.high);
  s.low[i] = toScaled(c.low);
  s.close[i] = toScaled(c.close);
  s.volume[i] = Number(c.volume);
  return true;
}

/**
 * Merges a finer candle into the slot that contains its open time (candles must arrive oldest first), so a
 * 5-minute series can be built from 1-minute rows; false when it lies outside the series.
 */
export function foldCandle(s: Series, sym: number, c: CandleIn): boolean {
  const j = Math.floor((c.time - s.t0) / s.interval_ms);
  if (j < 0 || j >= s.length) return false;
  const i = sym * s.length + j;
  if (Number.isNaN(s.close[i])) return setCandle(s, sym, { ...c, time: s.t0 + j * s.interval_ms });
  s.high[i] = Math.max(s.high[i], toScaled(c.high));
  s.low[i] = Math.min(s.low[i], toScaled(c.low));
  s.close[i] = toScaled(c.close);
  s.volume[i] += Number(c.volume);
  return true;
}

/** The slot of the last candle that has closed by virtual time T (−1 before the first). */
export const closedSlot = (s: Series, T: number): number => Math.min(s.length, Math.floor((T - s.t0) / s.interval_ms)) - 1;

/** The slot at or before j that has a candle, or −1: a gap keeps the last known price. */
export function lastPresent(s: Series, sym: number, j: number): number {
  const base = sym * s.length;
  let k = Math.min(j, s.length - 1);
  while (k >= 0 && Number.isNaN(s.close[base + k])) k--;
  return k;
}

/** The close of the last candle at or before slot j, as an exact decimal string, or undefined. */
export function closeAt(s: Series, sym: number, j: number): string | undefined {
  const k = lastPresent(s, sym, j);
  return k < 0 ? undefined : fromScaled(s.close[sym * s.length + k]);
}

/** Base volume of the candles in the 24 h that end with slot j (the live ticker's window), for slippage. */
export function volume24h(s: Series, sym: number, j: number): string {
  const window = Math.max(1, Math.round(86_400_000 / s.interval_ms));
  const base = sym * s.length;
  let v = 0;
  for (let k = Math.max(0, j - window + 1); k <= j; k++) if (!Number.isNaN(s.volume[base + k])) v += s.volume[base + k];
  return v.toFixed(8);
}

export interface CandleOut {
  time: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
}

/**
 * Candles of `interval_ms` (a multiple of the series interval) that have fully closed by slot `j`, oldest
 * first, at most `limit`. A bucket still forming at T is left out: showing it would leak nothing yet, but
 * its close would change under the agent's feet.
 */
export function candlesUpTo(s: Series, sym: number, j: number, interval_ms: number, limit: number): CandleOut[] {
  const per = interval_ms / s.interval_ms;
  const out: CandleOut[] = [];
  const base = sym * s.length;
  // Buckets align to the epoch, like the live book's candles.
  let end = j + 1;
  end -= ((s.t0 + end * s.interval_ms) % interval_ms) / s.interval_ms;
  for (let from = end - per; from >= 0 && out.length < limit; from -= per) {
    let o = NaN, h = -Infinity, l = Infinity, c = NaN, v = 0;
    for (let k = from; k < from + per; k++) {
      const i = base + k;
      if (Number.isNaN(s.close[i])) continue;
      if (Number.isNaN(o)) o = s.open[i];
      h = Math.max(h, s.high[i]);
      l = Math.min(l, s.low[i]);
      c = s.close[i];
      v += s.volume[i];
    }
    if (Number.isNaN(o)) continue;
    out.push({ time: s.t0 + from * s.interval_ms, open: fromScaled(o), high: fromScaled(h), low: fromScaled(l), close: fromScaled(c), volume: v.toFixed(8) });
  }
  return out.reverse();
}
