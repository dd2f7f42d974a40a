import { BACKTEST_TUNING } from '../../schemas/backtest.js';
import type { Pair } from '../market/types.js';
import { computeMetrics, type Metrics } from './metrics.js';
import { fmt, money } from './money.js';
import { portfolioOf, type PortfolioView } from './portfolio.js';
import { priceOf, virtualTime, type SimConfig, type SimState, type Snapshot } from './sim.js';
import type { Series } from './series.js';
import type { OrderRec, TradeRec } from './wallet.js';

/** A backtest session as the actor holds it and the store saves it; the rules live in sim.ts. */
export type BacktestStatus = 'created' | 'running' | 'completed' | 'cancelled' | 'failed';

export interface BacktestConfig {
  start_time: string;
  end_time: string;
  starting_balance: string;
  /** Seconds. */
  candle_interval: number;
  pairs: string[];
  strategy_label: string;
  fee_rate: string;
  exchange: string;
}

export type LogEntry = { kind: 'order'; body: OrderRec } | { kind: 'trade'; body: TradeRec } | { kind: 'snapshot'; body: Snapshot };

export interface Session {
  id: string;
  account_id: string;
  agent_id: string | null;
  status: BacktestStatus;
  config: BacktestConfig;
  total_steps: number;
  /** Set at start (and on restore) together with the candles. */
  cfg: SimConfig | null;
  series: Series | null;
  sim: SimState;
  /** Every order of the session by id, in placement order. */
  orders: Map<string, OrderRec>;
  trades: TradeRec[];
  snapshots: Snapshot[];
  unsaved: LogEntry[];
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  results: BacktestResults | null;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** History loaded before start_time: at least a day (the 24 h volume) and a page of candles. */
export const warmupSlots = (interval_ms: number): number => Math.max(Math.ceil(DAY_MS / interval_ms), BACKTEST_TUNING.warmup_slots_min);

/** The step configuration of a session; derived from its config and the pairs' filters, never stored. */
export function simConfig(s: Session, pairs: Pair[]): SimConfig {
  const step = s.config.candle_interval * 1000;
  return {
    session_id: s.id, fee_rate: s.config.fee_rate, start_ms: Date.parse(s.config.start_time), total_steps: s.total_steps, warmup: warmupSlots(step),
    snapshot_every: Math.max(1, Math.round(HOUR_MS / step)), pairs,
  };
}

/** What a client sees at the virtual clock: last closes and the portfolio valued at them. */
export interface ClockView {
  virtual_time: number;
  prices: Record<string, string>;
  portfolio: PortfolioView;
}

/** The view at the session's clock; before start there are no prices yet. Needs the series once started. */
export function clockView(s: Session): ClockView {
  if (!s.series || !s.cfg) return { virtual_time: Date.parse(s.config.start_time), prices: {}, portfolio: portfolioOf(s.sim.wallet, () => undefined) };
  const price = priceOf(s.series, s.cfg, s.sim);
  const prices: Record<string, string> = {};
  for (const sym of s.config.pairs) {
    const v = price(sym);
    if (v !== undefined) prices[sym] = v;
  }
  return { virtual_time: virtualTime(s.cfg, s.series, s.sim), prices, portfolio: portfolioOf(s.sim.wallet, price) };
}

/** A snapshot at the time of the previous one replaces it: one equity point per virtual instant. */
export function pushSnapshot(list: Snapshot[], s: Snapshot): void {
  if (list.length > 0 && list[list.length - 1].t === s.t) list[list.length - 1] = s;
  else list.push(s);
}

/** What a finished (or cancelled) backtest reports: summary figures, the shared metrics, and a per-pair breakdown. */
export interface BacktestResults {
  summary: {
    final_equity: string;
    total_pnl: string;
    roi_pct: string;
    total_trades: number;
    closed_trades: number;
    total_fees: string;
    duration_real_sec: string;
  };
  metrics: Metrics;
  by_pair: Array<{ symbol: string; trades: number; wins: number; losses: number; win_rate: string | null; net_pnl: string; total_volume: string; fees: string }>;
}

export function backtestResults(startingBalance: string, snapshots: readonly Snapshot[], trades: readonly TradeRec[], wall_ms: number): BacktestResults {
  const closed = trades.filter((t) => t.realized_pnl !== null);
  const metrics = computeMetrics({
    starting_balance: startingBalance,
    equity: snapshots.map((s) => ({ t: s.t, equity: s.total_equity })),
    trades: closed.map((t) => ({ realized_pnl: t.realized_pnl!, t: Date.parse(t.executed_at) })),
  });
  const pairs = new Map<string, TradeRec[]>();
  for (const t of trades) pairs.set(t.symbol, [...(pairs.get(t.symbol) ?? []), t]);
  const by_pair = [...pairs.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([symbol, list]) => {
    const pnls = list.filter((t) => t.realized_pnl !== null).map((t) => money(t.realized_pnl!));
    const wins = pnls.filter((p) => p.gt(0)).length;
    const losses = pnls.filter((p) => p.lt(0)).length;
    return {
      symbol, trades: list.length, wins, losses, win_rate: pnls.length === 0 ? null : fmt(money(wins).div(pnls.length).times(100)),
      net_pnl: fmt(pnls.reduce((s, p) => s.plus(p), money(0))),
      total_volume: fmt(list.reduce((s, t) => s.plus(t.quote_amount), money(0))),
      fees: fmt(list.reduce((s, t) => s.plus(t.fee), money(0))),
    };
  });
  return {
    summary: {
      final_equity: metrics.final_equity, total_pnl: metrics.total_pnl, roi_pct: metrics.roi_pct, total_trades: trades.length,
      closed_trades: closed.length, total_fees: fmt(trades.reduce((s, t) => s.plus(t.fee), money(0))), duration_real_sec: (wall_ms / 1000).toFixed(2),
    },
    metrics,
    by_pair,
  };
}
