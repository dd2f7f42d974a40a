import { ApiError } from '../../schemas/errors.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../log.js';
import type { Account } from '../identity/types.js';
import type { WalletRoute } from '../trading.js';
import { battleStream } from '../store/streams.js';
import * as repo from '../store/battles-repo.js';
import { FINISHED, participantOf, RUNNING, type Battle } from '../core/battle-rules.js';
import { emptyRuntime, type BattleRuntime } from '../core/battle-sim.js';
import { startBattle, type BattleActor, type BattleCommand, type Outcome } from '../machines/battle.machine.js';

export interface BattleEvent {
  type: 'battle:update' | 'battle:trade' | 'battle:status';
  battle_id: string;
  account_id: string;
  data: Record<string, unknown>;
}

export interface Entry {
  actor: BattleActor;
  battle: Battle;
  rt: BattleRuntime;
  /** battle_log entries already durable (the next seq). */
  saved: number;
  queue: Promise<unknown>;
  /** Live: wall time of the next equity snapshot. */
  nextSnap: number;
  /** Live: the battle is being stopped; its agents' orders are refused meanwhile. */
  closing: boolean;
  /** The participants as last saved (JSON), so a step that changes none of them does not rewrite them. */
  savedParticipants: string;
  /** Commands queued or running; a busy battle never leaves memory. */
  busy: number;
  /** Last time a request found this battle. */
  used_ms: number;
}

const notFound = (id: string) => new ApiError('BATTLE_NOT_FOUND', `Battle '${id}' not found.`, { battle_id: id });

/** The next multiple of the interval after `now`, counted from the battle's start. */
export function nextSnapshotAt(b: Battle, now: number, interval_ms: number): number {
  const start = b.started_at ? Date.parse(b.started_at) : now;
  return start + (Math.floor((now - start) / interval_ms) + 1) * interval_ms;
}

/**
 * Battle actors in memory: loaded from the database on first use (running ones at start-up), one command at
 * a time per battle, changes saved before they are published, and the map of agents in active live battles
 * that the trading router reads.
 */
export class Registry {
  readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly listeners = new Set<(e: BattleEvent) => void>();
  /** agent id → the active live battle it trades in. */
  private readonly liveOf = new Map<string, string>();

  /**
   * How long an unused battle stays in memory; a running live battle always stays (its clock needs it). Everything
   * else about a battle is stored, so one that leaves is loaded again on its next use: finished battles are only
   * read (results, replay), and a draft or a historical battle left halfway does not hold its candles for ever.
   */
  idle_ms = { finished: 60_000, unfinished: 10 * 60_000 };
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly db: Db,
    private readonly snapshot_interval_ms: number,
    private readonly log: Logger,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 15_000);
    this.sweeper.unref();
  }

  /** Drops the battles idle longer than `idle_ms` from memory; returns how many left. */
  sweep(now = Date.now()): number {
    let n = 0;
    for (const e of this.entries.values()) {
      const b = e.battle;
      if (e.busy > 0 || (b.mode === 'live' && RUNNING.has(b.status))) continue;
      if (now - e.used_ms < (FINISHED.has(b.status) ? this.idle_ms.finished : this.idle_ms.unfinished)) continue;
      this.forget(e);
      n++;
    }
    return n;
  }

  onEvent(listener: (e: BattleEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(b: Battle, type: BattleEvent['type'], data: Record<string, unknown>): void {
    for (const l of this.listeners) {
      try {
        l({ type, battle_id: b.id, account_id: b.account_id, data });
      } catch (err) {
        this.log.error('battle.listener_failed', { battle_id: b.id, err: err as Error });
      }
    }
  }

  /** Where an agent's own-key trading goes: its battle wallet while it is in an active live battle. */
  route(agentId: string): WalletRoute | null {
    const battleId = this.liveOf.get(agentId);
    if (!battleId) return null;
    const e = this.entries.get(battleId);
    const p = e ? participantOf(e.battle, agentId) : undefined;
    // An entry being reloaded (after a failed save) refuses orders until it is back.
    return { stream: battleStream(battleId, agentId), battle_id: battleId, paused: !e || e.closing || p?.status !== 'active' };
  }

  liveBattleOf(agentId: string): string | undefined {
    return this.liveOf.get(agentId);
  }

  routeLive(b: Battle): void {
    for (const p of b.participants) this.liveOf.set(p.agent_id, b.id);
  }

  unroute(b: Battle): void {
    for (const p of b.participants) if (this.liveOf.get(p.agent_id) === b.id) this.liveOf.delete(p.agent_id);
  }

  adopt(b: Battle, rt: BattleRuntime, saved: number): Entry {
    const e: Entry = {
      actor: startBattle(b, rt), battle: b, rt, saved, queue: Promise.resolve(), nextSnap: 0, closing: false, savedParticipants: JSON.stringify(b.participants),
      busy: 0, used_ms: Date.now(),
    };
    this.entries.set(b.id, e);
    if (b.mode === 'live' && RUNNING.has(b.status)) {
      this.routeLive(b);
      e.nextSnap = nextSnapshotAt(b, Date.now(), this.snapshot_interval_ms);
    }
    return e;
  }

  /** The battle if this account owns it: 404 BATTLE_NOT_FOUND when there is none, 403 PERMISSION_DENIED for another account's. */
  async owned(account: Account, id: string): Promise<Entry> {
    const e = await this.load(id.toLowerCase());
    if (e.battle.account_id !== account.id) throw new ApiError('PERMISSION_DENIED', 'You do not own this battle.', { battle_id: id });
    e.used_ms = Date.now();
    return e;
  }

  load(id: string): Promise<Entry> {
    const e = this.entries.get(id);
    if (e) return Promise.resolve(e);
    let pending = this.loading.get(id);
    if (!pending) {
      pending = this.restore(id).finally(() => this.loading.delete(id));
      this.loading.set(id, pending);
    }
    return pending;
  }

  private async restore(id: string): Promise<Entry> {
    const b = await repo.loadBattle(this.db, id);
    if (!b) throw notFound(id);
    const rt = emptyRuntime();
    let saved = 0;
    if (b.mode === 'historical' && b.hist) ({ ledgers: rt.ledgers, saved } = await repo.loadLedgers(this.db, b));
    return this.adopt(b, rt, saved);
  }

  forget(e: Entry): void {
    e.actor.stop();
    this.entries.delete(e.battle.id);
  }

  exclusive<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
    e.busy++;
    const run = e.queue.then(fn, fn).finally(() => {
      e.busy--;
      e.used_ms = Date.now();
    });
    e.queue = run.catch(() => {});
    return run;
  }

  /** Sends one command; a rejection comes back as an ApiError with the machine's code. */
  send<T = unknown>(e: Entry, build: (reply: (r: Outcome<T>) => void) => BattleCommand): T {
    let r: Outcome<T> | undefined;
    e.actor.send(build((x) => (r = x)));
    if (!r) throw new Error(`battle ${e.battle.id}: the actor did not answer`);
    if (!r.ok) throw new ApiError(r.code, r.message, r.details);
    return r.value;
  }

  /** Makes the battle's changes durable, then publishes them; on failure it is reloaded from what is stored. */
  async persist(e: Entry): Promise<void> {
    const entries = e.rt.unsaved.splice(0);
    const snaps = e.rt.snaps.splice(0);
    const emits = e.rt.outbox.splice(0);
    const participants = JSON.stringify(e.battle.participants);
    try {
      await repo.saveBattle(this.db, e.battle, { entries, from: e.saved, snaps }, participants !== e.savedParticipants);
      e.saved += entries.length;
      e.savedParticipants = participants;
    } catch (err) {
      this.log.error('battle.persist_failed', { battle_id: e.battle.id, err: err as Error });
      this.forget(e);
      void this.load(e.battle.id).catch(() => {});
      throw new ApiError('SERVICE_UNAVAILABLE', 'The battle could not be saved; its last command was not applied.', { battle_id: e.battle.id });
    }
    for (const m of emits) this.emit(e.battle, `battle:${m.type}`, m.data);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.allSettled([...this.entries.values()].map((e) => e.queue));
    for (const e of this.entries.values()) e.actor.stop();
    this.entries.clear();
  }
}
