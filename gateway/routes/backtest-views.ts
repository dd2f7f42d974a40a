import { ApiError } from '../../schemas/errors.js';
import { CANDLE_INTERVALS } from '../../schemas/backtest.js';
import type { PortfolioView } from '../../engine/core/portfolio.js';
import type { BacktestConfig, BacktestResults, BacktestStatus, Session } from '../../engine/core/backtest.js';
import type { Snapshot, StepOut } from '../../engine/core/sim.js';
import type { OrderRec } from '../../engine/core/wallet.js';
import type { ClockView } from '../../engine/backtests.js';
import type { BacktestRow } from '../../engine/store/backtests-repo.js';
import { orderOut } from './trade.js';

/** Wire shapes of the backtest API: the reference's field names, plus ours where they add something. */

export const iso = (ms: number) => new Date(ms).toISOString();

/** "1m" | "60" | 60 → 60 000 ms; anything else is a 422 naming the field. */
export function intervalMs(v: string | number | undefined, fallback: number, field: string): number {
  if (v === undefined) return fallback;
  const seconds = typeof v === 'number' ? v : CANDLE_INTERVALS[v] ?? (/^\d+$/.test(v) ? Number(v) : NaN);
  if (!Number.isInteger(seconds) || seconds <= 0) throw new ApiError('VALIDATION_ERROR', `${field} must be a number of seconds or one of ${Object.keys(CANDLE_INTERVALS).join(', ')}.`, { field });
  return seconds * 1000;
}

export const portfolioOut = (p: PortfolioView) => ({
  total_equity: p.total_equity, available_cash: p.available_cash, locked_cash: p.locked_cash, position_value: p.total_position_value,
  unrealized_pnl: p.unrealized_pnl, realized_pnl: p.realized_pnl, total_pnl: p.total_pnl, roi_pct: p.roi_pct,
  positions: p.positions.map((x) => ({
    symbol: x.symbol, quantity: x.quantity, avg_entry_price: x.avg_entry_price, current_price: x.current_price, market_value: x.market_value,
    unrealized_pnl: x.unrealized_pnl, realized_pnl: x.realized_pnl,
  })),
});

export const fillOut = (o: OrderRec) => ({
  order_id: o.order_id, symbol: o.symbol, side: o.side, type: o.type, status: o.status, executed_price: o.executed_price,
  executed_qty: o.executed_qty, fee: o.fee, realized_pnl: o.realized_pnl, reject_reason: o.reject_reason, filled_at: o.filled_at,
});

/** An order in the reference's list shape (`id`, `stop_price`) and ours. */
export const orderListOut = (o: OrderRec) => ({
  id: o.order_id, ...orderOut(o), stop_price: o.type === 'stop_loss' || o.type === 'take_profit' ? o.price : null,
});

const pct2 = (step: number, total: number) => (total === 0 ? 0 : Math.floor((step / total) * 10_000) / 100);

/** StepResponse; orders_filled holds filled orders and triggered ones rejected for want of funds (not those the end cancelled). */
export function stepOut(session: Session, view: ClockView, out: StepOut, fills: OrderRec[]) {
  const { step } = session.sim;
  return {
    session_id: session.id, status: session.status, virtual_time: iso(view.virtual_time), step, total_steps: session.total_steps,
    progress_pct: pct2(step, session.total_steps).toFixed(2), prices: view.prices, orders_filled: fills.filter((o) => o.status !== 'cancelled').map(fillOut),
    portfolio: portfolioOut(view.portfolio), is_complete: session.status === 'completed', remaining_steps: session.total_steps - step,
    steps_executed: out.steps_executed,
  };
}

/** The columns a list item is made of; a live session and a stored row both give them. */
interface ItemSource {
  id: string;
  agent_id: string | null;
  status: BacktestStatus;
  config: BacktestConfig;
  step: number;
  total_steps: number;
  trade_count: number;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  results: BacktestResults | null;
  equity: string | null;
}

export const sourceOfSession = (s: Session): ItemSource => ({
  id: s.id, agent_id: s.agent_id, status: s.status, config: s.config, step: s.sim.step, total_steps: s.total_steps, trade_count: s.sim.wallet.trade_count,
  created_at: s.created_at, started_at: s.started_at, completed_at: s.completed_at, results: s.results, equity: s.snapshots.at(-1)?.total_equity ?? null,
});

export const sourceOfRow = (r: BacktestRow): ItemSource => ({
  id: r.id, agent_id: r.agent_id, status: r.status, config: r.config, step: r.state.sim.step, total_steps: r.state.total_steps,
  trade_count: r.state.sim.wallet.trade_count, created_at: new Date(r.created_at).toISOString(), started_at: r.state.started_at,
  completed_at: r.state.completed_at, results: r.results, equity: null,
});

/** BacktestListItem: figures are null until the session has results (completed or cancelled). */
export function itemOut(x: ItemSource) {
  const m = x.results?.metrics ?? null;
  const sum = x.results?.summary ?? null;
  return {
    session_id: x.id, agent_id: x.agent_id, strategy_label: x.config.strategy_label, start_time: x.config.start_time, end_time: x.config.end_time,
    status: x.status, candle_interval: x.config.candle_interval, starting_balance: x.config.starting_balance, pairs: x.config.pairs,
    fee_rate: x.config.fee_rate, progress_pct: pct2(x.step, x.total_steps), current_step: x.step, total_steps: x.total_steps,
    virtual_clock: iso(Date.parse(x.config.start_time) + x.step * x.config.candle_interval * 1000),
    current_equity: x.equity, final_equity: sum?.final_equity ?? null, total_pnl: sum?.total_pnl ?? null, roi_pct: sum?.roi_pct ?? null,
    total_trades: x.trade_count, total_fees: sum?.total_fees ?? null, sharpe_ratio: m?.sharpe_ratio ?? null, sortino_ratio: m?.sortino_ratio ?? null,
    max_drawdown_pct: m?.max_drawdown_pct ?? null, win_rate: m?.win_rate ?? null, profit_factor: m?.profit_factor ?? null,
    created_at: x.created_at, started_at: x.started_at, completed_at: x.completed_at, duration_real_sec: sum?.duration_real_sec ?? null,
  };
}

export const snapshotOut = (s: Snapshot) => ({
  simulated_at: iso(s.t), total_equity: s.total_equity, available_cash: s.available_cash, locked_cash: s.locked_cash,
  position_value: s.position_value, unrealized_pnl: s.unrealized_pnl, realized_pnl: s.realized_pnl,
});

