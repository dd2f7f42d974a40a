import { computeMetrics, rankBy, type ClosedTrade, type EquityPoint, type Metrics, type RankMetric } from './metrics.js';
import { fmt } from './money.js';
import type { SimState } from './sim.js';

/**
 * A battle as the battle actor holds it and the store saves it, the eight presets, and the ranking rule.
 * Pure: no I/O, no clock.
 */
export type BattleStatus = 'draft' | 'pending' | 'active' | 'paused' | 'completed' | 'cancelled';
export type BattleMode = 'live' | 'historical';
export type ParticipantStatus = 'active' | 'paused' | 'stopped';

export const RUNNING: ReadonlySet<BattleStatus> = new Set(['active', 'paused']);
export const FINISHED: ReadonlySet<BattleStatus> = new Set(['completed', 'cancelled']);

/** Historical period; `candle_interval` in seconds. `pairs` null = every pair with stored candles. */
export interface HistoricalSpec {
  start_time: string;
  end_time: string;
  candle_interval: number;
  pairs: string[] | null;
}

export interface BattleConfig {
  starting_balance: string;
  /** Live battles end on their own after this many minutes; null = no limit (ended by stop). */
  duration_minutes: number | null;
  /** Battle wallets are always fresh: an agent's own wallet is never touched by a battle. */
  wallet_mode: 'fresh';
  allowed_pairs: string[] | null;
  /** Keys of the create request's free-form `config` that this server does not interpret, kept and echoed. */
  extra: Record<string, unknown>;
}

export interface Participant {
  agent_id: string;
  agent_name: string;
  status: ParticipantStatus;
  joined_at: string;
  /** The starting balance of its battle wallet (set at start). */
  snapshot_balance: string | null;
  final_equity: string | null;
  final_rank: number | null;
}

export interface Ranking {
  rank: number;
  agent_id: string;
  agent_name: string;
  starting_balance: string;
  final_equity: string;
  roi_pct: string;
  total_pnl: string;
  /** Fills of the battle wallet (buys and sells). */
  trade_count: number;
  metrics: Metrics;
}

/** The shared virtual clock of a historical battle: one sim state per participant, all at the same step. */
export interface HistState {
  total_steps: number;
  pairs: string[];
  interval_ms: number;
  start_ms: number;
  /** Candle slots loaded before start_ms (history the first prices come from). */
  warmup: number;
  fee_rate: string;
  sims: Record<string, SimState>;
  /** Orders placed so far per participant: seeds the next order id, so ids are reproducible. */
  placed: Record<string, number>;
}

export interface Battle {
  id: string;
  account_id: string;
  name: string;
  status: BattleStatus;
  mode: BattleMode;
  preset: string | null;
  ranking_metric: RankMetric;
  config: BattleConfig;
  backtest_config: HistoricalSpec | null;
  participants: Participant[];
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  rankings: Ranking[] | null;
  hist: HistState | null;
}

export interface Preset {
  key: string;
  name: string;
  description: string;
  best_for: string;
  battle_mode: BattleMode;
  duration_type: 'fixed' | 'unlimited' | 'historical';
  duration_seconds: number | null;
  starting_balance: string;
  allowed_pairs: string[] | null;
  /** Seconds per candle (historical presets). */
  candle_interval: number | null;
}

const HOUR_S = 3600;
const DAY_S = 86_400;
const preset = (key: string, name: string, description: string, best_for: string, mode: BattleMode, type: Preset['duration_type'], seconds: number | null, balance: string, pairs: string[] | null, interval: number | null): Preset =>
  ({ key, name, description, best_for, battle_mode: mode, duration_type: type, duration_seconds: seconds, starting_balance: balance, allowed_pairs: pairs, candle_interval: interval });

/** The reference's eight presets, with the seed's durations, balances and candle intervals. */
export const PRESETS: readonly Preset[] = [
  preset('quick_1h', 'Quick Sprint', '1-hour fast-paced battle with top pairs.', 'Fast strategy comparison', 'live', 'fixed', HOUR_S, '10000', null, null),
  preset('day_trader', 'Day Trader', '24-hour full-day performance test.', 'Full-day performance test', 'live', 'fixed', DAY_S, '10000', null, null),
  preset('marathon', 'Marathon', '7-day endurance battle testing consistency.', 'Endurance and consistency', 'live', 'fixed', 7 * DAY_S, '10000', null, null),
  preset('scalper_duel', 'Scalper Duel', '4-hour high-frequency battle on BTC + ETH only.', 'High-frequency testing', 'live', 'fixed', 4 * HOUR_S, '5000', ['BTCUSDT', 'ETHUSDT'], null),
  preset('survival', 'Survival Mode', 'No time limit — last agent standing wins.', 'Last agent standing', 'live', 'unlimited', null, '10000', null, null),
  preset('historical_day', 'Historical Day', '1-day historical battle with 1-minute candles.', 'Quick historical comparison', 'historical', 'historical', DAY_S, '10000', null, 60),
  preset('historical_week', 'Historical Week', '7-day historical battle with 5-minute candles.', 'Week-long historical analysis', 'historical', 'historical', 7 * DAY_S, '10000', null, 300),
  preset('historical_month', 'Historical Month', '30-day historical battle with 1-hour candles.', 'Long-term historical strategy testing', 'historical', 'historical', 30 * DAY_S, '10000', null, 3600),
];

export const presetOf = (key: string): Preset | undefined => PRESETS.find((p) => p.key === key);

/** Steps of a historical period: whole candles from start (aligned down to the interval) until end. */
export function periodSteps(spec: HistoricalSpec): { start_ms: number; total_steps: number } {
  const step = spec.candle_interval * 1000;
  const start_ms = Math.floor(Date.parse(spec.start_time) / step) * step;
  return { start_ms, total_steps: Math.floor((Date.parse(spec.end_time) - start_ms) / step) };
}

/** A live battle whose duration has passed by `now` (wall ms); `minute_ms` is the length of one duration minute. */
export function liveTimeUp(b: Battle, now: number, minute_ms: number): boolean {
  if (b.mode !== 'live' || !RUNNING.has(b.status) || b.config.duration_minutes === null || !b.started_at) return false;
  return now - Date.parse(b.started_at) >= b.config.duration_minutes * minute_ms;
}

export interface RankInput {
  agent_id: string;
  agent_name: string;
  starting_balance: string;
  /** Equity curve of the battle wallet, ending with the final equity. */
  equity: EquityPoint[];
  trades: ClosedTrade[];
  trade_count: number;
}

/**
 * Final standings by the battle's metric, higher first. Ties (equal values, or both null) fall back to
 * roi_pct, then total_pnl, then the order participants joined in (`rankBy` breaks its last tie by id, and
 * the id given here is the join position), so a battle always ranks the same way.
 */
export function rankParticipants(metric: RankMetric, inputs: readonly RankInput[]): Ranking[] {
  const rows = inputs.map((inp, i) => ({
    id: String(i).padStart(6, '0'), inp,
    metrics: computeMetrics({ starting_balance: inp.starting_balance, equity: inp.equity, trades: inp.trades }),
  }));
  const byId = new Map(rows.map((r) => [r.id, r]));
  return rankBy(metric, rows).map(({ id, rank }) => {
    const { inp, metrics } = byId.get(id)!;
    return {
      rank, agent_id: inp.agent_id, agent_name: inp.agent_name, starting_balance: fmt(inp.starting_balance), final_equity: metrics.final_equity,
      roi_pct: metrics.roi_pct, total_pnl: metrics.total_pnl, trade_count: inp.trade_count, metrics,
    };
  });
}

/** Copies final equity and rank onto the participants and stops them. */
export function settleParticipants(b: Battle, rankings: readonly Ranking[] | null): void {
  for (const p of b.participants) {
    const r = rankings?.find((x) => x.agent_id === p.agent_id);
    p.status = 'stopped';
    if (r) {
      p.final_equity = r.final_equity;
      p.final_rank = r.rank;
    }
  }
}

export const participantOf = (b: Battle, agentId: string): Participant | undefined => b.participants.find((p) => p.agent_id === agentId.toLowerCase());
