import type { Decimal } from 'decimal.js';
import { fmt, money } from '../../core/money.js';
import { hash32, intIn, mulberry32 } from '../prng.js';
import type { Feed, Tick } from '../types.js';

/**
 * A seeded random walk: works offline, and the same seed always gives the same ticks, so demos and
 * tests are reproducible. All price arithmetic is decimal; the PRNG only picks integers.
 */

/** Rough mid-2025 prices, so a synthetic market looks like the real one. */
export const DEFAULT_PRICES: Readonly<Record<string, string>> = {
  BTCUSDT: '104000', ETHUSDT: '2500', SOLUSDT: '150', BNBUSDT: '650', XRPUSDT: '2.2', ADAUSDT: '0.65',
  DOGEUSDT: '0.18', DOTUSDT: '4', LTCUSDT: '88', LINKUSDT: '14', AVAXUSDT: '20', TRXUSDT: '0.27',
  POLUSDT: '0.22', ATOMUSDT: '4.3', UNIUSDT: '7', XLMUSDT: '0.27', ETCUSDT: '17', FILUSDT: '2.6',
  NEARUSDT: '2.3', APTUSDT: '4.8', ARBUSDT: '0.35', OPUSDT: '0.6', SUIUSDT: '3', BCHUSDT: '450',
  INJUSDT: '12', SHIBUSDT: '0.000012',
};

export interface SyntheticOptions {
  seed?: number | string;
  /** Symbols to tick; default: those with a starting price. */
  symbols?: string[];
  /** Starting prices; merged over DEFAULT_PRICES. */
  prices?: Record<string, string>;
  /** Wall-clock time between rounds (one tick per symbol per round). */
  interval_ms?: number;
  /** Largest move per tick, in parts per million of the price; default 1000 = 0.1 %. */
  step_ppm_max?: number;
  /** No timer: ticks are emitted only by step(); times start at start_time and advance by interval_ms. */
  manual?: boolean;
  start_time?: number;
}

/** Decimal places a price keeps, by magnitude (like an exchange's tick size). */
function places(p: Decimal): number {
  if (p.gte(1000)) return 2;
  if (p.gte(1)) return 4;
  if (p.gte('0.01')) return 6;
  return 8;
}

export class SyntheticWalk {
  private readonly rand: () => number;
  private readonly prices = new Map<string, Decimal>();
  private tradeId = 0;

  constructor(readonly symbols: string[], start: Record<string, string>, seed: number | string, private readonly stepPpm = 1000) {
    this.rand = mulberry32(typeof seed === 'number' ? seed : hash32(seed));
    for (const s of symbols) this.prices.set(s, money(start[s] ?? '1'));
  }

  /** One tick per symbol, all at `time`. */
  round(time: number): Tick[] {
    return this.symbols.map((symbol) => {
      const old = this.prices.get(symbol)!;
      const move = intIn(this.rand(), -this.stepPpm, this.stepPpm);
      let next = old.times(money(1_000_000 + move).div(1_000_000)).toDecimalPlaces(places(old));
      if (next.lte(0)) next = old;
      this.prices.set(symbol, next);
      // Trade size worth 10 to 5000 USDT, like typical retail prints.
      const notional = money(intIn(this.rand(), 10, 5000));
      return {
        symbol, price: fmt(next), quantity: fmt(notional.div(next)), time,
        is_buyer_maker: (this.rand() & 1) === 1, trade_id: ++this.tradeId,
      };
    });
  }
}

export class SyntheticFeed implements Feed {
  readonly name = 'synthetic';
  private readonly walk: SyntheticWalk;
  private readonly interval_ms: number;
  private timer: NodeJS.Timeout | null = null;
  private sink: ((tick: Tick) => void) | null = null;
  private clock: number;

  constructor(private readonly opts: SyntheticOptions = {}) {
    const prices = { ...DEFAULT_PRICES, ...opts.prices };
    const symbols = opts.symbols ?? Object.keys(prices);
    this.walk = new SyntheticWalk(symbols, prices, opts.seed ?? 42, opts.step_ppm_max);
    this.interval_ms = opts.interval_ms ?? 1000;
    this.clock = opts.start_time ?? Date.now();
  }

  get symbols(): string[] {
    return this.walk.symbols;
  }

  async start(sink: (tick: Tick) => void): Promise<void> {
    this.sink = sink;
    if (this.opts.manual || this.timer) return;
    this.timer = setInterval(() => this.emit(Date.now()), this.interval_ms);
    this.emit(Date.now());
  }

  /** Manual mode: emits `rounds` rounds, each interval_ms after the previous; returns the ticks. */
  step(rounds = 1): Tick[] {
    const out: Tick[] = [];
    for (let i = 0; i < rounds; i++) {
      out.push(...this.emit(this.clock));
      this.clock += this.interval_ms;
    }
    return out;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sink = null;
  }

  private emit(time: number): Tick[] {
    const ticks = this.walk.round(time);
    if (this.sink) for (const t of ticks) this.sink(t);
    return ticks;
  }
}
