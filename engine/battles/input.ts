import { ApiError } from '../../schemas/errors.js';
import { CANDLE_INTERVALS } from '../../schemas/backtest.js';
import { LIMITS } from '../../schemas/limits.js';
import { fmt, money } from '../core/money.js';
import { RANK_METRICS, type RankMetric } from '../core/metrics.js';
import { periodSteps, presetOf, type Battle, type BattleConfig, type BattleMode, type HistoricalSpec } from '../core/battle-rules.js';

/**
 * What a create, update or replay request sets, after the gateway has checked types and turned wire
 * spellings into one form (candle_interval in seconds, amounts as decimal strings). The rules that combine
 * a preset, the free-form `config` and explicit fields, and check the result, live here.
 */
export interface BattleInput {
  name?: string;
  battle_mode?: BattleMode;
  preset?: string | null;
  starting_balance?: string;
  duration_minutes?: number | null;
  ranking_metric?: string;
  backtest_config?: Partial<HistoricalSpec> | null;
  /** The reference's free-form config: starting_balance, duration_minutes, candle_interval… inside it count too. */
  config?: Record<string, unknown>;
}

export type Settings = Pick<Battle, 'name' | 'mode' | 'preset' | 'ranking_metric' | 'config' | 'backtest_config'>;

const KNOWN_CONFIG = ['starting_balance', 'duration_minutes', 'duration_seconds', 'duration_type', 'wallet_mode', 'allowed_pairs', 'battle_mode', 'candle_interval'];
const bad = (field: string, message: string) => new ApiError('VALIDATION_ERROR', message, { field });

function balanceOf(v: unknown, field: string): string {
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s !== 'string' || !/^\d+(\.\d{1,8})?$/.test(s.trim())) throw bad(field, `${field} must be a decimal string such as "10000.00".`);
  const m = money(s.trim());
  if (m.lt(LIMITS.backtest_balance_min) || m.gt(LIMITS.backtest_balance_max)) {
    throw bad(field, `${field} must be between ${LIMITS.backtest_balance_min} and ${LIMITS.backtest_balance_max}.`);
  }
  return fmt(m);
}

function minutesOf(v: unknown, field: string): number | null {
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > LIMITS.duration_minutes_max) {
    throw bad(field, `${field} must be a whole number of minutes from 1 to ${LIMITS.duration_minutes_max}, or null for no limit.`);
  }
  return v;
}

function timeOf(v: unknown, field: string): string {
  const ms = typeof v === 'string' ? Date.parse(v) : NaN;
  if (Number.isNaN(ms)) throw bad(field, `${field} must be an ISO-8601 time such as "2025-01-15T00:00:00Z".`);
  return new Date(ms).toISOString();
}

/** Seconds from 60 or "60" or a label like "1m" (the seed sends labels, the official client seconds); undefined when absent. */
/** Seconds per candle a historical battle may use: those of CANDLE_INTERVALS. */
const SECONDS: readonly number[] = Object.values(CANDLE_INTERVALS);

export function intervalSeconds(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  const s = String(v).trim();
  return /^\d+$/.test(s) ? Number(s) : (CANDLE_INTERVALS[s] ?? NaN);
}

function specOf(raw: Partial<HistoricalSpec> | null | undefined, defaults: { interval: number | null; duration_s: number | null; pairs: string[] | null }): HistoricalSpec {
  if (!raw || raw.start_time === undefined) throw bad('backtest_config.start_time', 'A historical battle needs backtest_config with start_time and end_time.');
  const start_time = timeOf(raw.start_time, 'backtest_config.start_time');
  const candle_interval = intervalSeconds(raw.candle_interval) ?? defaults.interval ?? 60;
  if (!SECONDS.includes(candle_interval)) {
    throw bad('backtest_config.candle_interval', `candle_interval must be one of 1m, 5m, 15m, 1h, 4h, 1d (or ${SECONDS.join(', ')} seconds).`);
  }
  let end_time: string;
  if (raw.end_time !== undefined) end_time = timeOf(raw.end_time, 'backtest_config.end_time');
  else if (defaults.duration_s !== null) end_time = new Date(Date.parse(start_time) + defaults.duration_s * 1000).toISOString();
  else throw bad('backtest_config.end_time', 'backtest_config.end_time is required.');
  const pairs = raw.pairs === undefined ? defaults.pairs : raw.pairs === null ? null : [...new Set(raw.pairs.map((p) => p.toUpperCase()))];
  const spec = { start_time, end_time, candle_interval, pairs };
  const { total_steps } = periodSteps(spec);
  if (total_steps < 1) throw bad('backtest_config.end_time', 'end_time must be at least one candle_interval after start_time.');
  if (total_steps * (pairs?.length ?? 1) > LIMITS.series_cells_max) {
    throw bad('backtest_config.end_time', `Too much data for one battle: ${total_steps} steps; use fewer pairs, a shorter period or a longer candle_interval.`);
  }
  return spec;
}

/** Settings from a request over a base (a draft being edited, or a battle being replayed). */
export function resolveSettings(input: BattleInput, base: Settings | null): Settings {
  if (input.preset != null && !presetOf(input.preset)) throw bad('preset', `Unknown preset '${input.preset}'.`);
  const presetKey = input.preset !== undefined ? input.preset : (base?.preset ?? null);
  const preset = presetKey ? presetOf(presetKey) ?? null : null;
  const cfg = input.config ?? {};
  const mode: BattleMode = input.battle_mode ?? (cfg.battle_mode === 'historical' || cfg.battle_mode === 'live' ? cfg.battle_mode : null) ?? base?.mode ?? preset?.battle_mode ?? 'live';
  const metric = input.ranking_metric ?? base?.ranking_metric ?? 'roi_pct';
  if (!(RANK_METRICS as readonly string[]).includes(metric)) throw bad('ranking_metric', `ranking_metric must be one of ${RANK_METRICS.join(', ')}.`);
  const name = (input.name ?? base?.name ?? '').trim();
  if (!name) throw bad('name', 'name must not be blank.');
  const presetMinutes = preset?.duration_seconds != null && preset.battle_mode === 'live' ? Math.round(preset.duration_seconds / 60) : null;
  const durationRaw = input.duration_minutes !== undefined ? input.duration_minutes
    : cfg.duration_minutes !== undefined ? cfg.duration_minutes
      : typeof cfg.duration_seconds === 'number' ? Math.ceil(cfg.duration_seconds / 60)
        : base ? base.config.duration_minutes : presetMinutes;
  const config: BattleConfig = {
    starting_balance: balanceOf(input.starting_balance ?? cfg.starting_balance ?? base?.config.starting_balance ?? preset?.starting_balance ?? '10000', 'starting_balance'),
    duration_minutes: mode === 'live' ? minutesOf(durationRaw ?? null, 'duration_minutes') : null,
    wallet_mode: 'fresh',
    allowed_pairs: Array.isArray(cfg.allowed_pairs) ? cfg.allowed_pairs.map(String) : (base?.config.allowed_pairs ?? preset?.allowed_pairs ?? null),
    extra: { ...(base?.config.extra ?? {}), ...Object.fromEntries(Object.entries(cfg).filter(([k]) => !KNOWN_CONFIG.includes(k))) },
  };
  let backtest_config: HistoricalSpec | null = null;
  if (mode === 'historical') {
    const raw = input.backtest_config === undefined ? base?.backtest_config : input.backtest_config;
    const merged = { ...(raw ?? {}) } as Partial<HistoricalSpec>;
    if (merged.candle_interval === undefined && cfg.candle_interval !== undefined) merged.candle_interval = intervalSeconds(cfg.candle_interval);
    backtest_config = specOf(raw === null ? null : merged, { interval: preset?.candle_interval ?? null, duration_s: preset?.battle_mode === 'historical' ? preset.duration_seconds : null, pairs: config.allowed_pairs });
  }
  return { name: name.slice(0, LIMITS.battle_name_chars_max), mode, preset: presetKey, ranking_metric: metric as RankMetric, config, backtest_config };
}

/**
 * A replay is a historical battle over the source's period: a historical source's own period, a live one's
 * wall-clock span as 1-minute candles. `override_config` may hold any create field (and the period's fields
 * at its top level).
 */
export function replayInput(src: Battle, override: Record<string, unknown>): BattleInput {
  const period: Partial<HistoricalSpec> = src.backtest_config ?? { start_time: src.started_at!, end_time: src.ended_at!, candle_interval: 60, pairs: src.config.allowed_pairs };
  const o = override as BattleInput & Partial<HistoricalSpec>;
  const spec: Partial<HistoricalSpec> = { ...period, ...(o.backtest_config ?? {}) };
  for (const k of ['start_time', 'end_time', 'candle_interval', 'pairs'] as const) if (o[k] !== undefined) (spec as Record<string, unknown>)[k] = o[k];
  return {
    name: o.name ?? `Replay: ${src.name}`.slice(0, LIMITS.battle_name_chars_max), battle_mode: 'historical', preset: src.preset,
    starting_balance: o.starting_balance ?? src.config.starting_balance, ranking_metric: o.ranking_metric ?? src.ranking_metric,
    backtest_config: spec, config: { ...src.config.extra, ...(o.config ?? {}) },
  };
}
