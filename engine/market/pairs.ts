import { money } from '../core/money.js';
import type { Pair } from './types.js';

/**
 * Tradable pairs: a built-in list so a fresh install (and every test) works offline, and a parser for
 * Binance's exchangeInfo so the list can be refreshed from the real exchange.
 */

/** [symbol, min_qty, step_size, min_notional] as Binance publishes them for spot USDT markets. */
const BUILTIN: ReadonlyArray<readonly [string, string, string, string]> = [
  ['BTCUSDT', '0.00001', '0.00001', '5'],
  ['ETHUSDT', '0.0001', '0.0001', '5'],
  ['SOLUSDT', '0.001', '0.001', '5'],
  ['BNBUSDT', '0.001', '0.001', '5'],
  ['XRPUSDT', '0.1', '0.1', '5'],
  ['ADAUSDT', '0.1', '0.1', '5'],
  ['DOGEUSDT', '1', '1', '1'],
  ['DOTUSDT', '0.01', '0.01', '5'],
  ['LTCUSDT', '0.001', '0.001', '5'],
  ['LINKUSDT', '0.01', '0.01', '5'],
  ['AVAXUSDT', '0.01', '0.01', '5'],
  ['TRXUSDT', '0.1', '0.1', '1'],
  // MATIC was renamed POL on Binance in 2024; only POLUSDT still trades.
  ['POLUSDT', '0.1', '0.1', '1'],
  ['ATOMUSDT', '0.01', '0.01', '5'],
  ['UNIUSDT', '0.01', '0.01', '1'],
  ['XLMUSDT', '1', '1', '1'],
  ['ETCUSDT', '0.01', '0.01', '5'],
  ['FILUSDT', '0.01', '0.01', '5'],
  ['NEARUSDT', '0.1', '0.1', '5'],
  ['APTUSDT', '0.01', '0.01', '5'],
  ['ARBUSDT', '0.1', '0.1', '5'],
  ['OPUSDT', '0.01', '0.01', '5'],
  ['SUIUSDT', '0.1', '0.1', '5'],
  ['BCHUSDT', '0.001', '0.001', '5'],
  ['INJUSDT', '0.01', '0.01', '5'],
  ['SHIBUSDT', '1', '1', '5'],
];

export const QUOTE_ASSET = 'USDT';

export const BUILTIN_PAIRS: ReadonlyArray<Pair> = BUILTIN.map(([symbol, min_qty, step_size, min_notional]) => ({
  symbol, base_asset: symbol.slice(0, -QUOTE_ASSET.length), quote_asset: QUOTE_ASSET, status: 'active',
  min_qty, step_size, min_notional,
}));

const DECIMAL = /^\d+(\.\d+)?$/;

/** Binance writes "0.00001000"; the engine keeps the shortest plain form. Absent or odd values become "0". */
function dec(v: unknown): string {
  return typeof v === 'string' && DECIMAL.test(v) ? money(v).toFixed() : '0';
}

type Filter = { filterType?: unknown; minQty?: unknown; stepSize?: unknown; minNotional?: unknown };

/** Keeps USDT pairs whose status is TRADING; LOT_SIZE gives min_qty/step_size, NOTIONAL or MIN_NOTIONAL min_notional. */
export function parseExchangeInfo(json: unknown): Pair[] {
  const symbols = (json as { symbols?: unknown } | null)?.symbols;
  if (!Array.isArray(symbols)) throw new Error('exchangeInfo: no "symbols" array');
  const out: Pair[] = [];
  for (const s of symbols as Array<Record<string, unknown>>) {
    if (!s || s.status !== 'TRADING' || s.quoteAsset !== QUOTE_ASSET) continue;
    if (typeof s.symbol !== 'string' || typeof s.baseAsset !== 'string') continue;
    const filters = (Array.isArray(s.filters) ? s.filters : []) as Filter[];
    const lot = filters.find((f) => f?.filterType === 'LOT_SIZE');
    const notional = filters.find((f) => f?.filterType === 'NOTIONAL') ?? filters.find((f) => f?.filterType === 'MIN_NOTIONAL');
    out.push({
      symbol: s.symbol.toUpperCase(), base_asset: s.baseAsset.toUpperCase(), quote_asset: QUOTE_ASSET, status: 'active',
      min_qty: dec(lot?.minQty), step_size: dec(lot?.stepSize), min_notional: dec(notional?.minNotional),
    });
  }
  return out.sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
}

export const BINANCE_EXCHANGE_INFO_URL = 'https://api.binance.com/api/v3/exchangeInfo';

/** Downloads and parses exchangeInfo; throws on a network error, a non-2xx answer or a body without symbols. */
export async function fetchBinancePairs(url: string = BINANCE_EXCHANGE_INFO_URL, timeout_ms = 10_000): Promise<Pair[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeout_ms), headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`exchangeInfo: HTTP ${res.status}`);
  return parseExchangeInfo(await res.json());
}
