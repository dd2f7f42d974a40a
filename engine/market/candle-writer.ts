import type { Queryable } from '../store/db.js';
import { upsertCandles } from '../store/candles-repo.js';
import { MINUTE_MS } from './candles.js';
import type { PriceBook } from './book.js';

/**
 * Persists the book's live one-minute buckets to `candles` (interval '1m') so the history a feed builds
 * survives a restart and backtests can use it. Every flush writes the minutes that received a trade since the
 * previous flush: the ones that closed meanwhile, late trades into older minutes, and the minute still open
 * (rewritten on the next flush; the upsert skips rows that did not change).
 */

export const CANDLE_FLUSH_INTERVAL_MS = 10_000;

export interface CandleWriterOptions {
  flush_interval_ms?: number;
  /** A failed flush is reported here; its minutes are kept and retried on the next flush. */
  onError?: (err: unknown) => void;
  /** Ticks are recorded only while this says so (e.g. only real exchange trades, not a fallback feed's). */
  accept?: () => boolean;
}

export class CandleWriter {
  /** symbol → open times of minutes touched since the last successful flush. */
  private dirty = new Map<string, Set<number>>();
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null;
  private running: Promise<number> | null = null;

  /** Watches trades from construction on; `start` adds the timer, `flush` writes on demand. */
  constructor(
    private readonly db: Queryable,
    private readonly book: PriceBook,
    private readonly opts: CandleWriterOptions = {},
  ) {
    this.unsubscribe = this.book.onTick((tick) => {
      if (this.opts.accept && !this.opts.accept()) return;
      let set = this.dirty.get(tick.symbol);
      if (!set) this.dirty.set(tick.symbol, (set = new Set()));
      set.add(Math.floor(tick.time / MINUTE_MS) * MINUTE_MS);
    });
  }

  /** Flushes every `flush_interval_ms` until `stop` (idempotent). */
  start(): void {
    if (this.timer || !this.unsubscribe) return;
    const every = this.opts.flush_interval_ms ?? CANDLE_FLUSH_INTERVAL_MS;
    this.timer = setInterval(() => {
      this.flush().catch((err) => this.opts.onError?.(err));
    }, every);
    this.timer.unref();
  }

  /** Stops the timer and the trade watch, then writes what is still pending. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    await this.flush();
  }

  /** Writes every touched minute now; resolves to the number of candles written. One flush runs at a time. */
  async flush(): Promise<number> {
    while (this.running) await this.running.catch(() => {});
    this.running = this.writeDirty();
    try {
      return await this.running;
    } finally {
      this.running = null;
    }
  }

  private async writeDirty(): Promise<number> {
    const taken = this.dirty;
    this.dirty = new Map();
    let written = 0;
    try {
      for (const [symbol, starts] of taken) {
        let from = Infinity;
        let to = -Infinity;
        for (const s of starts) [from, to] = [Math.min(from, s), Math.max(to, s)];
        const candles = this.book.candles(symbol, '1m', Number.MAX_SAFE_INTEGER, { from, to }).filter((c) => starts.has(c.time));
        if (candles.length > 0) await upsertCandles(this.db, symbol, '1m', candles);
        taken.delete(symbol);
        written += candles.length;
      }
    } catch (err) {
      // Keep what was not written for the next flush, together with anything touched meanwhile.
      for (const [symbol, starts] of taken) {
        const set = this.dirty.get(symbol) ?? new Set<number>();
        for (const s of starts) set.add(s);
        this.dirty.set(symbol, set);
      }
      throw err;
    }
    return written;
  }
}
