import { fmt, money } from '../../engine/core/money.js';
import { PRESETS, type Battle, type Participant, type Preset, type Ranking } from '../../engine/core/battle-rules.js';
import type { Standing } from '../../engine/core/battle-sim.js';
import type { SnapshotRow } from '../../engine/core/battle-sim.js';
import type { ClockView } from '../../engine/battles.js';
import { CANDLE_INTERVALS } from '../../schemas/backtest.js';

/**
 * Battle responses in the union of the seed's and the reference's field names (`battle_id` and `id`,
 * `rankings` and `participants`, `agent_name` and `display_name`, `equity` and `current_equity`…).
 */
const LABELS = Object.fromEntries(Object.entries(CANDLE_INTERVALS).map(([label, s]) => [s, label]));
const label = (seconds: number | null) => (seconds === null ? null : (LABELS[seconds] ?? `${seconds}s`));
const iso = (ms: number) => new Date(ms).toISOString();

export function presetOut(p: Preset) {
  return {
    key: p.key, name: p.name, description: p.description, best_for: p.best_for, battle_mode: p.battle_mode, duration_type: p.duration_type,
    duration_seconds: p.duration_seconds, duration_minutes: p.duration_seconds === null ? null : p.duration_seconds / 60,
    duration_hours: p.duration_seconds === null ? null : p.duration_seconds / 3600, starting_balance: fmt(p.starting_balance),
    allowed_pairs: p.allowed_pairs, candle_interval: label(p.candle_interval), candle_interval_seconds: p.candle_interval, wallet_mode: 'fresh',
  };
}

export const presetsOut = () => Object.fromEntries(PRESETS.map((p) => [p.key, presetOut(p)]));

export function participantOut(b: Battle, p: Participant) {
  return {
    id: p.agent_id, battle_id: b.id, agent_id: p.agent_id, agent_name: p.agent_name, display_name: p.agent_name, status: p.status,
    snapshot_balance: p.snapshot_balance, starting_balance: p.snapshot_balance ?? b.config.starting_balance, final_equity: p.final_equity,
    final_rank: p.final_rank, rank: p.final_rank, joined_at: p.joined_at,
  };
}

export function rankingOut(b: Battle, r: Ranking) {
  const m = r.metrics;
  return {
    rank: r.rank, agent_id: r.agent_id, agent_name: r.agent_name, display_name: r.agent_name, equity: r.final_equity, current_equity: r.final_equity,
    final_equity: r.final_equity, starting_balance: r.starting_balance, snapshot_balance: r.starting_balance, roi_pct: r.roi_pct, total_pnl: r.total_pnl,
    trade_count: r.trade_count, total_trades: r.trade_count, closed_trades: m.total_trades, win_rate: m.win_rate, sharpe_ratio: m.sharpe_ratio,
    sortino_ratio: m.sortino_ratio, profit_factor: m.profit_factor, max_drawdown_pct: m.max_drawdown_pct, best_trade: m.best_trade, worst_trade: m.worst_trade,
    status: b.participants.find((p) => p.agent_id === r.agent_id)?.status ?? null,
  };
}

export function battleOut(b: Battle) {
  const c = b.config;
  const spec = b.backtest_config;
  const rankings = b.rankings?.map((r) => rankingOut(b, r)) ?? null;
  const h = b.hist;
  const step = h ? (Object.values(h.sims)[0]?.step ?? 0) : null;
  return {
    battle_id: b.id, id: b.id, account_id: b.account_id, name: b.name, status: b.status, battle_mode: b.mode, preset: b.preset, ranking_metric: b.ranking_metric,
    starting_balance: c.starting_balance, duration_minutes: c.duration_minutes,
    config: {
      ...c.extra, starting_balance: c.starting_balance, duration_minutes: c.duration_minutes, duration_seconds: c.duration_minutes === null ? null : c.duration_minutes * 60,
      duration_type: b.mode === 'historical' ? 'historical' : c.duration_minutes === null ? 'unlimited' : 'fixed', wallet_mode: c.wallet_mode, allowed_pairs: c.allowed_pairs,
    },
    backtest_config: spec && {
      start_time: spec.start_time, end_time: spec.end_time, candle_interval: label(spec.candle_interval), candle_interval_seconds: spec.candle_interval,
      pairs: h?.pairs ?? spec.pairs,
    },
    participant_count: b.participants.length, participants: b.participants.map((p) => participantOut(b, p)),
    current_step: step, total_steps: h?.total_steps ?? null, virtual_time: h ? iso(h.start_ms + (step ?? 0) * h.interval_ms) : null,
    created_at: b.created_at, started_at: b.started_at, ended_at: b.ended_at, completed_at: b.status === 'completed' ? b.ended_at : null,
    final_rankings: rankings, rankings,
  };
}

export function standingOut(b: Battle, s: Standing) {
  const name = b.participants.find((p) => p.agent_id === s.agent_id)?.agent_name ?? null;
  return { agent_id: s.agent_id, agent_name: name, display_name: name, equity: s.equity, pnl: s.pnl, total_pnl: s.pnl, roi_pct: s.roi_pct, trade_count: s.trade_count };
}

export function stepOut(v: ClockView) {
  const b = v.battle;
  return {
    battle_id: b.id, status: b.status, virtual_time: iso(v.virtual_time), step: v.step, current_step: v.step, total_steps: v.total_steps,
    progress_pct: fmt(v.total_steps === 0 ? 100 : money(v.step).div(v.total_steps).times(100)), is_complete: v.step >= v.total_steps,
    prices: v.prices, participants: v.standings.map((s) => standingOut(b, s)),
  };
}

/** Equity points grouped by time: one snapshot per instant with every participant's values (the seed's replay shape). */
export function replayOut(b: Battle, rows: readonly SnapshotRow[], total: number, limit: number, offset: number) {
  const names = new Map(b.participants.map((p) => [p.agent_id, p.agent_name]));
  const order = new Map(b.participants.map((p, i) => [p.agent_id, i]));
  const byTime = new Map<number, SnapshotRow[]>();
  for (const r of rows) byTime.set(r.snap.t, [...(byTime.get(r.snap.t) ?? []), r]);
  const snapshots = [...byTime.entries()].sort(([a], [c]) => a - c).map(([t, list]) => ({
    timestamp: iso(t),
    participants: [...list].sort((x, y) => (order.get(x.agent_id) ?? 0) - (order.get(y.agent_id) ?? 0)).map((r) => ({
      agent_id: r.agent_id, agent_name: names.get(r.agent_id) ?? null, equity: r.snap.total_equity, available_cash: r.snap.available_cash,
      position_value: r.snap.position_value, unrealized_pnl: r.snap.unrealized_pnl, realized_pnl: r.snap.realized_pnl, trade_count: r.trade_count,
    })),
  }));
  return { battle_id: b.id, battle_mode: b.mode, status: b.status, snapshots, total, limit, offset };
}
