import type { Logger } from '../../log.js';
import type { Feed, Tick } from '../types.js';
import { BinanceFeed } from './binance.js';
import { ReplayFeed, seriesFromFiles } from './replay.js';
import { DEFAULT_PRICES, SyntheticFeed } from './synthetic.js';

/** Picks the price source from configuration, with a loud fallback when the live exchange is out of reach. */

export const FEED_NAMES = ['binance', 'synthetic', 'replay', 'none'] as const;
export type FeedName = (typeof FEED_NAMES)[number];

export interface FeedOptions {
  /** Symbols the engine knows (the book's pairs). */
  symbols: string[];
  /** binance: stream base URL (default Binance's public one). */
  url?: string | null;
  /** synthetic (and the binance fallback): PRNG seed. */
  seed?: number | string;
  /** replay: candle CSV files, one symbol each. */
  files?: string[];
  /** replay: speed multiplier. */
  speed?: number;
  /** binance: how long the first connection may take before falling back to synthetic. */
  fallback_after_ms?: number;
  backoff_base_ms?: number;
  log?: Logger;
}

class NoFeed implements Feed {
  readonly name = 'none';
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}

/** Runs `primary`; if its start fails, logs a warning and runs `fallback` instead. */
export class FallbackFeed implements Feed {
  private active: Feed;
  private stopped = false;

  constructor(private readonly primary: Feed, private readonly fallback: () => Feed, private readonly log?: Logger) {
    this.active = primary;
  }

  get name(): string {
    return this.active.name;
  }

  async start(sink: (tick: Tick) => void): Promise<void> {
    this.stopped = false;
    try {
      await this.primary.start(sink);
    } catch (err) {
      await this.primary.stop();
      if (this.stopped) return;
      this.active = this.fallback();
      this.log?.warn('feed.fallback', {
        message: `${this.primary.name} feed unreachable: SERVING SYNTHETIC PRICES, NOT REAL MARKET DATA`,
        from: this.primary.name, to: this.active.name, reason: (err as Error).message,
      });
      await this.active.start(sink);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.active.stop();
  }
}

export function createFeed(name: FeedName, opts: FeedOptions): Feed {
  const synthetic = () => new SyntheticFeed({ seed: opts.seed, symbols: opts.symbols.filter((s) => s in DEFAULT_PRICES) });
  switch (name) {
    case 'none':
      return new NoFeed();
    case 'synthetic':
      return synthetic();
    case 'replay':
      if (!opts.files?.length) throw new Error('FEED=replay needs FEED_FILE (one or more candle CSV paths, comma-separated)');
      return new ReplayFeed({ series: seriesFromFiles(opts.files), speed: opts.speed });
    case 'binance': {
      const live = new BinanceFeed({
        symbols: opts.symbols, base: opts.url ?? undefined, log: opts.log,
        connect_timeout_ms: opts.fallback_after_ms ?? 5000, backoff_base_ms: opts.backoff_base_ms,
      });
      return new FallbackFeed(live, synthetic, opts.log);
    }
  }
}
