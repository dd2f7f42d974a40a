import { ApiError } from '../../schemas/errors.js';
import type { Db } from '../store/db.js';
import type { MarketData, Pair } from '../market/types.js';
import { candleCoverage, loadSeries, storedSpan } from '../store/backtests-repo.js';
import type { StepRunner } from '../backtests.js';
import { warmupSlots } from '../core/backtest.js';
import { layoutOf } from '../core/series.js';
import type { StepOut } from '../core/sim.js';
import { periodSteps, type Battle, type HistoricalSpec, type HistState } from '../core/battle-rules.js';
import { histStep, initialSims, simConfigs, type HistClock } from '../core/battle-sim.js';

/**
 * The I/O side of historical battles: which pairs a period has candles for, loading the shared series
 * (the backtests' loader), and running a large batch in the worker pool, one task per participant.
 */
export function pairOf(market: MarketData, symbol: string): Pair {
  return market.pair(symbol) ?? {
    symbol, base_asset: symbol.endsWith('USDT') ? symbol.slice(0, -4) : symbol, quote_asset: 'USDT', status: 'active', min_qty: '0', step_size: '0', min_notional: '0',
  };
}

/** The pairs of the battle's period that have candles (all of them, or every stored one when pairs is null). */
export async function coveredPairs(db: Db, spec: HistoricalSpec): Promise<string[]> {
  const step = spec.candle_interval * 1000;
  const { start_ms, total_steps } = periodSteps(spec);
  const end = start_ms + total_steps * step;
  const coverage = await candleCoverage(db, spec.pairs, step, start_ms, end);
  const have = [...new Set(coverage.map((r) => r.symbol))];
  const pairs = spec.pairs ?? have;
  const missing = pairs.filter((s) => !have.includes(s));
  if (pairs.length === 0 || missing.length > 0) {
    const span = await storedSpan(db);
    throw new ApiError('BACKTEST_NO_DATA', `No candles ${missing.length ? `for ${missing.join(', ')} ` : ''}between ${new Date(start_ms).toISOString()} and ${new Date(end).toISOString()}.`, { missing, ...span });
  }
  return pairs;
}

async function clockOf(db: Db, market: MarketData, battleId: string, h: HistState): Promise<HistClock> {
  const { series, candles } = await loadSeries(db, h.pairs, h.interval_ms, h.start_ms - h.warmup * h.interval_ms, h.start_ms + h.total_steps * h.interval_ms);
  if (candles === 0) throw new ApiError('BACKTEST_NO_DATA', 'The candles of this battle are no longer stored.', { battle_id: battleId });
  return { series, cfgs: simConfigs(battleId, h, h.pairs.map((s) => pairOf(market, s))) };
}

/** The virtual clock at step 0: candles loaded and one fresh sim per participant. */
export async function prepareHistorical(db: Db, market: MarketData, b: Battle, feeRate: string): Promise<{ hist: HistState; clock: HistClock }> {
  const pairs = await coveredPairs(db, b.backtest_config!);
  const spec = b.backtest_config!;
  const interval_ms = spec.candle_interval * 1000;
  const { start_ms, total_steps } = periodSteps(spec);
  const hist: HistState = {
    total_steps, pairs, interval_ms, start_ms, warmup: warmupSlots(interval_ms), fee_rate: feeRate,
    sims: initialSims(b.id, b.participants.map((p) => p.agent_id), b.config.starting_balance), placed: {},
  };
  return { hist, clock: await clockOf(db, market, b.id, hist) };
}

/** The candles of a restored (or unloaded) battle, rebuilt from its stored state. */
export const reloadClock = (db: Db, market: MarketData, b: Battle): Promise<HistClock> => clockOf(db, market, b.id, b.hist!);

/** Candle-steps (steps × pairs × participants) a batch of n will do from here. */
export function batchCells(h: HistState, n: number): number {
  return Math.min(n, h.total_steps - histStep(h)) * h.pairs.length * Object.keys(h.sims).length;
}

/** One worker task per participant (they are independent wallets), run in parallel; the candles are shared, not copied. */
export async function stepInPool(runner: StepRunner, h: HistState, clock: HistClock, n: number): Promise<Record<string, StepOut>> {
  const layout = layoutOf(clock.series);
  const agents = Object.keys(h.sims);
  const outs = await Promise.all(agents.map((a) => runner.run({ buffer: clock.series.buffer, layout, cfg: clock.cfgs[a], state: h.sims[a], n })));
  return Object.fromEntries(agents.map((a, i) => [a, outs[i]]));
}
