import { Type } from '@sinclair/typebox';
import { AmountOut, Nullable, Timestamp } from './common.js';
import { LIMITS as L } from './limits.js';

/** Requests and responses of /api/v1/market (public market data). */

/** A price older than this is reported as stale by /prices. */
export const PRICE_STALE_SECONDS = 60;

export const SymbolParams = Type.Object({ symbol: Type.String({ minLength: 1, maxLength: L.path_symbol_chars_max, description: 'Pair symbol, e.g. BTCUSDT (case-insensitive)' }) });
export const SymbolsQuery = Type.Object({
  symbols: Type.Optional(Type.String({ maxLength: L.query_list_chars_max, description: 'Comma-separated symbols, e.g. BTCUSDT,ETHUSDT' })),
});
export const PairsQuery = Type.Object({ status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('inactive')])) });
export const Interval = Type.Union([Type.Literal('1m'), Type.Literal('5m'), Type.Literal('1h'), Type.Literal('1d')]);
export const CandlesQuery = Type.Object({
  interval: Type.Optional(Interval),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.market_candles_page_max })),
  start_time: Type.Optional(Type.String({ description: 'ISO time; candles opening at or after it' })),
  end_time: Type.Optional(Type.String({ description: 'ISO time; candles opening at or before it' })),
});
export const TradesQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.market_trades_page_max })) });
export const OrderbookQuery = Type.Object({ depth: Type.Optional(Type.Union([Type.Literal(5), Type.Literal(10), Type.Literal(20)])) });

export const PairOut = Type.Object({
  symbol: Type.String(), base_asset: Type.String(), quote_asset: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('inactive')]),
  min_qty: AmountOut, step_size: AmountOut, min_notional: AmountOut, has_price: Type.Boolean(),
});
export const PairsResponse = Type.Object({ pairs: Type.Array(PairOut), total: Type.Integer() });

export const PriceOut = Type.Object({ symbol: Type.String(), price: AmountOut, timestamp: Timestamp });
export const PricesResponse = Type.Object({
  prices: Type.Array(PriceOut), count: Type.Integer(), timestamp: Timestamp,
  stale: Type.Boolean(), data_age_seconds: Nullable(Type.Number()),
});

export const TickerOut = Type.Object({
  symbol: Type.String(), open: AmountOut, high: AmountOut, low: AmountOut, close: AmountOut, volume: AmountOut,
  quote_volume: AmountOut, change: AmountOut, change_pct: AmountOut, trade_count: Type.Integer(), timestamp: Timestamp,
});
export const TickersResponse = Type.Object({ tickers: Type.Record(Type.String(), TickerOut), count: Type.Integer(), timestamp: Timestamp });

export const CandleOut = Type.Object({
  time: Timestamp, open: AmountOut, high: AmountOut, low: AmountOut, close: AmountOut, volume: AmountOut,
  quote_volume: AmountOut, trade_count: Type.Integer(),
});
export const CandlesResponse = Type.Object({ symbol: Type.String(), interval: Interval, candles: Type.Array(CandleOut), count: Type.Integer() });

export const TradeOut = Type.Object({
  trade_id: Type.Integer(), price: AmountOut, quantity: AmountOut, time: Timestamp, is_buyer_maker: Type.Boolean(),
});
export const TradesResponse = Type.Object({ symbol: Type.String(), trades: Type.Array(TradeOut), count: Type.Integer() });

const Level = Type.Tuple([AmountOut, AmountOut], { description: '[price, quantity]' });
export const OrderbookResponse = Type.Object({
  symbol: Type.String(), bids: Type.Array(Level), asks: Type.Array(Level), depth: Type.Integer(), timestamp: Timestamp,
});
