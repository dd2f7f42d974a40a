import { fmt, money } from '../../core/money.js';
import { loadCandleCsv, symbolFromFile, type CsvCandle } from '../csv.js';
import type { Feed, Tick } from '../types.js';

/**
 * Plays historical candles as trades, paced against the wall clock at `speed`× so a demo or a live
 * battle can run on real history. Tick times are the candles' own (historical) times.
 */

export interface ReplaySeries {
  symbol: string;
  candles: CsvCandle[];
  interval_ms: number;
}

export interface ReplayOptions {
  series: ReplaySeries[];
  /** Data milliseconds per wall-clock millisecond. */
  speed?: number;
  /** Start over at the end, with times shifted forward so they keep increasing. */
  loop?: boolean;
  /** Most ticks emitted in one go before yielding to the event loop. */
  batch_ticks_max?: number;
}

/** open, then the extreme nearer the open first (the likelier path), then the other, then close; volume split in four. */
export function candleTicks(symbol: string, c: CsvCandle, interval_ms: number, shift = 0): Tick[] {
  const t = c.time + shift;
  const up = money(c.close).gte(c.open);
  const path = up ? [c.open, c.low, c.high, c.close] : [c.open, c.high, c.low, c.close];
  const offsets = [0, Math.floor(interval_ms / 4), Math.floor(interval_ms / 2), interval_ms - 1];
  const qty = fmt(money(c.volume).div(4));
  return path.map((price, i) => ({ symbol, price, quantity: qty, time: t + offsets[i], is_buyer_maker: i % 2 === 1 }));
}

/** Replays each CSV file as the symbol its name starts with. */
export function seriesFromFiles(paths: string[]): ReplaySeries[] {
  return paths.map((p) => {
    const f = loadCandleCsv(p);
    return { symbol: symbolFromFile(p), candles: f.candles, interval_ms: f.interval_ms };
  });
}

export class ReplayFeed implements Feed {
  readonly name = 'replay';
  private sink: ((tick: Tick) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private cursors: number[] = [];
  private pending: Tick[][] = [];
  private shift = 0;
  private wall0 = 0;
  private data0 = 0;
  private finish: () => void = () => {};
  /** Resolves when the last candle has been played (never, with loop) or the feed is stopped. */
  readonly done: Promise<void>;
  emitted = 0;

  constructor(private readonly opts: ReplayOptions) {
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  async start(sink: (tick: Tick) => void): Promise<void> {
    if (this.sink) return;
    this.sink = sink;
    this.cursors = this.opts.series.map(() => 0);
    this.pending = this.opts.series.map(() => []);
    const first = this.peek();
    if (!first) return this.end();
    this.wall0 = Date.now();
    this.data0 = first.tick.time;
    this.pump();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.sink = null;
    this.finish();
  }

  /** The series whose next tick is earliest, refilling its queue from the next candle when empty. */
  private peek(): { i: number; tick: Tick } | null {
    let best: { i: number; tick: Tick } | null = null;
    this.opts.series.forEach((s, i) => {
      if (this.pending[i].length === 0 && this.cursors[i] < s.candles.length) {
        this.pending[i] = candleTicks(s.symbol, s.candles[this.cursors[i]++], s.interval_ms, this.shift);
      }
      const t = this.pending[i][0];
      if (t && (!best || t.time < best.tick.time)) best = { i, tick: t };
    });
    return best;
  }

  private pump = (): void => {
    this.timer = null;
    const max = this.opts.batch_ticks_max ?? 5000;
    const speed = this.opts.speed ?? 1;
    for (let n = 0; this.sink; n++) {
      let next = this.peek();
      if (!next && this.opts.loop) {
        this.restart();
        next = this.peek();
      }
      if (!next) return this.end();
      const delay = this.wall0 + (next.tick.time - this.data0) / speed - Date.now();
      if (delay > 0 || n >= max) {
        this.timer = setTimeout(this.pump, Math.max(0, delay));
        return;
      }
      this.pending[next.i].shift();
      this.emitted++;
      this.sink(next.tick);
    }
  };

  private restart(): void {
    const all = this.opts.series.flatMap((s) => (s.candles.length ? [s.candles[0].time, s.candles[s.candles.length - 1].time + s.interval_ms] : []));
    if (all.length === 0) return;
    this.shift += Math.max(...all) - Math.min(...all);
    this.cursors = this.opts.series.map(() => 0);
  }

  private end(): void {
    this.sink = null;
    this.finish();
  }
}
