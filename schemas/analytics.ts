import { Type } from '@sinclair/typebox';
import { AmountOut, Nullable, Timestamp, Uuid } from './common.js';
import { LIMITS as L } from './limits.js';

/** Look-back windows of the analytics routes; `all` = since the current trading session began. */
export const PERIOD_DAYS = { '1d': 1, '7d': 7, '30d': 30, '90d': 90, all: null } as const;
export type Period = keyof typeof PERIOD_DAYS;
const PeriodName = Type.Union(Object.keys(PERIOD_DAYS).map((k) => Type.Literal(k as Period)));

/** History bucket widths in seconds: the reference's 1m/1h/1d and the Python client's 5m. */
export const INTERVAL_SECONDS = { '1m': 60, '5m': 300, '1h': 3600, '1d': 86_400 } as const;
export type HistoryInterval = keyof typeof INTERVAL_SECONDS;
const IntervalName = Type.Union(Object.keys(INTERVAL_SECONDS).map((k) => Type.Literal(k as HistoryInterval)));

const RankMetricName = Type.Union([
  Type.Literal('roi_pct'), Type.Literal('total_pnl'), Type.Literal('sharpe_ratio'), Type.Literal('win_rate'), Type.Literal('profit_factor'),
]);

export const PerformanceQuery = Type.Object({ period: Type.Optional(PeriodName) });

export const HistoryQuery = Type.Object({
  interval: Type.Optional(IntervalName),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.equity_history_page_max })),
});

export const LeaderboardQuery = Type.Object({
  period: Type.Optional(PeriodName),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: L.leaderboard_page_max })),
  metric: Type.Optional(RankMetricName),
});

const Dec = AmountOut;
const NullDec = Nullable(AmountOut);

/** engine/core/metrics.ts `Metrics`: the one metrics shape of backtests, battles and analytics (null = undefined). */
export const MetricsOut = Type.Object({
  roi_pct: Dec, total_pnl: Dec, sharpe_ratio: NullDec, sortino_ratio: NullDec, max_drawdown_pct: Dec, max_drawdown_duration_s: Type.Integer(),
  win_rate: NullDec, profit_factor: NullDec, avg_win: NullDec, avg_loss: NullDec, best_trade: NullDec, worst_trade: NullDec,
  total_trades: Type.Integer(), winning_trades: Type.Integer(), losing_trades: Type.Integer(), breakeven_trades: Type.Integer(),
  max_win_streak: Type.Integer(), max_loss_streak: Type.Integer(), current_streak: Type.Integer(), trades_per_day: Dec, final_equity: Dec,
});

/**
 * The Python client's `Performance` needs each of its fields as a number, so at the top level an undefined
 * ratio or trade statistic is "0.00000000" (as in the reference); `metrics` keeps the nulls.
 */
export const PerformanceOut = Type.Object({
  period: PeriodName,
  agent_id: Nullable(Uuid),
  sharpe_ratio: Dec, sortino_ratio: Dec, max_drawdown_pct: Dec,
  max_drawdown_duration_days: Type.Integer({ description: 'whole days, rounded down' }),
  win_rate: Dec, profit_factor: Dec, avg_win: Dec, avg_loss: Dec, best_trade: Dec, worst_trade: Dec,
  total_trades: Type.Integer(), avg_trades_per_day: Dec, current_streak: Type.Integer(),
  starting_equity: Dec, final_equity: Dec, total_pnl: Dec, roi_pct: Dec,
  period_start: Timestamp, period_end: Timestamp, snapshot_count: Type.Integer(),
  metrics: MetricsOut,
});

export const HistoryOut = Type.Object({
  account_id: Uuid,
  agent_id: Nullable(Uuid),
  interval: IntervalName,
  snapshots: Type.Array(Type.Object({
    time: Timestamp,
    total_equity: Dec,
    available_cash: Dec,
    position_value: Dec,
    unrealized_pnl: Dec,
    realized_pnl: Dec,
  })),
});

export const LeaderboardOut = Type.Object({
  period: PeriodName,
  metric: RankMetricName,
  rankings: Type.Array(Type.Object({
    rank: Type.Integer(),
    agent_id: Uuid,
    account_id: Uuid,
    display_name: Type.String(),
    /** The ranked metric itself (null ranks last). */
    value: NullDec,
    roi_pct: Dec,
    total_pnl: Dec,
    sharpe_ratio: Dec,
    win_rate: Dec,
    total_trades: Type.Integer(),
    final_equity: Dec,
    metrics: MetricsOut,
  })),
});
