import { createActor, setup, type ActorRefFrom } from 'xstate';
import type { Rejection, PlaceInput } from '../core/orders.js';
import type { RiskProfile } from '../core/risk-profile.js';
import { cancelAt, placeAt, snapshot, step, type SimConfig, type StepOut } from '../core/sim.js';
import type { Series } from '../core/series.js';
import type { OrderRec } from '../core/wallet.js';
import { backtestResults, pushSnapshot, type BacktestStatus, type Session } from '../core/backtest.js';

/**
 * One actor per backtest session: created → running → completed | cancelled (failed when its data can no
 * longer be loaded). Commands run one at a time; the rules are the pure functions of engine/core/sim.ts.
 * The session object is updated in place (like the wallet actor) and every change is also queued in
 * `unsaved`, which the registry makes durable before it answers.
 */
export type { BacktestStatus, Session } from '../core/backtest.js';
export type Outcome<T> = { ok: true; value: T } | Rejection;
type Reply<T> = (r: Outcome<T>) => void;

export type BacktestCommand =
  | { type: 'backtest.start'; cfg: SimConfig; series: Series; now: Date; reply: Reply<null> }
  | { type: 'backtest.step'; n: number; now: Date; reply: Reply<StepOut> }
  /** A worker's result for a batch that started from the current state. */
  | { type: 'backtest.absorb'; out: StepOut; now: Date; reply: Reply<StepOut> }
  | { type: 'order.place'; input: PlaceInput; risk: RiskProfile; reply: Reply<OrderRec> }
  | { type: 'order.cancel'; order_id: string; reply: Reply<OrderRec> }
  | { type: 'backtest.cancel'; now: Date; reply: Reply<null> }
  | { type: 'backtest.fail'; now: Date; reply: Reply<null> };

function keepOrder(session: Session, o: OrderRec): void {
  session.orders.set(o.order_id, o);
  session.unsaved.push({ kind: 'order', body: o });
}

function keepOut(session: Session, out: StepOut): void {
  session.sim = out.state;
  for (const o of out.closed) keepOrder(session, o);
  for (const t of out.trades) {
    session.trades.push(t);
    session.unsaved.push({ kind: 'trade', body: t });
  }
  for (const s of out.snapshots) {
    pushSnapshot(session.snapshots, s);
    session.unsaved.push({ kind: 'snapshot', body: s });
  }
}

const stamp = (event: BacktestCommand): string => ('now' in event ? event.now : new Date()).toISOString();

export const backtestMachine = setup({
  types: {
    context: {} as { session: Session },
    input: {} as { session: Session },
    events: {} as BacktestCommand,
  },
  actions: {
    mark: ({ context }, params: { status: BacktestStatus }) => {
      context.session.status = params.status;
    },
    begin: ({ context: { session }, event }) => {
      if (event.type !== 'backtest.start') return;
      session.cfg = event.cfg;
      session.series = event.series;
      session.started_at = event.now.toISOString();
      const s = snapshot(event.series, event.cfg, session.sim);
      pushSnapshot(session.snapshots, s);
      session.unsaved.push({ kind: 'snapshot', body: s });
      event.reply({ ok: true, value: null });
    },
    advance: ({ context: { session }, event }) => {
      if (event.type !== 'backtest.step') return;
      const out = step(session.sim, session.series!, session.cfg!, event.n);
      keepOut(session, out);
      event.reply({ ok: true, value: out });
    },
    absorb: ({ context: { session }, event }) => {
      if (event.type !== 'backtest.absorb') return;
      keepOut(session, event.out);
      event.reply({ ok: true, value: event.out });
    },
    place: ({ context: { session }, event }) => {
      if (event.type !== 'order.place') return;
      const d = placeAt(session.sim, session.series!, session.cfg!, event.input, event.risk);
      if (!d.ok) return event.reply(d);
      keepOrder(session, d.order);
      const trades = d.events.flatMap((e) => (e.type === 'order.filled' ? [e.trade] : []));
      keepOut(session, { state: session.sim, closed: [], trades, snapshots: trades.length ? [snapshot(session.series!, session.cfg!, session.sim)] : [], last_step_from: 0, steps_executed: 0 });
      event.reply({ ok: true, value: d.order });
    },
    cancelOrder: ({ context: { session }, event }) => {
      if (event.type !== 'order.cancel') return;
      const d = cancelAt(session.sim, session.series!, session.cfg!, event.order_id);
      if (!d.ok) return event.reply(d);
      keepOrder(session, d.order);
      event.reply({ ok: true, value: d.order });
    },
    /** Cancelling keeps positions open (valued at the last close) and releases nothing: the state is frozen as it was. */
    stop: ({ context: { session }, event }) => {
      if (session.series && session.cfg) {
        const s = snapshot(session.series, session.cfg, session.sim);
        pushSnapshot(session.snapshots, s);
        session.unsaved.push({ kind: 'snapshot', body: s });
      }
      if ('reply' in event && (event.type === 'backtest.cancel' || event.type === 'backtest.fail')) event.reply({ ok: true, value: null });
    },
    conclude: ({ context: { session }, event }) => {
      session.completed_at = stamp(event);
      const wall = session.started_at ? Date.parse(session.completed_at) - Date.parse(session.started_at) : 0;
      session.results = backtestResults(session.config.starting_balance, session.snapshots, session.trades, wall);
    },
    refuse: ({ context: { session }, event }) => {
      if (!('reply' in event)) return;
      const verb = event.type.split('.')[1];
      (event.reply as Reply<unknown>)({
        ok: false, code: 'BACKTEST_INVALID_STATE', message: `Cannot ${verb} a backtest that is ${session.status}.`,
        details: { session_id: session.id, current_status: session.status, required_status: event.type === 'backtest.start' ? 'created' : 'running' },
      });
    },
  },
  guards: {
    finished: ({ context }) => context.session.sim.finished,
  },
}).createMachine({
  id: 'backtest',
  context: ({ input }) => ({ session: input.session }),
  initial: 'created',
  on: { '*': { actions: 'refuse' } },
  states: {
    created: {
      on: {
        'backtest.start': { target: 'running', actions: 'begin' },
        'backtest.cancel': { target: 'cancelled', actions: 'stop' },
      },
    },
    running: {
      entry: { type: 'mark', params: { status: 'running' } },
      always: { guard: 'finished', target: 'completed' },
      on: {
        'backtest.step': { actions: 'advance' },
        'backtest.absorb': { actions: 'absorb' },
        'order.place': { actions: 'place' },
        'order.cancel': { actions: 'cancelOrder' },
        'backtest.cancel': { target: 'cancelled', actions: 'stop' },
        'backtest.fail': { target: 'failed', actions: 'stop' },
      },
    },
    completed: { entry: [{ type: 'mark', params: { status: 'completed' } }, 'conclude'] },
    cancelled: { entry: [{ type: 'mark', params: { status: 'cancelled' } }, 'conclude'] },
    failed: { entry: [{ type: 'mark', params: { status: 'failed' } }, 'conclude'] },
  },
});

export type BacktestActor = ActorRefFrom<typeof backtestMachine>;

/** Starts an actor in the session's current status (a restored session resumes where it was). */
export function startBacktest(session: Session): BacktestActor {
  const snapshot = backtestMachine.resolveState({ value: session.status, context: { session } });
  return createActor(backtestMachine, { input: { session }, snapshot }).start();
}
