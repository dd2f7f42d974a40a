import { Type } from '@sinclair/typebox';
import { ApiError } from '../../schemas/errors.js';
import * as S from '../../schemas/market.js';
import { LIMITS as L } from '../../schemas/limits.js';
import { fmt } from '../../engine/core/money.js';
import { simulatedDepth } from '../../engine/market/depth.js';
import { dataRange, intervalMs } from '../../engine/store/candles-repo.js';
import type { Ticker } from '../../engine/market/types.js';
import type { Engine } from '../../engine/system.js';
import { route } from '../router.js';
import { P } from './helpers.js';

/** Public market data (no credentials): a translation of the in-memory PriceBook to the wire format. */

const M = `${P}/market`;
const isoMs = (ms: number) => new Date(ms).toISOString();

/** Upper-cased symbol of a known pair, else 400 INVALID_SYMBOL. */
function knownSymbol(engine: Engine, raw: string): string {
  const symbol = raw.trim().toUpperCase();
  if (!engine.market.pair(symbol)) throw new ApiError('INVALID_SYMBOL', `Unknown trading pair: ${symbol}.`, { symbol });
  return symbol;
}

function latest(engine: Engine, symbol: string): { price: string; time: number } {
  const p = engine.market.price(symbol);
  if (!p) throw new ApiError('PRICE_NOT_AVAILABLE', `No price for ${symbol} yet.`, { symbol });
  return p;
}

/** `?symbols=a, B` → unique upper-cased names, or null when absent. */
function symbolList(raw: string | undefined): string[] | null {
  if (raw === undefined) return null;
  return [...new Set(raw.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean))];
}

const tickerOut = (t: Ticker) => ({
  symbol: t.symbol, open: fmt(t.open), high: fmt(t.high), low: fmt(t.low), close: fmt(t.close), volume: fmt(t.volume),
  quote_volume: fmt(t.quote_volume), change: fmt(t.change), change_pct: fmt(t.change_pct), trade_count: t.trade_count,
  timestamp: isoMs(t.timestamp),
});

function timeParam(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new ApiError('VALIDATION_ERROR', `${field} must be an ISO-8601 time.`, { field });
  return ms;
}

const NullableTime = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const IntervalRangeOut = Type.Object({
  interval: Type.String(), earliest: Type.String(), latest: Type.String(), count: Type.Integer(),
  gaps: Type.Integer({ description: 'Periods without a candle between earliest and latest' }),
});
const DataRangeResponse = Type.Object({
  earliest: NullableTime, latest: NullableTime, total_pairs: Type.Integer(), intervals_available: Type.Array(Type.String()),
  data_gaps: Type.Array(Type.Object({ symbol: Type.String(), interval: Type.String(), missing: Type.Integer() })),
  pairs: Type.Array(Type.Object({ symbol: Type.String(), intervals: Type.Array(IntervalRangeOut) })),
});

export const marketRoutes = [
  route({
    method: 'GET', path: `${M}/pairs`, auth: 'public', group: 'market', tag: 'market', query: S.PairsQuery, response: S.PairsResponse,
    summary: 'Tradable pairs with their order filters, ordered by symbol; `has_price` tells whether a price has arrived.',
    handler({ query, engine }) {
      const pairs = engine.market.pairs()
        .filter((p) => !query.status || p.status === query.status)
        .map((p) => ({
          symbol: p.symbol, base_asset: p.base_asset, quote_asset: p.quote_asset, status: p.status,
          min_qty: fmt(p.min_qty), step_size: fmt(p.step_size), min_notional: fmt(p.min_notional),
          has_price: engine.market.price(p.symbol) !== undefined,
        }));
      return { pairs, total: pairs.length };
    },
  }),
  route({
    method: 'GET', path: `${M}/price/{symbol}`, auth: 'public', group: 'market', tag: 'market', params: S.SymbolParams, response: S.PriceOut,
    summary: 'Latest price of one symbol.',
    handler({ params, engine }) {
      const symbol = knownSymbol(engine, params.symbol);
      const p = latest(engine, symbol);
      return { symbol, price: fmt(p.price), timestamp: isoMs(p.time) };
    },
  }),
  route({
    method: 'GET', path: `${M}/prices`, auth: 'public', group: 'market', tag: 'market', query: S.SymbolsQuery, response: S.PricesResponse,
    summary: 'Latest prices as a list of {symbol, price, timestamp}; `?symbols=` narrows it (unknown or unpriced symbols are skipped).',
    handler({ query, engine }) {
      const wanted = symbolList(query.symbols) ?? engine.market.pairs().map((p) => p.symbol);
      const prices = wanted.flatMap((symbol) => {
        const p = engine.market.price(symbol);
        return p ? [{ symbol, price: fmt(p.price), timestamp: isoMs(p.time) }] : [];
      }).sort((a, b) => (a.symbol < b.symbol ? -1 : 1));
      // Freshness follows BTCUSDT, the most traded pair; without it, the freshest price.
      const ref = engine.market.price('BTCUSDT')?.time
        ?? engine.market.pairs().reduce<number | undefined>((m, p) => Math.max(m ?? -Infinity, engine.market.price(p.symbol)?.time ?? -Infinity), undefined);
      const age = ref === undefined || !Number.isFinite(ref) ? null : Math.round((Date.now() - ref) / 100) / 10;
      return { prices, count: prices.length, timestamp: new Date().toISOString(), stale: age === null || age > S.PRICE_STALE_SECONDS, data_age_seconds: age };
    },
  }),
  route({
    method: 'GET', path: `${M}/ticker/{symbol}`, auth: 'public', group: 'market', tag: 'market', params: S.SymbolParams, response: S.TickerOut,
    summary: 'Rolling 24 h statistics (a true sliding window of one-minute buckets).',
    handler({ params, engine }) {
      const symbol = knownSymbol(engine, params.symbol);
      latest(engine, symbol);
      return tickerOut(engine.market.ticker(symbol)!);
    },
  }),
  route({
    method: 'GET', path: `${M}/tickers`, auth: 'public', group: 'market', tag: 'market', query: S.SymbolsQuery, response: S.TickersResponse,
    summary: `24 h tickers keyed by symbol; \`?symbols=\` (at most ${L.tickers_symbols_max}) or the first ${L.tickers_symbols_max} priced symbols. Symbols without data are skipped.`,
    handler({ query, engine }) {
      const wanted = symbolList(query.symbols);
      if (wanted && wanted.length > L.tickers_symbols_max) {
        throw new ApiError('VALIDATION_ERROR', `symbols: at most ${L.tickers_symbols_max} symbols.`, { field: 'symbols' });
      }
      const list = wanted ?? engine.market.pairs().map((p) => p.symbol).filter((s) => engine.market.price(s)).slice(0, L.tickers_symbols_max);
      const tickers: Record<string, ReturnType<typeof tickerOut>> = {};
      for (const symbol of list) {
        const t = engine.market.pair(symbol) && engine.market.ticker(symbol);
        if (t) tickers[symbol] = tickerOut(t);
      }
      return { tickers, count: Object.keys(tickers).length, timestamp: new Date().toISOString() };
    },
  }),
  route({
    method: 'GET', path: `${M}/candles/{symbol}`, auth: 'public', group: 'market', tag: 'market', params: S.SymbolParams, query: S.CandlesQuery,
    response: S.CandlesResponse,
    summary: 'OHLCV candles built from trades, oldest first: the newest `limit` (1m kept for the last 24 h; 5m, 1h, 1d derived from them).',
    handler({ params, query, engine }) {
      const symbol = knownSymbol(engine, params.symbol);
      const interval = query.interval ?? '1h';
      const range = { from: timeParam(query.start_time, 'start_time'), to: timeParam(query.end_time, 'end_time') };
      const candles = engine.market.candles(symbol, interval, query.limit ?? L.market_candles_page_default, range).map((c) => ({
        time: isoMs(c.time), open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume,
        quote_volume: c.quote_volume, trade_count: c.trade_count,
      }));
      return { symbol, interval, candles, count: candles.length };
    },
  }),
  route({
    method: 'GET', path: `${M}/trades/{symbol}`, auth: 'public', group: 'market', tag: 'market', params: S.SymbolParams, query: S.TradesQuery,
    response: S.TradesResponse,
    summary: 'Recent trades of the feed, newest first.',
    handler({ params, query, engine }) {
      const symbol = knownSymbol(engine, params.symbol);
      const trades = engine.market.trades(symbol, query.limit ?? L.market_trades_page_default).map((t) => ({
        trade_id: t.trade_id, price: t.price, quantity: t.quantity, time: isoMs(t.time), is_buyer_maker: t.is_buyer_maker,
      }));
      return { symbol, trades, count: trades.length };
    },
  }),
  route({
    method: 'GET', path: `${M}/orderbook/{symbol}`, auth: 'public', group: 'market', tag: 'market', params: S.SymbolParams, query: S.OrderbookQuery,
    response: S.OrderbookResponse,
    summary: 'A simulated order book around the last price (level i is i basis points away); bids highest first, asks lowest first.',
    handler({ params, query, engine }) {
      const symbol = knownSymbol(engine, params.symbol);
      const p = latest(engine, symbol);
      const depth = query.depth ?? 10;
      return { symbol, ...simulatedDepth(p.price, depth), depth, timestamp: isoMs(p.time) };
    },
  }),
  route({
    method: 'GET', path: `${M}/data-range`, auth: 'public', group: 'market', tag: 'market', response: DataRangeResponse,
    summary: 'Stored historical candles (imported, downloaded or recorded live): first and last open time overall and per symbol and interval, with missing periods. Empty store: nulls.',
    async handler({ engine }) {
      const r = await dataRange(engine.db);
      const intervals = new Set(r.pairs.flatMap((p) => p.intervals.map((i) => i.interval)));
      return {
        earliest: r.earliest, latest: r.latest, total_pairs: r.pairs.length,
        intervals_available: [...intervals].sort((a, b) => (intervalMs(a) ?? 0) - (intervalMs(b) ?? 0)),
        data_gaps: r.pairs.flatMap((p) => p.intervals.filter((i) => i.gaps > 0).map((i) => ({ symbol: p.symbol, interval: i.interval, missing: i.gaps }))),
        pairs: r.pairs,
      };
    },
  }),
];
