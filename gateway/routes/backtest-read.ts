import { ApiError } from '../../schemas/errors.js';
import * as S from '../../schemas/backtest.js';
import { LIMITS } from '../../schemas/limits.js';
import { fmt, money } from '../../engine/core/money.js';
import { positionsOf, sumBalances } from '../../engine/core/portfolio.js';
import { backtestResults } from '../../engine/core/backtest.js';
import { candlesUpTo, closedSlot } from '../../engine/core/series.js';
import type { Engine } from '../../engine/system.js';
import type { Principal } from '../../engine/identity/types.js';
import { route } from '../router.js';
import { caller } from './helpers.js';
import { B } from './backtest.js';
import { iso, intervalMs, itemOut, portfolioOut, snapshotOut, sourceOfRow, sourceOfSession } from './backtest-views.js';

/** Reads of a backtest: market data and the account at the virtual clock, results, lists and comparisons. */

const DAY_MS = 86_400_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The session at its clock and the index of `raw` among its pairs (400 INVALID_SYMBOL when it is not one). */
async function atClock(engine: Engine, p: Principal, id: string, raw: string) {
  const v = await engine.backtests.view(p, id);
  const symbol = raw.trim().toUpperCase();
  const sym = v.session.config.pairs.indexOf(symbol);
  if (sym < 0) throw new ApiError('INVALID_SYMBOL', `${symbol} is not a pair of this backtest.`, { symbol, pairs: v.session.config.pairs });
  const series = v.session.series;
  return { ...v, symbol, sym, series, j: series ? closedSlot(series, v.virtual_time) : -1 };
}

const sessionRoute = { auth: 'any', group: 'backtest', tag: 'backtest', params: S.SessionParams } as const;
const symbolRoute = { auth: 'any', group: 'backtest', tag: 'backtest', params: S.SessionSymbolParams } as const;

export const backtestReadRoutes = [
  route({
    method: 'GET', path: `${B}/{session_id}/market/price/{symbol}`, ...symbolRoute,
    summary: 'Last close known at the virtual clock.',
    async handler({ params, principal, engine }) {
      const v = await atClock(engine, caller(principal), params.session_id, params.symbol);
      return { symbol: v.symbol, price: v.prices[v.symbol] ?? null, virtual_time: iso(v.virtual_time) };
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/market/prices`, ...sessionRoute,
    summary: 'Last closes of every pair of the session at the virtual clock.',
    async handler({ params, principal, engine }) {
      const v = await engine.backtests.view(caller(principal), params.session_id);
      return { prices: v.prices, virtual_time: iso(v.virtual_time) };
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/market/ticker/{symbol}`, ...symbolRoute,
    summary: '24 h statistics over the candles closed in the 24 h before the virtual clock.',
    async handler({ params, principal, engine }) {
      const v = await atClock(engine, caller(principal), params.session_id, params.symbol);
      const window = v.series ? candlesUpTo(v.series, v.sym, v.j, v.series.interval_ms, Math.ceil(DAY_MS / v.series.interval_ms)).filter((c) => c.time + v.series!.interval_ms > v.virtual_time - DAY_MS) : [];
      if (window.length === 0) return { symbol: v.symbol, error: 'No data available', virtual_time: iso(v.virtual_time) };
      const open = money(window[0].open);
      const close = money(window[window.length - 1].close);
      const change = close.minus(open);
      return {
        symbol: v.symbol, open: fmt(open), high: fmt(window.reduce((m, c) => (money(c.high).gt(m) ? money(c.high) : m), money(window[0].high))),
        low: fmt(window.reduce((m, c) => (money(c.low).lt(m) ? money(c.low) : m), money(window[0].low))), close: fmt(close),
        volume: fmt(window.reduce((s, c) => s.plus(c.volume), money(0))), trade_count: 0, price_change: fmt(change), change: fmt(change),
        price_change_pct: change.div(open).times(100).toFixed(2), change_pct: fmt(change.div(open).times(100)), virtual_time: iso(v.virtual_time),
      };
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/market/candles/{symbol}`, ...symbolRoute, query: S.CandlesQuery,
    summary: 'The newest `limit` candles that closed by the virtual clock, oldest first; interval is a multiple of the session\'s (label or seconds).',
    async handler({ params, query, principal, engine }) {
      const v = await atClock(engine, caller(principal), params.session_id, params.symbol);
      const step = v.session.config.candle_interval * 1000;
      const ms = intervalMs(query.interval, step, 'interval');
      if (ms % step !== 0) throw new ApiError('VALIDATION_ERROR', `interval must be a multiple of the session's ${step / 1000} s candles.`, { field: 'interval' });
      const candles = v.series ? candlesUpTo(v.series, v.sym, v.j, ms, query.limit ?? LIMITS.backtest_candles_page_default) : [];
      return {
        symbol: v.symbol, interval: query.interval ?? String(step / 1000), virtual_time: iso(v.virtual_time),
        candles: candles.map((c) => ({ bucket: iso(c.time), time: iso(c.time), open: c.open, high: c.high, low: c.low, close: c.close, volume: fmt(c.volume), trade_count: 0 })),
        count: candles.length,
      };
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/account/balance`, ...sessionRoute,
    summary: 'Balances of the backtest wallet (available, locked, total) and equity at the last closes.',
    async handler({ params, principal, engine }) {
      const v = await engine.backtests.view(caller(principal), params.session_id);
      return { balances: sumBalances([v.session.sim.wallet]), total_equity: v.portfolio.total_equity, virtual_time: iso(v.virtual_time) };
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/account/positions`, ...sessionRoute,
    summary: 'Open positions valued at the last closes.',
    async handler({ params, principal, engine }) {
      const v = await engine.backtests.view(caller(principal), params.session_id);
      return { positions: positionsOf(v.session.sim.wallet, (s) => v.prices[s]), virtual_time: iso(v.virtual_time) };
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/account/portfolio`, ...sessionRoute,
    summary: 'Cash, positions, realized and unrealized PnL at the virtual clock.',
    async handler({ params, principal, engine }) {
      const v = await engine.backtests.view(caller(principal), params.session_id);
      return { ...portfolioOut(v.portfolio), starting_balance: v.portfolio.starting_balance, virtual_time: iso(v.virtual_time) };
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/status`, ...sessionRoute,
    summary: 'The session: status, progress, virtual clock and (once finished) its headline results.',
    async handler({ params, principal, engine }) {
      return itemOut(sourceOfSession(await engine.backtests.get(caller(principal), params.session_id)));
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/results`, ...sessionRoute,
    summary: 'Configuration, summary, metrics (engine/core/metrics convention) and per-pair figures; before the end they are computed on what has run so far.',
    async handler({ params, principal, engine }) {
      const s = await engine.backtests.get(caller(principal), params.session_id);
      const r = s.results ?? backtestResults(s.config.starting_balance, s.snapshots, s.trades, s.started_at ? Date.now() - Date.parse(s.started_at) : 0);
      const { start_time, end_time, starting_balance, candle_interval, pairs, strategy_label, fee_rate } = s.config;
      return {
        session_id: s.id, agent_id: s.agent_id, status: s.status, final: s.results !== null, final_equity: r.summary.final_equity,
        config: { start_time, end_time, starting_balance, candle_interval, pairs, strategy_label, fee_rate }, summary: r.summary, metrics: r.metrics, by_pair: r.by_pair,
      };
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/results/equity-curve`, ...sessionRoute, query: S.EquityQuery,
    summary: 'Equity snapshots (hourly, after each fill, at start and end); interval=N keeps every Nth and always the last.',
    async handler({ params, query, principal, engine }) {
      const s = await engine.backtests.get(caller(principal), params.session_id);
      const every = query.interval ?? 1;
      const kept = s.snapshots.filter((_, i) => i % every === 0 || i === s.snapshots.length - 1);
      return { session_id: s.id, interval: String(every), snapshots: kept.map(snapshotOut), count: kept.length };
    },
  }),
  route({
    method: 'GET', path: `${B}/{session_id}/results/trades`, ...sessionRoute, query: S.PageQuery,
    summary: 'Fills in the order they happened; `total` counts them all.',
    async handler({ params, query, principal, engine }) {
      const s = await engine.backtests.get(caller(principal), params.session_id);
      const limit = query.limit ?? LIMITS.backtest_trades_page_default;
      const offset = query.offset ?? 0;
      const trades = s.trades.slice(offset, offset + limit).map((t) => {
        const o = s.orders.get(t.order_id);
        return { id: t.trade_id, ...t, type: o?.type ?? 'market', stop_price: o && o.type !== 'market' && o.type !== 'limit' ? o.price : null, slippage_pct: o?.slippage_pct ?? null, realized_pnl: t.realized_pnl ?? fmt(0), simulated_at: t.executed_at };
      });
      return { session_id: s.id, trades, total: s.trades.length, limit, offset };
    },
  }),
  route({
    method: 'GET', path: `${B}/list`, auth: 'any', group: 'backtest', tag: 'backtest', query: S.ListQuery,
    summary: 'The caller\'s sessions (an agent key or X-Agent-Id sees only that agent\'s); `total` counts every match.',
    async handler({ query, principal, engine }) {
      const limit = query.limit ?? LIMITS.backtests_page_default;
      const offset = query.offset ?? 0;
      const f = { agent_id: query.agent_id ?? null, strategy_label: query.strategy_label ?? null, status: query.status ?? null, ids: null };
      const { rows, total } = await engine.backtests.list(caller(principal), f, query.sort_by ?? 'created_at', limit, offset);
      return { backtests: rows.map((r) => itemOut(sourceOfRow(r))), total, limit, offset };
    },
  }),
  route({
    method: 'GET', path: `${B}/compare`, auth: 'any', group: 'backtest', tag: 'backtest', query: S.CompareQuery,
    summary: 'Side-by-side metrics of 2 or more sessions, with the best by ROI, Sharpe and (lowest) drawdown.',
    async handler({ query, principal, engine }) {
      const ids = [...new Set(query.sessions.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean))];
      if (ids.length < LIMITS.compare_sessions_min || ids.length > LIMITS.compare_sessions_max || !ids.every((id) => UUID.test(id))) {
        throw new ApiError('VALIDATION_ERROR', `sessions must list ${LIMITS.compare_sessions_min} to ${LIMITS.compare_sessions_max} session ids, comma-separated.`, { field: 'sessions' });
      }
      const { rows } = await engine.backtests.list(caller(principal), { agent_id: null, strategy_label: null, status: null, ids }, 'created_at', ids.length, 0);
      const missing = ids.filter((id) => !rows.some((r) => r.id === id));
      if (missing.length) throw new ApiError('BACKTEST_NOT_FOUND', `Backtest sessions not found: ${missing.join(', ')}.`, { missing });
      const comparisons = ids.map((id) => itemOut(sourceOfRow(rows.find((r) => r.id === id)!))).map((x) => ({
        session_id: x.session_id, strategy_label: x.strategy_label, status: x.status, roi_pct: x.roi_pct, total_pnl: x.total_pnl, sharpe_ratio: x.sharpe_ratio,
        sortino_ratio: x.sortino_ratio, max_drawdown_pct: x.max_drawdown_pct, total_trades: x.total_trades, win_rate: x.win_rate, profit_factor: x.profit_factor,
      }));
      const best = (key: 'roi_pct' | 'sharpe_ratio' | 'max_drawdown_pct', lowest = false) => {
        const ranked = comparisons.filter((c) => c[key] !== null).sort((a, b) => money(b[key]!).comparedTo(a[key]!) * (lowest ? -1 : 1));
        return ranked[0]?.session_id ?? null;
      };
      const bySharpe = best('sharpe_ratio');
      return { comparisons, best_by_roi: best('roi_pct'), best_by_sharpe: bySharpe, best_by_drawdown: best('max_drawdown_pct', true), recommendation: bySharpe ?? best('roi_pct') };
    },
  }),
  route({
    method: 'GET', path: `${B}/best`, auth: 'any', group: 'backtest', tag: 'backtest', query: S.BestQuery,
    summary: `The completed session that is best by metric (${S.BEST_METRICS.join(', ')}; default roi_pct; for max_drawdown_pct the lowest).`,
    async handler({ query, principal, engine }) {
      const metric = query.metric ?? 'roi_pct';
      if (!(S.BEST_METRICS as readonly string[]).includes(metric)) throw new ApiError('VALIDATION_ERROR', `metric must be one of ${S.BEST_METRICS.join(', ')}.`, { field: 'metric' });
      const f = { agent_id: null, strategy_label: query.strategy_label ?? null, status: 'completed', ids: null };
      const [row] = (await engine.backtests.list(caller(principal), f, metric, 1, 0)).rows;
      if (!row?.results) throw new ApiError('BACKTEST_NOT_FOUND', 'No completed backtest to rank.', { metric });
      const m = row.results.metrics as unknown as Record<string, string | number | null>;
      const value = metric === 'total_trades' ? String(row.results.summary.total_trades) : m[metric];
      return { session_id: row.id, strategy_label: row.config.strategy_label, metric, value: value === null ? null : String(value) };
    },
  }),
];
