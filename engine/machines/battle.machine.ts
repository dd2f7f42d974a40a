import { createActor, setup, type ActorRefFrom } from 'xstate';
import type { PlaceInput, Rejection } from '../core/orders.js';
import type { RiskProfile } from '../core/risk-profile.js';
import { placeAt, snapshot, type StepOut } from '../core/sim.js';
import type { OrderRec } from '../core/wallet.js';
import {
  participantOf, rankParticipants, settleParticipants, type Battle, type BattleStatus, type HistState, type Participant, type RankInput,
} from '../core/battle-rules.js';
import { closeAll, histFinished, histInputs, keep, keepOrder, stepAll, type BattleRuntime, type HistClock, type SnapshotRow } from '../core/battle-sim.js';

/**
 * One actor per battle: draft → (starting) → active ⇄ paused → (stopping) → completed | cancelled.
 * `paused` means at least one participant is paused. `starting` and `stopping` hold the battle while the
 * registry does the asynchronous part (loading candles, funding battle wallets; cancelling live orders and
 * valuing the wallets), so no other command slips in between. Every command carries a reply; a command the
 * current state does not allow is answered 409 BATTLE_INVALID_STATE. The battle is updated in place and what
 * must be saved or published is queued in the runtime, which the registry drains once it is durable.
 */
export type Outcome<T = unknown> = { ok: true; value: T } | Rejection;
type Reply<T = unknown> = (r: Outcome<T>) => void;
export type BattlePatch = Partial<Pick<Battle, 'name' | 'mode' | 'ranking_metric' | 'config' | 'backtest_config' | 'preset'>>;

export type BattleCommand =
  | { type: 'battle.update'; patch: BattlePatch; reply: Reply }
  | { type: 'participant.add'; participant: Participant; reply: Reply }
  | { type: 'participant.remove'; agent_id: string; reply: Reply }
  | { type: 'battle.start'; reply: Reply }
  | { type: 'battle.begin'; now: Date; hist: HistState | null; clock: HistClock | null; reply: Reply }
  | { type: 'battle.abort'; reply: Reply }
  | { type: 'participant.pause' | 'participant.resume'; agent_id: string; now: Date; reply: Reply }
  | { type: 'battle.step'; n: number; now: Date; reply: Reply }
  /** A worker pool's result for a batch that started from the current state. */
  | { type: 'battle.absorb'; outs: Record<string, StepOut>; now: Date; reply: Reply }
  | { type: 'order.place'; agent_id: string; input: PlaceInput; risk: RiskProfile; reply: Reply<OrderRec> }
  | { type: 'battle.snapshot'; rows: SnapshotRow[]; now: Date; reply: Reply }
  | { type: 'battle.stop'; now: Date; reply: Reply }
  /** Live: the final valuation the registry made while the battle was stopping. */
  | { type: 'battle.conclude'; finals: RankInput[]; rows: SnapshotRow[]; now: Date; reply: Reply }
  | { type: 'battle.cancel'; now: Date; reply: Reply }
  | { type: 'battle.delete'; reply: Reply };

type Ctx = { battle: Battle; rt: BattleRuntime };
const ok: Outcome<null> = { ok: true, value: null };
/** What a refused command tried, and the status it needs. */
const WHAT: Partial<Record<BattleCommand['type'], [string, string]>> = {
  'battle.update': ['change the configuration', 'draft'], 'participant.add': ['add an agent', 'draft'], 'participant.remove': ['remove an agent', 'draft'],
  'battle.start': ['start the battle', 'draft'], 'battle.begin': ['start the battle', 'draft'], 'participant.pause': ['pause an agent', 'active'],
  'participant.resume': ['resume an agent', 'active'], 'battle.step': ['step the battle', 'active'], 'battle.absorb': ['step the battle', 'active'],
  'order.place': ['place an order', 'active'], 'battle.snapshot': ['snapshot the battle', 'active'], 'battle.stop': ['stop the battle', 'active'],
  'battle.conclude': ['stop the battle', 'active'], 'battle.cancel': ['cancel the battle', 'active'], 'battle.delete': ['delete the battle', 'draft'],
};
const stamp = (e: BattleCommand): string => ('now' in e ? e.now : new Date()).toISOString();
const invalid = (b: Battle, message: string, details: Record<string, unknown> = {}): Rejection =>
  ({ ok: false, code: 'BATTLE_INVALID_STATE', message, details: { battle_id: b.id, current_status: b.status, ...details } });

function emitStatus(c: Ctx, e: BattleCommand, extra: Record<string, unknown> = {}): void {
  c.rt.outbox.push({ type: 'status', data: { battle_id: c.battle.id, status: c.battle.status, timestamp: stamp(e), ...extra } });
}

function absorb(c: Ctx, outs: Record<string, StepOut>): void {
  for (const [agent, out] of Object.entries(outs)) keep(c.battle, c.rt, agent, out);
}

export const battleMachine = setup({
  types: { context: {} as Ctx, input: {} as Ctx, events: {} as BattleCommand },
  actions: {
    mark: ({ context: c, event }, params: { status: BattleStatus; event: string | null }) => {
      const previous = c.battle.status;
      c.battle.status = params.status;
      if (params.event) emitStatus(c, event, { previous_status: previous, event: params.event });
    },
    update: ({ context: { battle }, event }) => {
      if (event.type !== 'battle.update') return;
      Object.assign(battle, event.patch);
      event.reply(ok);
    },
    add: ({ context: { battle }, event }) => {
      if (event.type !== 'participant.add') return;
      if (participantOf(battle, event.participant.agent_id)) {
        return event.reply(invalid(battle, 'This agent is already in the battle.', { agent_id: event.participant.agent_id }));
      }
      battle.participants.push(event.participant);
      event.reply(ok);
    },
    remove: ({ context: { battle }, event }) => {
      if (event.type !== 'participant.remove') return;
      const i = battle.participants.findIndex((p) => p.agent_id === event.agent_id.toLowerCase());
      if (i < 0) return event.reply({ ok: false, code: 'BATTLE_NOT_FOUND', message: 'Participant not found in this battle.', details: { battle_id: battle.id, agent_id: event.agent_id } });
      battle.participants.splice(i, 1);
      event.reply(ok);
    },
    begin: ({ context: c, event }) => {
      if (event.type !== 'battle.begin') return;
      const b = c.battle;
      b.started_at = event.now.toISOString();
      b.hist = event.hist;
      emitStatus(c, event, { status: 'active', previous_status: b.status, event: 'started' });
      c.rt.clock = event.clock;
      for (const p of b.participants) {
        p.status = 'active';
        p.snapshot_balance = b.config.starting_balance;
      }
      if (b.hist && event.clock) {
        for (const [agent, sim] of Object.entries(b.hist.sims)) {
          keep(b, c.rt, agent, { state: sim, closed: [], trades: [], snapshots: [snapshot(event.clock.series, event.clock.cfgs[agent], sim)], last_step_from: 0, steps_executed: 0 });
        }
      }
      event.reply(ok);
    },
    pause: ({ context: c, event }) => {
      if (event.type !== 'participant.pause') return;
      participantOf(c.battle, event.agent_id)!.status = 'paused';
      emitStatus(c, event, { status: 'paused', event: 'agent_paused', agent_id: event.agent_id.toLowerCase() });
      event.reply(ok);
    },
    resume: ({ context: c, event }) => {
      if (event.type !== 'participant.resume') return;
      participantOf(c.battle, event.agent_id)!.status = 'active';
      const still = c.battle.participants.some((p) => p.status === 'paused');
      emitStatus(c, event, { status: still ? 'paused' : 'active', event: 'agent_resumed', agent_id: event.agent_id.toLowerCase() });
      event.reply(ok);
    },
    refuseParticipant: ({ context: { battle }, event }) => {
      if (event.type !== 'participant.pause' && event.type !== 'participant.resume') return;
      const p = participantOf(battle, event.agent_id);
      if (!p) return event.reply({ ok: false, code: 'BATTLE_NOT_FOUND', message: 'Participant not found in this battle.', details: { battle_id: battle.id, agent_id: event.agent_id } });
      const verb = event.type === 'participant.pause' ? 'pause' : 'resume';
      event.reply(invalid(battle, `Cannot ${verb} an agent that is ${p.status}.`, { agent_id: p.agent_id, participant_status: p.status }));
    },
    advance: ({ context: c, event }) => {
      if (event.type !== 'battle.step') return;
      absorb(c, stepAll(c.battle.hist!, c.rt.clock!, event.n));
      event.reply(ok);
    },
    absorb: ({ context: c, event }) => {
      if (event.type !== 'battle.absorb') return;
      absorb(c, event.outs);
      event.reply(ok);
    },
    place: ({ context: c, event }) => {
      if (event.type !== 'order.place') return;
      const b = c.battle;
      const p = participantOf(b, event.agent_id);
      if (!p) return event.reply({ ok: false, code: 'BATTLE_NOT_FOUND', message: 'This agent is not in the battle.', details: { battle_id: b.id, agent_id: event.agent_id } });
      if (p.status !== 'active') return event.reply(invalid(b, 'This agent is paused in the battle; its orders are refused until it is resumed.', { agent_id: p.agent_id }));
      const sim = b.hist!.sims[p.agent_id];
      const { series, cfgs } = c.rt.clock!;
      const d = placeAt(sim, series, cfgs[p.agent_id], event.input, event.risk);
      if (!d.ok) return event.reply(d);
      b.hist!.placed[p.agent_id] = (b.hist!.placed[p.agent_id] ?? 0) + 1;
      keepOrder(c.rt, p.agent_id, d.order);
      const trades = d.events.flatMap((e) => (e.type === 'order.filled' ? [e.trade] : []));
      const snapshots = trades.length ? [snapshot(series, cfgs[p.agent_id], sim)] : [];
      keep(b, c.rt, p.agent_id, { state: sim, closed: [], trades, snapshots, last_step_from: 0, steps_executed: 0 });
      event.reply({ ok: true, value: d.order });
    },
    record: ({ context: c, event }) => {
      if (event.type !== 'battle.snapshot') return;
      c.rt.snaps.push(...event.rows);
      event.reply(ok);
    },
    recordFinal: ({ context: c, event }) => {
      if (event.type === 'battle.conclude') c.rt.snaps.push(...event.rows);
    },
    closeOut: ({ context: c }) => absorb(c, closeAll(c.battle.hist!, c.rt.clock!)),
    conclude: ({ context: c, event }) => {
      const b = c.battle;
      const inputs = b.mode === 'historical' ? histInputs(b, c.rt.ledgers) : event.type === 'battle.conclude' ? event.finals : [];
      b.rankings = rankParticipants(b.ranking_metric, inputs);
      b.ended_at = stamp(event);
      settleParticipants(b, b.rankings);
      emitStatus(c, event, { event: 'completed', rankings: b.rankings.map((r) => ({ rank: r.rank, agent_id: r.agent_id, final_equity: r.final_equity, roi_pct: r.roi_pct })) });
    },
    settle: ({ context: c, event }) => {
      c.battle.ended_at = stamp(event);
      settleParticipants(c.battle, null);
    },
    answer: ({ event }) => {
      if ('reply' in event) (event.reply as Reply)(ok);
    },
    refuse: ({ context: { battle }, event }) => {
      if (!('reply' in event)) return;
      const [what, required] = WHAT[event.type] ?? [event.type, null];
      (event.reply as Reply)(invalid(battle, `Cannot ${what}: the battle is ${battle.status}.`, { required_status: required }));
    },
    refuseMode: ({ context: { battle }, event }) => {
      if (!('reply' in event)) return;
      const historical = event.type !== 'battle.snapshot';
      (event.reply as Reply)(invalid(battle, `${historical ? 'Stepping, orders and prices at virtual time are' : 'Wall-clock snapshots are'} only for ${historical ? 'historical' : 'live'} battles; this one is ${battle.mode}.`, { battle_mode: battle.mode }));
    },
    refuseFew: ({ context: { battle }, event }) => {
      if (event.type === 'battle.start') event.reply(invalid(battle, 'Need at least 2 participants to start a battle.', { participants: battle.participants.length }));
    },
  },
  guards: {
    enough: ({ context }) => context.battle.participants.length >= 2,
    historical: ({ context }) => context.battle.mode === 'historical' && context.rt.clock !== null,
    live: ({ context }) => context.battle.mode === 'live',
    finished: ({ context }) => context.battle.mode === 'historical' && context.battle.hist !== null && histFinished(context.battle.hist),
    canPause: ({ context, event }) => 'agent_id' in event && participantOf(context.battle, event.agent_id)?.status === 'active',
    canResume: ({ context, event }) => 'agent_id' in event && participantOf(context.battle, event.agent_id)?.status === 'paused',
    nonePaused: ({ context }) => !context.battle.participants.some((p) => p.status === 'paused'),
  },
}).createMachine({
  id: 'battle',
  context: ({ input }) => input,
  initial: 'draft',
  on: { '*': { actions: 'refuse' } },
  states: {
    draft: {
      on: {
        'battle.update': { actions: 'update' },
        'participant.add': { actions: 'add' },
        'participant.remove': { actions: 'remove' },
        'battle.start': [{ guard: 'enough', target: 'starting', actions: 'answer' }, { actions: 'refuseFew' }],
        'battle.delete': { actions: 'answer' },
      },
    },
    starting: {
      on: {
        'battle.begin': { target: 'running', actions: 'begin' },
        'battle.abort': { target: 'draft', actions: 'answer' },
      },
    },
    running: {
      initial: 'active',
      always: { guard: 'finished', target: 'completed' },
      on: {
        'participant.resume': [{ guard: 'canResume', actions: 'resume' }, { actions: 'refuseParticipant' }],
        'battle.step': [{ guard: 'historical', actions: 'advance' }, { actions: 'refuseMode' }],
        'battle.absorb': [{ guard: 'historical', actions: 'absorb' }, { actions: 'refuseMode' }],
        'order.place': [{ guard: 'historical', actions: 'place' }, { actions: 'refuseMode' }],
        'battle.snapshot': [{ guard: 'live', actions: 'record' }, { actions: 'refuseMode' }],
        'battle.stop': [{ guard: 'live', target: 'stopping', actions: 'answer' }, { guard: 'historical', target: 'completed', actions: ['closeOut', 'answer'] }, { actions: 'refuse' }],
        'battle.cancel': { target: 'cancelled', actions: 'answer' },
      },
      states: {
        active: {
          entry: { type: 'mark', params: { status: 'active', event: null } },
          on: { 'participant.pause': [{ guard: 'canPause', target: 'paused', actions: 'pause' }, { actions: 'refuseParticipant' }] },
        },
        paused: {
          entry: { type: 'mark', params: { status: 'paused', event: null } },
          always: { guard: 'nonePaused', target: 'active' },
          on: { 'participant.pause': [{ guard: 'canPause', actions: 'pause' }, { actions: 'refuseParticipant' }] },
        },
      },
    },
    stopping: {
      on: {
        'battle.conclude': { target: 'completed', actions: ['recordFinal', 'answer'] },
        // The valuation failed: back to where it was (paused again when someone still is).
        'battle.abort': [{ guard: 'nonePaused', target: 'running.active', actions: 'answer' }, { target: 'running.paused', actions: 'answer' }],
      },
    },
    completed: {
      entry: [{ type: 'mark', params: { status: 'completed', event: null } }, 'conclude'],
      // Stopping a battle that already completed (e.g. by reaching its last step) answers with it as it is.
      on: { 'battle.stop': { actions: 'answer' }, 'battle.delete': { actions: 'answer' } },
    },
    cancelled: {
      entry: [{ type: 'mark', params: { status: 'cancelled', event: 'cancelled' } }, 'settle'],
      on: { 'battle.delete': { actions: 'answer' } },
    },
  },
});

export type BattleActor = ActorRefFrom<typeof battleMachine>;

/** Starts an actor in the battle's stored status (a restored battle resumes where it was). */
export function startBattle(battle: Battle, rt: BattleRuntime): BattleActor {
  const value = battle.status === 'active' ? { running: 'active' } : battle.status === 'paused' ? { running: 'paused' } : battle.status === 'pending' ? 'draft' : battle.status;
  const snapshot = battleMachine.resolveState({ value, context: { battle, rt } });
  return createActor(battleMachine, { input: { battle, rt }, snapshot }).start();
}
