import { randomUUID } from 'node:crypto';
import { ApiError } from '../schemas/errors.js';
import { LIMITS } from '../schemas/limits.js';
import type { Db } from './store/db.js';
import type { Logger } from './log.js';
import type { MarketData } from './market/types.js';
import type { IdentityService } from './identity/service.js';
import type { Account, Principal } from './identity/types.js';
import type { PlaceRequest, Trading } from './trading.js';
import type { StepRunner } from './backtests.js';
import * as repo from './store/battles-repo.js';
import type { OrderRec } from './core/wallet.js';
import { participantOf, rankParticipants, RUNNING, type Battle, type Participant, type Ranking } from './core/battle-rules.js';
import { battleHash, emptyRuntime, tradeData } from './core/battle-sim.js';
import { resolveSettings, replayInput, type BattleInput } from './battles/input.js';
import { coveredPairs, prepareHistorical } from './battles/historical.js';
import { liveInputs, liveRows, LiveClock, streamsOf, type LiveOptions } from './battles/live.js';
import { Registry, type BattleEvent, type Entry } from './battles/registry.js';
import { VirtualClock, type ClockView } from './battles/virtual.js';

export type { BattleEvent } from './battles/registry.js';

export interface BattleOptions extends LiveOptions {
  feeRate: string;
}

export type { ClockView } from './battles/virtual.js';

/**
 * The registry of battle actors: creates battles, restores them from the database (running ones at start-up,
 * others on first use), checks ownership, runs one command at a time per battle, routes live participants'
 * trading to their battle wallets, drives live battles' clocks (snapshots, automatic completion), steps
 * historical ones (large batches in the worker pool), and publishes what changed once it is durable.
 */
export class Battles {
  private readonly reg: Registry;
  private readonly clock: LiveClock;
  private stopTrades: (() => void) | null = null;
  private readonly virtual: VirtualClock;

  constructor(
    private readonly db: Db,
    private readonly market: MarketData,
    private readonly identity: IdentityService,
    private readonly trading: Trading,
    runner: StepRunner | null,
    private readonly opts: BattleOptions,
    private readonly log: Logger,
  ) {
    this.reg = new Registry(db, opts.snapshot_interval_ms, log);
    this.clock = new LiveClock(this.reg, db, trading, market, opts, log);
    this.virtual = new VirtualClock(this.reg, db, market, runner, log);
  }

  /** Drops idle battles from memory (see Registry.idle_ms; it also runs on a timer); returns how many left. */
  sweep(now?: number): number {
    return this.reg.sweep(now);
  }

  /** Battles in memory now. */
  get loaded(): number {
    return this.reg.entries.size;
  }

  get stats(): { worker_batches: number } {
    return this.virtual.stats;
  }

  /** Batches of at least this many candle-steps × participants go to the worker pool (a test lowers it). */
  get workerCellsMin(): number {
    return this.virtual.workerCellsMin;
  }

  set workerCellsMin(v: number) {
    this.virtual.workerCellsMin = v;
  }

  /** Restores running battles (live ones resume trading on their battle wallets), installs the router and starts the clock. */
  async start(): Promise<void> {
    const ids = await repo.runningBattleIds(this.db);
    for (const id of ids) await this.reg.load(id);
    this.trading.setRouter((agentId) => this.reg.route(agentId));
    this.stopTrades = this.trading.onEvents((agentId, events, battleId) => {
      const e = battleId ? this.reg.entries.get(battleId) : undefined;
      if (!e) return;
      for (const ev of events) if (ev.type === 'order.filled') this.reg.emit(e.battle, 'battle:trade', tradeData(e.battle.id, agentId, ev.trade));
    });
    this.clock.start();
    this.log.info('battles.ready', { running: ids.length });
  }

  /** Stops the clock and waits for commands in flight (the worker pool is closed by its owner, backtests). */
  async close(): Promise<void> {
    this.clock.stop();
    this.stopTrades?.();
    await this.reg.close();
  }

  onEvent(listener: (e: BattleEvent) => void): () => void {
    return this.reg.onEvent(listener);
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  async create(p: Principal, input: BattleInput, participants: Participant[] = []): Promise<Battle> {
    const settings = resolveSettings(input, null);
    if (settings.backtest_config) await coveredPairs(this.db, settings.backtest_config);
    const b: Battle = {
      id: randomUUID(), account_id: p.account.id, status: 'draft', ...settings, participants, created_at: new Date().toISOString(),
      started_at: null, ended_at: null, rankings: null, hist: null,
    };
    await repo.insertBattle(this.db, b);
    this.reg.adopt(b, emptyRuntime(), 0);
    return b;
  }

  list(p: Principal, status: string | null, limit: number, offset: number) {
    return repo.listBattles(this.db, p.account.id, status, limit, offset);
  }

  async get(p: Principal, id: string): Promise<Battle> {
    return (await this.reg.owned(p.account, id)).battle;
  }

  /** For subscriptions: the battle exists and belongs to this account (else BATTLE_NOT_FOUND / PERMISSION_DENIED). */
  async assertOwner(account: Account, id: string): Promise<void> {
    await this.reg.owned(account, id);
  }

  async update(p: Principal, id: string, input: BattleInput): Promise<Battle> {
    const e = await this.reg.owned(p.account, id);
    return this.reg.exclusive(e, async () => {
      if (e.battle.status !== 'draft') this.reg.send(e, (reply) => ({ type: 'battle.update', patch: {}, reply }));
      const patch = resolveSettings(input, e.battle);
      if (patch.backtest_config) await coveredPairs(this.db, patch.backtest_config);
      this.reg.send(e, (reply) => ({ type: 'battle.update', patch, reply }));
      await this.reg.persist(e);
      return e.battle;
    });
  }

  /** A running battle is cancelled; any other is deleted. */
  async remove(p: Principal, id: string): Promise<'cancelled' | 'deleted'> {
    const e = await this.reg.owned(p.account, id);
    return this.reg.exclusive(e, async () => {
      if (RUNNING.has(e.battle.status)) {
        await this.cancel(e);
        return 'cancelled';
      }
      this.reg.send(e, (reply) => ({ type: 'battle.delete', reply }));
      await repo.deleteBattle(this.db, id);
      if (e.battle.mode === 'live' && e.battle.started_at) for (const s of streamsOf(e.battle)) this.trading.evict(s);
      this.reg.forget(e);
      return 'deleted';
    });
  }

  async addParticipant(p: Principal, id: string, agentId: string): Promise<Battle> {
    const e = await this.reg.owned(p.account, id);
    const agent = await this.identity.ownedAgent(p.account, agentId);
    if (agent.status === 'archived') throw new ApiError('AGENT_INVALID_STATE', 'An archived agent cannot join a battle.', { agent_id: agent.id });
    return this.reg.exclusive(e, async () => {
      if (e.battle.participants.length >= LIMITS.battle_participants_max && e.battle.status === 'draft') {
        throw new ApiError('BATTLE_INVALID_STATE', `A battle has at most ${LIMITS.battle_participants_max} participants.`, { battle_id: id });
      }
      // Join times strictly increase: the join order is the ranking's last tie-break and must survive a reload.
      const last = e.battle.participants.at(-1);
      const joined = Math.max(Date.now(), last ? Date.parse(last.joined_at) + 1 : 0);
      const participant: Participant = {
        agent_id: agent.id, agent_name: agent.display_name, status: 'active', joined_at: new Date(joined).toISOString(), snapshot_balance: null, final_equity: null, final_rank: null,
      };
      this.reg.send(e, (reply) => ({ type: 'participant.add', participant, reply }));
      await this.reg.persist(e);
      return e.battle;
    });
  }

  async removeParticipant(p: Principal, id: string, agentId: string): Promise<Battle> {
    const e = await this.reg.owned(p.account, id);
    return this.reg.exclusive(e, async () => {
      this.reg.send(e, (reply) => ({ type: 'participant.remove', agent_id: agentId, reply }));
      await this.reg.persist(e);
      return e.battle;
    });
  }

  async startBattle(p: Principal, id: string): Promise<Battle> {
    const e = await this.reg.owned(p.account, id);
    return this.reg.exclusive(e, async () => {
      this.reg.send(e, (reply) => ({ type: 'battle.start', reply }));
      const b = e.battle;
      try {
        if (b.mode === 'live') {
          await this.clock.open(e);
          this.reg.send(e, (reply) => ({ type: 'battle.begin', now: new Date(), hist: null, clock: null, reply }));
        } else {
          const { hist, clock } = await prepareHistorical(this.db, this.market, b, this.opts.feeRate);
          this.reg.send(e, (reply) => ({ type: 'battle.begin', now: new Date(), hist, clock, reply }));
        }
      } catch (err) {
        this.reg.send(e, (reply) => ({ type: 'battle.abort', reply }));
        throw err;
      }
      if (b.mode === 'live') await this.clock.begun(e);
      await this.reg.persist(e);
      return b;
    });
  }

  async pause(p: Principal, id: string, agentId: string, resume: boolean): Promise<{ battle: Battle; participant: Participant }> {
    const e = await this.reg.owned(p.account, id);
    return this.reg.exclusive(e, async () => {
      this.reg.send(e, (reply) => ({ type: resume ? 'participant.resume' : 'participant.pause', agent_id: agentId, now: new Date(), reply }));
      await this.reg.persist(e);
      return { battle: e.battle, participant: participantOf(e.battle, agentId)! };
    });
  }

  /** Completes a running battle with final rankings; a completed one is answered as it is. */
  async stop(p: Principal, id: string): Promise<Battle> {
    const e = await this.reg.owned(p.account, id);
    return this.reg.exclusive(e, async () => {
      if (e.battle.mode === 'live') return this.clock.stopLive(e, new Date());
      if (RUNNING.has(e.battle.status)) await this.virtual.ensure(e);
      this.reg.send(e, (reply) => ({ type: 'battle.stop', now: new Date(), reply }));
      await this.reg.persist(e);
      this.virtual.release(e);
      return e.battle;
    });
  }

  async replayCreate(p: Principal, id: string, override: Record<string, unknown>, agentIds: string[] | null): Promise<Battle> {
    const src = (await this.reg.owned(p.account, id)).battle;
    if (src.status !== 'completed') throw new ApiError('BATTLE_INVALID_STATE', `Only a completed battle can be replayed; this one is ${src.status}.`, { battle_id: id, current_status: src.status, required_status: 'completed' });
    const ids = agentIds ?? src.participants.map((x) => x.agent_id);
    const participants: Participant[] = [];
    for (const agentId of [...new Set(ids.map((x) => x.toLowerCase()))]) {
      const agent = await this.identity.ownedAgent(p.account, agentId);
      participants.push({ agent_id: agent.id, agent_name: agent.display_name, status: 'active', joined_at: new Date(Date.now() + participants.length).toISOString(), snapshot_balance: null, final_equity: null, final_rank: null });
    }
    return this.create(p, replayInput(src, override), participants);
  }

  // ---- historical clock ----------------------------------------------------------------------

  /** Advances the shared clock n candles: in this thread, or in the worker pool when the batch is large. */
  async step(p: Principal, id: string, n: number): Promise<ClockView> {
    const e = await this.reg.owned(p.account, id);
    return this.reg.exclusive(e, () => this.virtual.step(e, n));
  }

  /** An order of a named participant at the current virtual time (the backtests' fill rules). */
  async order(p: Principal, id: string, agentId: string, req: PlaceRequest): Promise<OrderRec> {
    const e = await this.reg.owned(p.account, id);
    const agent = await this.identity.ownedAgent(p.account, agentId);
    return this.reg.exclusive(e, () => this.virtual.order(e, p.account, agent, req));
  }

  /** Last closes at the virtual time (historical battles that have started). */
  async prices(p: Principal, id: string): Promise<ClockView> {
    const e = await this.reg.owned(p.account, id);
    return this.reg.exclusive(e, () => this.virtual.prices(e));
  }

  // ---- reads ---------------------------------------------------------------------------------

  /** Current standings of a running battle, ranked by its metric. */
  async live(p: Principal, id: string): Promise<{ battle: Battle; rankings: Ranking[]; elapsed_ms: number; at: number }> {
    const e = await this.reg.owned(p.account, id);
    return this.reg.exclusive(e, async () => {
      const b = e.battle;
      if (!RUNNING.has(b.status)) throw new ApiError('BATTLE_INVALID_STATE', `Live standings are for running battles; this one is ${b.status}.`, { battle_id: id, current_status: b.status, required_status: 'active' });
      if (b.mode === 'live') {
        const at = Date.now();
        const rows = await liveRows(this.trading, this.market, b, at);
        const rankings = rankParticipants(b.ranking_metric, await liveInputs(this.db, b, rows));
        return { battle: b, rankings, elapsed_ms: at - Date.parse(b.started_at!), at };
      }
      return { battle: b, ...(await this.virtual.standings(e)) };
    });
  }

  async results(p: Principal, id: string): Promise<Battle> {
    const b = (await this.reg.owned(p.account, id)).battle;
    if (b.status !== 'completed') throw new ApiError('BATTLE_INVALID_STATE', `Results exist once a battle is completed; this one is ${b.status}.`, { battle_id: id, current_status: b.status, required_status: 'completed' });
    return b;
  }

  async replay(p: Principal, id: string, limit: number, offset: number) {
    const b = (await this.reg.owned(p.account, id)).battle;
    return { battle: b, ...(await repo.snapshotPage(this.db, id, limit, offset)) };
  }

  /** What a historical battle produced, as one digest (see battleHash); for reproducibility checks. */
  async stateHash(p: Principal, id: string): Promise<string> {
    const e = await this.reg.owned(p.account, id);
    return battleHash(e.battle, e.rt.ledgers);
  }

  // ---- internals -----------------------------------------------------------------------------

  private async cancel(e: Entry): Promise<void> {
    if (e.battle.mode === 'live') await this.clock.closeOrders(e);
    this.reg.send(e, (reply) => ({ type: 'battle.cancel', now: new Date(), reply }));
    this.reg.unroute(e.battle);
    await this.reg.persist(e);
    this.virtual.release(e);
  }
}
