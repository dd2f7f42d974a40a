import type { Decimal } from 'decimal.js';
import { fmt, money, Money } from './money.js';

/**
 * Performance metrics shared by backtests, battles and live analytics. Pure: no I/O, no clock.
 *
 * THE CONVENTION (one for every caller)
 * - Amounts in and out are decimal strings; every output string has exactly 8 decimal places (`fmt`,
 *   half-up), percentages and ratios included ("25.00000000" means 25 %). Durations are whole seconds
 *   (rounded down); counts are integers.
 * - Equity points are sorted by time first (stable, so equal times keep their input order).
 * - Returns are simple returns r = (e_i − e_{i−1}) / e_{i−1}; a return whose previous equity is ≤ 0 is
 *   skipped (it has no meaning).
 *   · Daily mode: when the points fall on at least 3 distinct UTC days (so there are ≥ 2 daily returns),
 *     the series is resampled to the LAST point of each UTC day and returns run from one sampled day to the
 *     next (days without a point are skipped, not filled). Periods per year = 365 (crypto trades daily).
 *   · Point mode: otherwise (a series on 1 or 2 UTC days) returns run between consecutive raw points and
 *     periods per year = 365 days / mean point spacing = 365 × 86 400 000 × (points − 1) / (t_last − t_first)
 *     (e.g. hourly points → 8760). All points at one instant → no annualisation → ratios null.
 * - Risk-free rate 0. Sharpe = mean(r) / s(r) × √(periods per year), s = sample standard deviation (n − 1).
 *   Sortino = mean(r) / DD × √(periods per year), DD = √(Σ min(r, 0)² / n) over ALL n returns.
 *   Both are null with fewer than 2 returns or a zero deviation — so Sortino is null when no return is negative.
 * - Max drawdown % = max over points of (running peak − e) / peak × 100, over the equity points only (a
 *   caller that wants the starting balance as the first peak puts it in the series). Duration = the longest
 *   time from a peak (the last point at the running peak before equity fell below it) until equity is back at
 *   or above that peak, or until the last point when it never is.
 * - final_equity = the last point's equity (the starting balance without points); total_pnl = final − start;
 *   roi_pct = total_pnl / start × 100.
 * - Trades are closed trades (realized PnL known), sorted by time (stable). Win > 0, loss < 0, breakeven = 0.
 *   win_rate = wins / all closed trades × 100 (breakevens count in the denominator); null without trades.
 *   profit_factor = Σ wins / |Σ losses|, null when there are no losses (so "only wins" is null and
 *   "only losses" is 0). avg_win / avg_loss are means of the wins / losses (avg_loss ≤ 0), null when none.
 *   A breakeven trade ends both streaks. current_streak = +n / −n for a trailing run of n wins / losses.
 * - trades_per_day = closed trades / max(1, span in days); the span runs from period_start (else the
 *   earliest equity or trade time) to period_end (else the latest); a span under one day counts as one day.
 */

export interface EquityPoint {
  /** epoch ms */
  t: number;
  equity: string;
}
export interface ClosedTrade {
  realized_pnl: string;
  /** epoch ms of the closing fill */
  t: number;
}
export interface MetricsInput {
  starting_balance: string;
  equity: EquityPoint[];
  trades: ClosedTrade[];
  period_start?: number;
  period_end?: number;
}
export interface Metrics {
  roi_pct: string;
  total_pnl: string;
  sharpe_ratio: string | null;
  sortino_ratio: string | null;
  max_drawdown_pct: string;
  max_drawdown_duration_s: number;
  win_rate: string | null;
  profit_factor: string | null;
  avg_win: string | null;
  avg_loss: string | null;
  best_trade: string | null;
  worst_trade: string | null;
  total_trades: number;
  winning_trades: number;
  losing_trades: number;
  breakeven_trades: number;
  max_win_streak: number;
  max_loss_streak: number;
  /** +n: the last n closed trades were wins; −n: losses; 0: no trades or the last one broke even. */
  current_streak: number;
  trades_per_day: string;
  final_equity: string;
}

const DAY_MS = 86_400_000;
const DAYS_PER_YEAR = 365;
const nullable = (d: Decimal | null): string | null => (d === null ? null : fmt(d));

export function computeMetrics(input: MetricsInput): Metrics {
  const start = money(input.starting_balance);
  const equity = [...input.equity].sort((a, b) => a.t - b.t);
  const trades = [...input.trades].sort((a, b) => a.t - b.t);
  const final = equity.length > 0 ? money(equity[equity.length - 1].equity) : start;
  const pnl = final.minus(start);
  const { returns, periodsPerYear } = returnsOf(equity);
  const ratios = riskRatios(returns, periodsPerYear);
  const dd = drawdown(equity);
  const ts = tradeStats(trades);
  return {
    roi_pct: fmt(start.isZero() ? 0 : pnl.div(start).times(100)),
    total_pnl: fmt(pnl),
    sharpe_ratio: nullable(ratios.sharpe),
    sortino_ratio: nullable(ratios.sortino),
    max_drawdown_pct: fmt(dd.pct),
    max_drawdown_duration_s: Math.floor(dd.duration_ms / 1000),
    ...ts,
    trades_per_day: fmt(tradesPerDay(trades.length, equity, trades, input)),
    final_equity: fmt(final),
  };
}

/** Simple returns and how many such periods make a year (null when the spacing is undefined). */
export function returnsOf(equity: readonly EquityPoint[]): { returns: Decimal[]; periodsPerYear: Decimal | null } {
  const lastOfDay = new Map<number, EquityPoint>();
  for (const p of equity) lastOfDay.set(Math.floor(p.t / DAY_MS), p);
  if (lastOfDay.size >= 3) {
    const days = [...lastOfDay.values()]; // insertion order = day order, as `equity` is sorted
    return { returns: simpleReturns(days), periodsPerYear: money(DAYS_PER_YEAR) };
  }
  if (equity.length < 2) return { returns: [], periodsPerYear: null };
  const span = equity[equity.length - 1].t - equity[0].t;
  if (span <= 0) return { returns: simpleReturns(equity), periodsPerYear: null };
  return { returns: simpleReturns(equity), periodsPerYear: money(DAYS_PER_YEAR * DAY_MS).times(equity.length - 1).div(span) };
}

function simpleReturns(points: readonly EquityPoint[]): Decimal[] {
  const out: Decimal[] = [];
  for (let i = 1; i < points.length; i++) {
    const prev = money(points[i - 1].equity);
    if (prev.lte(0)) continue;
    out.push(money(points[i].equity).minus(prev).div(prev));
  }
  return out;
}

function riskRatios(returns: readonly Decimal[], periodsPerYear: Decimal | null): { sharpe: Decimal | null; sortino: Decimal | null } {
  const n = returns.length;
  if (n < 2 || periodsPerYear === null) return { sharpe: null, sortino: null };
  const annual = periodsPerYear.sqrt();
  const mean = returns.reduce((s, r) => s.plus(r), money(0)).div(n);
  const sd = returns.reduce((s, r) => s.plus(r.minus(mean).pow(2)), money(0)).div(n - 1).sqrt();
  const downside = returns.reduce((s, r) => (r.isNeg() ? s.plus(r.pow(2)) : s), money(0)).div(n).sqrt();
  return {
    sharpe: sd.isZero() ? null : mean.div(sd).times(annual),
    sortino: downside.isZero() ? null : mean.div(downside).times(annual),
  };
}

function drawdown(equity: readonly EquityPoint[]): { pct: Decimal; duration_ms: number } {
  let pct = money(0);
  let duration_ms = 0;
  if (equity.length === 0) return { pct, duration_ms };
  let peak = money(equity[0].equity);
  let peakT = equity[0].t;
  let underwater = false;
  for (const p of equity) {
    const e = money(p.equity);
    if (e.gte(peak)) {
      if (underwater) duration_ms = Math.max(duration_ms, p.t - peakT);
      underwater = false;
      peak = e;
      peakT = p.t;
    } else {
      underwater = true;
      if (peak.gt(0)) pct = Money.max(pct, peak.minus(e).div(peak).times(100));
    }
  }
  if (underwater) duration_ms = Math.max(duration_ms, equity[equity.length - 1].t - peakT);
  return { pct, duration_ms };
}

type TradeStats = Pick<Metrics,
  'win_rate' | 'profit_factor' | 'avg_win' | 'avg_loss' | 'best_trade' | 'worst_trade' | 'total_trades' | 'winning_trades' |
  'losing_trades' | 'breakeven_trades' | 'max_win_streak' | 'max_loss_streak' | 'current_streak'>;

function tradeStats(trades: readonly ClosedTrade[]): TradeStats {
  let grossWin = money(0);
  let grossLoss = money(0);
  let wins = 0;
  let losses = 0;
  let best: Decimal | null = null;
  let worst: Decimal | null = null;
  let streak = 0; // signed, like current_streak
  let maxWin = 0;
  let maxLoss = 0;
  for (const t of trades) {
    const p = money(t.realized_pnl);
    if (best === null || p.gt(best)) best = p;
    if (worst === null || p.lt(worst)) worst = p;
    if (p.gt(0)) {
      wins++;
      grossWin = grossWin.plus(p);
      streak = streak > 0 ? streak + 1 : 1;
    } else if (p.lt(0)) {
      losses++;
      grossLoss = grossLoss.plus(p);
      streak = streak < 0 ? streak - 1 : -1;
    } else streak = 0;
    maxWin = Math.max(maxWin, streak);
    maxLoss = Math.max(maxLoss, -streak);
  }
  const n = trades.length;
  return {
    win_rate: n === 0 ? null : fmt(money(wins).div(n).times(100)),
    profit_factor: losses === 0 ? null : fmt(grossWin.div(grossLoss.abs())),
    avg_win: wins === 0 ? null : fmt(grossWin.div(wins)),
    avg_loss: losses === 0 ? null : fmt(grossLoss.div(losses)),
    best_trade: nullable(best),
    worst_trade: nullable(worst),
    total_trades: n,
    winning_trades: wins,
    losing_trades: losses,
    breakeven_trades: n - wins - losses,
    max_win_streak: maxWin,
    max_loss_streak: maxLoss,
    current_streak: streak,
  };
}

function tradesPerDay(n: number, equity: readonly EquityPoint[], trades: readonly ClosedTrade[], input: MetricsInput): Decimal {
  const times = [...equity.map((p) => p.t), ...trades.map((t) => t.t)];
  const from = input.period_start ?? (times.length ? Math.min(...times) : 0);
  const to = input.period_end ?? (times.length ? Math.max(...times) : from);
  return money(n).div(Money.max(money(to - from).div(DAY_MS), 1));
}

/**
 * Sums several series point by point on the union of their times (an account's agents). At each time a
 * series counts with its latest value at or before it, and with its first value before it begins: a wallet
 * that has no snapshot yet was not loaded, i.e. idle, so its value had not changed.
 */
export function sumSeries<K extends string>(series: ReadonlyArray<ReadonlyArray<{ t: number } & Record<K, string>>>, keys: readonly K[]): Array<{ t: number } & Record<K, string>> {
  const live = series.filter((s) => s.length > 0).map((s) => [...s].sort((a, b) => a.t - b.t));
  const times = [...new Set(live.flatMap((s) => s.map((p) => p.t)))].sort((a, b) => a - b);
  const at = live.map(() => 0);
  return times.map((t) => {
    const sums = keys.map(() => money(0));
    live.forEach((s, i) => {
      while (at[i] + 1 < s.length && s[at[i] + 1].t <= t) at[i]++;
      keys.forEach((k, j) => (sums[j] = sums[j].plus(s[at[i]][k])));
    });
    return Object.assign({ t }, Object.fromEntries(keys.map((k, j) => [k, fmt(sums[j])]))) as { t: number } & Record<K, string>;
  });
}

export type RankMetric = 'roi_pct' | 'total_pnl' | 'sharpe_ratio' | 'win_rate' | 'profit_factor';
export const RANK_METRICS: readonly RankMetric[] = ['roi_pct', 'total_pnl', 'sharpe_ratio', 'win_rate', 'profit_factor'];

/**
 * Battle and leaderboard ranking: higher is better and null ranks last. Ties (equal values, or both null)
 * are broken by roi_pct (higher first), then total_pnl (higher first), then id (lexicographic, ascending),
 * so the order is total and deterministic; tied rows still get distinct ranks 1..n in that order.
 */
export function rankBy<R extends { id: string; metrics: Metrics }>(metric: RankMetric, rows: readonly R[]): Array<{ id: string; rank: number; value: string | null }> {
  const desc = (a: string | null, b: string | null): number => {
    if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
    return money(b).comparedTo(a);
  };
  return [...rows]
    .sort((a, b) =>
      desc(a.metrics[metric], b.metrics[metric]) ||
      desc(a.metrics.roi_pct, b.metrics.roi_pct) ||
      desc(a.metrics.total_pnl, b.metrics.total_pnl) ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((r, i) => ({ id: r.id, rank: i + 1, value: r.metrics[metric] }));
}
