/** Market data as the engine sees it. Prices and quantities are decimal strings; times are epoch ms. */
export interface Pair {
  symbol: string;
  base_asset: string;
  quote_asset: string;
  status: 'active' | 'inactive';
  min_qty: string;
  step_size: string;
  min_notional: string;
}

export interface Tick {
  symbol: string;
  price: string;
  quantity: string;
  /** Trade time, epoch ms. */
  time: number;
  is_buyer_maker?: boolean;
  trade_id?: number;
}

export interface Ticker {
  symbol: string;
  open: string;
  high: string;
  low: string;
  close: string;
  /** Base-asset volume over the rolling 24 h window. */
  volume: string;
  quote_volume: string;
  change: string;
  change_pct: string;
  trade_count: number;
  timestamp: number;
}

/** The engine's read and write port on market data; implemented by engine/market/book.ts. */
export interface MarketData {
  pairs(): Pair[];
  pair(symbol: string): Pair | undefined;
  /** Latest price and its time, or undefined before the first tick. */
  price(symbol: string): { price: string; time: number } | undefined;
  /** Rolling 24 h ticker (a true window, not since start), or undefined before the first tick. */
  ticker(symbol: string): Ticker | undefined;
  /** Feeds push every trade here; listeners run synchronously in arrival order. */
  ingest(tick: Tick): void;
  onTick(listener: (tick: Tick) => void): () => void;
}

/** A source of ticks (Binance stream, replayed candles, seeded synthetic). */
export interface Feed {
  readonly name: string;
  start(sink: (tick: Tick) => void): Promise<void>;
  stop(): Promise<void>;
}
