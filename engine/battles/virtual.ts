import { ApiError } from '../../schemas/errors.js';
import { BACKTEST_TUNING } from '../../schemas/backtest.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../log.js';
import type { MarketData } from '../market/types.js';
import type { Account, Agent } from '../identity/types.js';
import type { PlaceRequest } from '../trading.js';
import type { StepRunner } from '../backtests.js';
import { BACKTEST_RISK_BASE, derivedId, snapshot, type Snapshot } from '../core/sim.js';
import type { OrderRec } from '../core/wallet.js';
import { FINISHED, rankParticipants, type Battle, type Ranking } from '../core/battle-rules.js';
import { histInputs, histPrices, histStep, standings, virtualNow, type Standing } from '../core/battle-sim.js';
import { batchCells, reloadClock, stepInPool } from './historical.js';
import type { Entry, Registry } from './registry.js';

/** The shared clock after a step: prices at virtual time and every participant valued at them. */
export interface ClockView {
  battle: Battle;
  step: number;
  total_steps: number;
  virtual_time: number;
  prices: Record<string, string>;
  standings: Standing[];
}

/**
 * The virtual clock of historical battles: stepping (large batches in the worker pool), orders of named
 * participants at virtual time, prices and standings there. Candles are loaded on first use (after a
 * restart too) and dropped once a battle has finished. Every method runs inside the registry's `exclusive`.
 */
export class VirtualClock {
  readonly stats = { worker_batches: 0 };
  /** Batches of at least this many candle-steps × participants go to the worker pool (a test lowers it). */
  workerCellsMin: number = BACKTEST_TUNING.worker_cells_min;

  constructor(
    private readonly reg: Registry,
    private readonly db: Db,
    private readonly market: MarketData,
    private readonly runner: StepRunner | null,
    private readonly log: Logger,
  ) {}

  async step(e: Entry, n: number): Promise<ClockView> {
    const b = e.battle;
    const running = b.mode === 'historical' && (b.status === 'active' || b.status === 'paused');
    if (running) await this.ensure(e);
    if (this.runner && running && b.hist && batchCells(b.hist, n) >= this.workerCellsMin) {
      const outs = await stepInPool(this.runner, b.hist, e.rt.clock!, n).catch((err) => {
        this.log.error('battle.worker_failed', { battle_id: b.id, err });
        throw new ApiError('SERVICE_UNAVAILABLE', 'The step workers are busy or failed; try again.', { battle_id: b.id });
      });
      this.reg.send(e, (reply) => ({ type: 'battle.absorb', outs, now: new Date(), reply }));
      this.stats.worker_batches += 1;
    } else {
      this.reg.send(e, (reply) => ({ type: 'battle.step', n, now: new Date(), reply }));
    }
    const view = this.view(e);
    await this.reg.persist(e);
    this.reg.emit(b, 'battle:update', updateData(view));
    this.release(e);
    return view;
  }

  /** Order ids derive from the battle, the agent and its order count, so a replayed battle has the same ones. */
  async order(e: Entry, account: Account, agent: Agent, req: PlaceRequest): Promise<OrderRec> {
    const b = e.battle;
    if (b.mode === 'historical' && (b.status === 'active' || b.status === 'paused')) await this.ensure(e);
    const known = req.client_order_id ? b.hist?.sims[agent.id]?.wallet.client_ids[req.client_order_id] : undefined;
    if (known) return e.rt.ledgers[agent.id].orders.get(known)!;
    const order_id = derivedId(`order:${b.id}:${agent.id}:${b.hist?.placed[agent.id] ?? 0}`);
    const input = { ...req, order_id, trade_id: derivedId(`trade:${order_id}`) };
    const risk = { ...BACKTEST_RISK_BASE, ...account.risk_profile, ...agent.risk_profile };
    const order = this.reg.send<OrderRec>(e, (reply) => ({ type: 'order.place', agent_id: agent.id, input, risk, reply }));
    await this.reg.persist(e);
    return order;
  }

  async prices(e: Entry): Promise<ClockView> {
    const b = e.battle;
    if (b.mode !== 'historical') throw new ApiError('BATTLE_INVALID_STATE', 'Prices at virtual time are only for historical battles; a live battle trades at /market/prices.', { battle_id: b.id, battle_mode: b.mode });
    if (!b.hist) throw new ApiError('BATTLE_INVALID_STATE', 'The battle has not started: its virtual clock does not exist yet.', { battle_id: b.id, current_status: b.status });
    await this.ensure(e);
    const view = this.view(e);
    this.release(e);
    return view;
  }

  /** Standings at the virtual time: each equity curve so far plus a point now. */
  async standings(e: Entry): Promise<{ rankings: Ranking[]; elapsed_ms: number; at: number }> {
    await this.ensure(e);
    const b = e.battle;
    const { series, cfgs } = e.rt.clock!;
    const now: Record<string, Snapshot> = {};
    for (const [agent, sim] of Object.entries(b.hist!.sims)) now[agent] = snapshot(series, cfgs[agent], sim);
    const at = virtualNow(b.hist!, e.rt.clock!);
    return { rankings: rankParticipants(b.ranking_metric, histInputs(b, e.rt.ledgers, now)), elapsed_ms: at - b.hist!.start_ms, at };
  }

  view(e: Entry): ClockView {
    const h = e.battle.hist!;
    const prices = histPrices(h, e.rt.clock!);
    return { battle: e.battle, step: histStep(h), total_steps: h.total_steps, virtual_time: virtualNow(h, e.rt.clock!), prices, standings: standings(e.battle, h.sims, prices) };
  }

  async ensure(e: Entry): Promise<void> {
    if (!e.rt.clock && e.battle.hist) e.rt.clock = await reloadClock(this.db, this.market, e.battle);
  }

  /** A finished battle keeps its results; its candles are reloaded only if someone reads prices again. */
  release(e: Entry): void {
    if (FINISHED.has(e.battle.status)) e.rt.clock = null;
  }
}

/** The `battle:update` of a historical step: the seed's payload plus the clock. */
export function updateData(v: ClockView) {
  const t = new Date(v.virtual_time).toISOString();
  const names = new Map(v.battle.participants.map((p) => [p.agent_id, p.agent_name]));
  return {
    battle_id: v.battle.id, timestamp: t, virtual_time: t, step: v.step, total_steps: v.total_steps,
    participants: v.standings.map((s) => ({ ...s, agent_name: names.get(s.agent_id) ?? null })),
  };
}
