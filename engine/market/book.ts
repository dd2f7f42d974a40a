import type { Decimal } from 'decimal.js';
import { fmt, money } from '../core/money.js';
import { addTrade, aggregate, DAY_MS, fold, INTERVAL_MS, MINUTE_MS, newBucket, toCandle, type Bucket, type Candle, type CandleInterval } from './candles.js';
import type { MarketData, Pair, Tick, Ticker } from './types.js';

/**
 * The in-memory market: latest price, minute buckets (1m candles and the rolling 24 h ticker come from them)
 * and recent trades per symbol. Everything is kept in memory so reads never touch the database.
 */

export interface TradeRecord {
  trade_id: number;
  price: string;
  quantity: string;
  time: number;
  is_buyer_maker: boolean;
}

export interface PriceBookOptions {
  /** 1m candles kept per symbol (also bounds the ticker window, so keep it ≥ 1440). */
  candles_max?: number;
  /** Recent trades kept per symbol. */
  trades_max?: number;
  /** A throwing listener is reported here and does not stop the others. */
  onListenerError?: (err: unknown) => void;
}

interface SymbolState {
  price: string | null;
  time: number;
  minutes: Bucket[];
  trades: TradeRecord[];
  /** Next write position in `trades` once it is full (a ring). */
  head: number;
  seq: number;
  ticker: Ticker | null;
}

const isDecimal = /^\d+(\.\d+)?$/;

export class PriceBook implements MarketData {
  private readonly byName = new Map<string, Pair>();
  private readonly state = new Map<string, SymbolState>();
  private readonly listeners = new Set<(tick: Tick) => void>();
  private readonly candlesMax: number;
  private readonly tradesMax: number;

  constructor(pairs: Iterable<Pair>, private readonly opts: PriceBookOptions = {}) {
    this.candlesMax = Math.max(opts.candles_max ?? 1440, 1440);
    this.tradesMax = opts.trades_max ?? 500;
    this.setPairs(pairs);
  }

  /** Adds or updates pairs; market state of symbols already known is kept. */
  setPairs(pairs: Iterable<Pair>): void {
    for (const p of pairs) {
      this.byName.set(p.symbol, p);
      if (!this.state.has(p.symbol)) {
        this.state.set(p.symbol, { price: null, time: 0, minutes: [], trades: [], head: 0, seq: 0, ticker: null });
      }
    }
  }

  pairs(): Pair[] {
    return [...this.byName.values()].sort((a, b) => (a.symbol < b.symbol ? -1 : 1));
  }

  pair(symbol: string): Pair | undefined {
    return this.byName.get(symbol);
  }

  price(symbol: string): { price: string; time: number } | undefined {
    const st = this.state.get(symbol);
    return st?.price ? { price: st.price, time: st.time } : undefined;
  }

  /** Accepts a trade of a known symbol with a positive price; returns whether it was taken. */
  ingest(tick: Tick): boolean {
    const st = this.state.get(tick.symbol);
    if (!st || !Number.isFinite(tick.time) || !isDecimal.test(tick.price) || !isDecimal.test(tick.quantity)) return false;
    const price = money(tick.price);
    if (price.lte(0)) return false;
    const qty = money(tick.quantity);
    const norm: Tick = { ...tick, price: fmt(price), quantity: fmt(qty), trade_id: tick.trade_id ?? ++st.seq };
    if (tick.time >= st.time || st.price === null) {
      st.price = norm.price;
      st.time = tick.time;
    }
    this.addToMinute(st, tick.time, price, qty);
    this.remember(st, norm);
    st.ticker = null;
    for (const l of this.listeners) {
      try {
        l(norm);
      } catch (err) {
        this.opts.onListenerError?.(err);
      }
    }
    return true;
  }

  onTick(listener: (tick: Tick) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Rolling 24 h window ending at the symbol's latest trade: minute buckets older than that drop out. */
  ticker(symbol: string): Ticker | undefined {
    const st = this.state.get(symbol);
    if (!st?.price) return undefined;
    if (st.ticker) return st.ticker;
    const from = st.time - DAY_MS;
    let i = st.minutes.length;
    while (i > 0 && st.minutes[i - 1].start > from) i--;
    const w = fold(st.minutes.slice(i));
    const change = w.close.minus(w.open);
    st.ticker = {
      symbol, open: fmt(w.open), high: fmt(w.high), low: fmt(w.low), close: fmt(w.close), volume: fmt(w.volume),
      quote_volume: fmt(w.quote_volume), change: fmt(change), change_pct: fmt(change.div(w.open).times(100)),
      trade_count: w.trade_count, timestamp: st.time,
    };
    return st.ticker;
  }

  /** The newest `limit` candles of an interval (oldest first), optionally only those opening within [from, to]. */
  candles(symbol: string, interval: CandleInterval, limit: number, range: { from?: number; to?: number } = {}): Candle[] {
    const st = this.state.get(symbol);
    if (!st) return [];
    let out = aggregate(st.minutes, INTERVAL_MS[interval]);
    if (range.from !== undefined || range.to !== undefined) {
      const from = range.from ?? -Infinity;
      const to = range.to ?? Infinity;
      out = out.filter((b) => b.start >= from && b.start <= to);
    }
    return out.slice(Math.max(0, out.length - limit)).map(toCandle);
  }

  /** The candle of `interval` that holds the symbol's latest minute (folds only that period's minutes). */
  currentCandle(symbol: string, interval: CandleInterval): Candle | undefined {
    const minutes = this.state.get(symbol)?.minutes;
    if (!minutes?.length) return undefined;
    const ms = INTERVAL_MS[interval];
    const start = Math.floor(minutes[minutes.length - 1].start / ms) * ms;
    let i = minutes.length;
    while (i > 0 && minutes[i - 1].start >= start) i--;
    return toCandle(fold(minutes.slice(i), start));
  }

  /** Most recent trades, newest first. */
  trades(symbol: string, limit: number): TradeRecord[] {
    const st = this.state.get(symbol);
    if (!st) return [];
    const n = st.trades.length;
    const out: TradeRecord[] = [];
    for (let k = 1; k <= Math.min(limit, n); k++) out.push(st.trades[(st.head - k + n) % n]);
    return out;
  }

  private addToMinute(st: SymbolState, time: number, price: Decimal, qty: Decimal): void {
    const start = Math.floor(time / MINUTE_MS) * MINUTE_MS;
    const m = st.minutes;
    let i = m.length - 1;
    while (i >= 0 && m[i].start > start) i--;
    if (i >= 0 && m[i].start === start) return addTrade(m[i], time, price, qty);
    // A trade older than everything kept has nowhere to go once the buffer is full.
    if (i < 0 && m.length >= this.candlesMax) return;
    m.splice(i + 1, 0, newBucket(start, time, price, qty));
    if (m.length > this.candlesMax) m.shift();
  }

  private remember(st: SymbolState, t: Tick): void {
    const rec: TradeRecord = { trade_id: t.trade_id!, price: t.price, quantity: t.quantity, time: t.time, is_buyer_maker: t.is_buyer_maker ?? false };
    if (st.trades.length < this.tradesMax) {
      st.trades.push(rec);
      st.head = st.trades.length % this.tradesMax;
    } else {
      st.trades[st.head] = rec;
      st.head = (st.head + 1) % this.tradesMax;
    }
  }
}
