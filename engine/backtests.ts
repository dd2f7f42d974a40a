import { randomUUID } from 'node:crypto';
import { ApiError } from '../schemas/errors.js';
import { BACKTEST_TUNING } from '../schemas/backtest.js';
import { LIMITS } from '../schemas/limits.js';
import type { Db } from './store/db.js';
import type { Logger } from './log.js';
import type { MarketData, Pair } from './market/types.js';
import type { IdentityService } from './identity/service.js';
import type { Principal } from './identity/types.js';
import { fmt } from './core/money.js';
import { BACKTEST_RISK_BASE, derivedId, initialState, type SimConfig, type StepOut, type StepTask } from './core/sim.js';
import { layoutOf } from './core/series.js';
import { clockView, simConfig, warmupSlots, type BacktestConfig, type ClockView, type Session } from './core/backtest.js';
import type { OrderRec } from './core/wallet.js';
import { startBacktest, type BacktestActor, type BacktestCommand, type Outcome } from './machines/backtest.machine.js';
import * as repo from './store/backtests-repo.js';
import type { PlaceRequest } from './trading.js';

/** Runs step tasks off the main thread (workers/pool.ts); the engine only knows this shape. */
export interface StepRunner {
  readonly threads: number;
  run(task: StepTask): Promise<StepOut>;
  close(): Promise<void>;
}

export type { ClockView } from './core/backtest.js';

export interface CreateInput {
  start_ms: number;
  end_ms: number;
  starting_balance: string | null;
  interval_ms: number;
  pairs: string[] | null;
  strategy_label: string;
  agent_id: string | null;
  fee_rate: string | null;
  exchange: string;
}

interface Entry {
  actor: BacktestActor;
  session: Session;
  /** Log entries already durable (the next seq). */
  saved: number;
  queue: Promise<unknown>;
  /** Commands queued or running; a busy session never leaves memory. */
  busy: number;
  /** Last time a request found this session. */
  used_ms: number;
}

const FINISHED = new Set(['completed', 'cancelled', 'failed']);
const notFound = (id: string) => new ApiError('BACKTEST_NOT_FOUND', `Backtest session '${id}' not found.`, { session_id: id });

/**
 * The registry of backtest actors: creates sessions, restores them from the database on first use (so
 * they survive a restart), checks that the caller owns them, runs one command at a time per session,
 * sends large batches to the worker pool, and makes every change durable before it answers.
 */
export class Backtests {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();
  /** Batches of at least this many candle-steps go to a worker (a test lowers it to force one). */
  workerCellsMin: number = BACKTEST_TUNING.worker_cells_min;
  /** Batches run, by where they ran. */
  readonly stats = { worker_batches: 0, main_batches: 0 };
  /**
   * How long an unused session stays in memory. Everything about a session is stored, so one that leaves is
   * restored on its next use (its candles reloaded): finished sessions are only read, and agents that walk away
   * from a running one do not pin its candles for ever.
   */
  idle_ms = { finished: 60_000, unfinished: 10 * 60_000 };
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly db: Db,
    private readonly market: MarketData,
    private readonly identity: IdentityService,
    private readonly runner: StepRunner | null,
    private readonly feeRate: string,
    private readonly log: Logger,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 15_000);
    this.sweeper.unref();
  }

  /** Drops the sessions idle longer than `idle_ms` from memory; returns how many left. */
  sweep(now = Date.now()): number {
    let n = 0;
    for (const [id, e] of this.entries) {
      if (e.busy > 0 || now - e.used_ms < (FINISHED.has(e.session.status) ? this.idle_ms.finished : this.idle_ms.unfinished)) continue;
      e.actor.stop();
      this.entries.delete(id);
      n++;
    }
    return n;
  }

  /** Sessions in memory now. */
  get loaded(): number {
    return this.entries.size;
  }

  async create(p: Principal, input: CreateInput): Promise<Session> {
    if (input.agent_id && p.agent && p.agent.id !== input.agent_id) {
      throw new ApiError('PERMISSION_DENIED', 'An agent may only create backtests for itself.', { agent_id: input.agent_id });
    }
    const agent = input.agent_id && !p.agent ? await this.identity.ownedAgent(p.account, input.agent_id) : p.agent;
    if (agent?.status === 'archived') throw new ApiError('AGENT_INVALID_STATE', 'An archived agent cannot run backtests.', { agent_id: agent.id });
    const { interval_ms: step } = input;
    const start = Math.floor(input.start_ms / step) * step;
    const total_steps = Math.floor((input.end_ms - start) / step);
    if (total_steps < 1) throw new ApiError('VALIDATION_ERROR', 'end_time must be at least one candle_interval after start_time.', { field: 'end_time' });
    const coverage = await repo.candleCoverage(this.db, input.pairs, step, start, input.end_ms);
    const have = [...new Set(coverage.map((r) => r.symbol))];
    const pairs = input.pairs ?? have;
    const missing = pairs.filter((s) => !have.includes(s));
    if (pairs.length === 0 || missing.length > 0) {
      const span = await repo.storedSpan(this.db);
      throw new ApiError('BACKTEST_NO_DATA', `No candles ${missing.length ? `for ${missing.join(', ')} ` : ''}between ${new Date(start).toISOString()} and ${new Date(input.end_ms).toISOString()}.`, { missing, ...span });
    }
    const cells = pairs.length * (warmupSlots(step) + total_steps);
    if (cells > LIMITS.series_cells_max) {
      throw new ApiError('VALIDATION_ERROR', `Too much data for one session: ${pairs.length} pairs × ${total_steps} steps; use fewer pairs, a shorter range or a longer candle_interval.`, { field: 'end_time', cells, cells_max: LIMITS.series_cells_max });
    }
    const id = randomUUID();
    const starting = fmt(input.starting_balance ?? agent?.starting_balance ?? p.account.starting_balance);
    const config: BacktestConfig = {
      start_time: new Date(start).toISOString(), end_time: new Date(input.end_ms).toISOString(), starting_balance: starting,
      candle_interval: step / 1000, pairs, strategy_label: input.strategy_label, fee_rate: input.fee_rate ?? this.feeRate, exchange: input.exchange,
    };
    const session: Session = {
      id, account_id: p.account.id, agent_id: agent?.id ?? null, status: 'created', config, total_steps, cfg: null, series: null,
      sim: initialState(agent?.id ?? p.account.id, starting, id), orders: new Map(), trades: [], snapshots: [], unsaved: [],
      created_at: new Date().toISOString(), started_at: null, completed_at: null, results: null,
    };
    await repo.insertBacktest(this.db, session);
    this.entries.set(id, { actor: startBacktest(session), session, saved: 0, queue: Promise.resolve(), busy: 0, used_ms: Date.now() });
    return session;
  }

  async start(p: Principal, id: string): Promise<ClockView & { session: Session }> {
    const e = await this.owned(p, id);
    return this.exclusive(e, async () => {
      if (e.session.status === 'created') {
        const { series, cfg } = await this.load(e.session);
        this.send(e, (reply) => ({ type: 'backtest.start', cfg, series, now: new Date(), reply }));
        await this.persist(e);
      } else if (e.session.status !== 'running') {
        this.send(e, (reply) => ({ type: 'backtest.start', cfg: e.session.cfg!, series: e.session.series!, now: new Date(), reply }));
      }
      return { session: e.session, ...(await this.clock(e)) };
    });
  }

  /** Advances n steps: in this thread, or in a worker for `fast` and large batches (the event loop stays free). */
  async step(p: Principal, id: string, n: number, fast: boolean): Promise<ClockView & { session: Session; out: StepOut }> {
    const e = await this.owned(p, id);
    return this.exclusive(e, async () => {
      const s = e.session;
      if (s.status !== 'running') this.send(e, (reply) => ({ type: 'backtest.step', n, now: new Date(), reply }));
      await this.ensureSeries(e).catch(async (err) => {
        // A running session whose candles were deleted can never step again: it fails, with what it has.
        if (err instanceof ApiError && err.code === 'BACKTEST_NO_DATA') {
          this.send(e, (reply) => ({ type: 'backtest.fail', now: new Date(), reply }));
          await this.persist(e);
        }
        throw err;
      });
      let out: StepOut;
      const cells = Math.min(n, s.total_steps - s.sim.step) * s.config.pairs.length;
      if (this.runner && (fast || cells >= this.workerCellsMin)) {
        const task: StepTask = { buffer: s.series!.buffer, layout: layoutOf(s.series!), cfg: s.cfg!, state: s.sim, n };
        const done = await this.runner.run(task).catch((err) => {
          this.log.error('backtest.worker_failed', { session_id: id, err });
          throw new ApiError('SERVICE_UNAVAILABLE', 'The step workers are busy or failed; try again.', { session_id: id });
        });
        out = this.send(e, (reply) => ({ type: 'backtest.absorb', out: done, now: new Date(), reply }));
        this.stats.worker_batches += 1;
      } else {
        out = this.send(e, (reply) => ({ type: 'backtest.step', n, now: new Date(), reply }));
        this.stats.main_batches += 1;
      }
      await this.persist(e);
      const view = await this.clock(e);
      // A finished session keeps its history; its candles are reloaded only if someone reads them.
      if (FINISHED.has(s.status)) s.series = null;
      return { session: s, out, ...view };
    });
  }

  async place(p: Principal, id: string, req: PlaceRequest): Promise<OrderRec> {
    const e = await this.owned(p, id);
    return this.exclusive(e, async () => {
      const s = e.session;
      const known = req.client_order_id ? s.sim.wallet.client_ids[req.client_order_id] : undefined;
      if (known) return s.orders.get(known)!;
      if (s.status === 'running') await this.ensureSeries(e);
      const agent = s.agent_id === null ? null : p.agent?.id === s.agent_id ? p.agent : await this.identity.ownedAgent(p.account, s.agent_id);
      const risk = { ...BACKTEST_RISK_BASE, ...p.account.risk_profile, ...(agent?.risk_profile ?? {}) };
      const order_id = randomUUID();
      const input = { ...req, order_id, trade_id: derivedId(`trade:${order_id}`) };
      const order = this.send<OrderRec>(e, (reply) => ({ type: 'order.place', input, risk, reply }));
      await this.persist(e);
      return order;
    });
  }

  /** The order after the attempt, and whether this call cancelled it (an order that is no longer open is answered as it is). */
  async cancelOrder(p: Principal, id: string, orderId: string): Promise<{ order: OrderRec; cancelled: boolean }> {
    const e = await this.owned(p, id);
    return this.exclusive(e, async () => {
      const existing = e.session.orders.get(orderId);
      if (!existing) throw new ApiError('ORDER_NOT_FOUND', `Order ${orderId} not found in this backtest.`, { order_id: orderId });
      if (existing.status !== 'pending' || e.session.status !== 'running') return { order: existing, cancelled: false };
      await this.ensureSeries(e);
      const order = this.send<OrderRec>(e, (reply) => ({ type: 'order.cancel', order_id: orderId, reply }));
      await this.persist(e);
      return { order, cancelled: true };
    });
  }

  /** Stops a session where it is (positions stay open, valued at the last close); a finished one is answered as it is. */
  async cancel(p: Principal, id: string): Promise<Session> {
    const e = await this.owned(p, id);
    return this.exclusive(e, async () => {
      if (FINISHED.has(e.session.status)) return e.session;
      if (e.session.status === 'running') await this.ensureSeries(e);
      this.send(e, (reply) => ({ type: 'backtest.cancel', now: new Date(), reply }));
      await this.persist(e);
      e.session.series = null;
      return e.session;
    });
  }

  /** A session of the caller, loaded (and restored) if needed. */
  async get(p: Principal, id: string): Promise<Session> {
    return (await this.owned(p, id)).session;
  }

  /** Last closes and portfolio at the session's virtual clock; loads candles of a finished session on demand. */
  async view(p: Principal, id: string): Promise<ClockView & { session: Session }> {
    const e = await this.owned(p, id);
    return { session: e.session, ...(await this.clock(e)) };
  }

  async list(p: Principal, f: Omit<repo.ListFilter, 'account_id'>, sort: string, limit: number, offset: number) {
    return repo.listBacktests(this.db, { ...f, account_id: p.account.id, agent_id: p.agent?.id ?? f.agent_id }, sort, limit, offset);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.allSettled([...this.entries.values()].map((e) => e.queue));
    for (const e of this.entries.values()) e.actor.stop();
    this.entries.clear();
    await this.runner?.close();
  }

  // ---- internals ---------------------------------------------------------------------------

  private async clock(e: Entry): Promise<ClockView> {
    if (e.session.status !== 'created') await this.ensureSeries(e);
    return clockView(e.session);
  }

  private pair(symbol: string): Pair {
    return this.market.pair(symbol) ?? {
      symbol, base_asset: symbol.endsWith('USDT') ? symbol.slice(0, -4) : symbol, quote_asset: 'USDT', status: 'active', min_qty: '0', step_size: '0', min_notional: '0',
    };
  }

  /** Candles from warm-up to the end, and the step configuration derived from them (never stored: always rebuilt). */
  private async load(s: Session): Promise<{ series: NonNullable<Session['series']>; cfg: SimConfig }> {
    const step = s.config.candle_interval * 1000;
    const start = Date.parse(s.config.start_time);
    const warmup = warmupSlots(step);
    const t0 = Date.now();
    const { series, candles } = await repo.loadSeries(this.db, s.config.pairs, step, start - warmup * step, start + s.total_steps * step);
    if (candles === 0) throw new ApiError('BACKTEST_NO_DATA', 'The candles of this backtest are no longer stored.', { session_id: s.id });
    this.log.info('backtest.candles_loaded', { session_id: s.id, candles, ms: Date.now() - t0 });
    return { series, cfg: simConfig(s, s.config.pairs.map((sym) => this.pair(sym))) };
  }

  private async ensureSeries(e: Entry): Promise<void> {
    if (e.session.series) return;
    const { series, cfg } = await this.load(e.session);
    e.session.series = series;
    e.session.cfg = cfg;
  }

  private async owned(p: Principal, id: string): Promise<Entry> {
    const mine = (s: { account_id: string; agent_id: string | null }) => s.account_id === p.account.id && (!p.agent || s.agent_id === p.agent.id);
    const e = this.entries.get(id);
    if (e) {
      if (!mine(e.session)) throw notFound(id);
      e.used_ms = Date.now();
      return e;
    }
    let pending = this.loading.get(id);
    if (!pending) {
      pending = this.restore(id).finally(() => this.loading.delete(id));
      this.loading.set(id, pending);
    }
    const loaded = await pending;
    if (!mine(loaded.session)) throw notFound(id);
    return loaded;
  }

  private async restore(id: string): Promise<Entry> {
    const row = await repo.backtestRow(this.db, id);
    if (!row) throw notFound(id);
    const { session, saved } = await repo.restoreSession(this.db, row);
    const e: Entry = { actor: startBacktest(session), session, saved, queue: Promise.resolve(), busy: 0, used_ms: Date.now() };
    this.entries.set(id, e);
    return e;
  }

  private exclusive<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
    e.busy++;
    const run = e.queue.then(fn, fn).finally(() => {
      e.busy--;
      e.used_ms = Date.now();
    });
    e.queue = run.catch(() => {});
    return run;
  }

  private send<T>(e: Entry, build: (reply: (r: Outcome<T>) => void) => BacktestCommand): T {
    let r: Outcome<T> | undefined;
    e.actor.send(build((x) => (r = x)));
    if (!r) throw new Error(`backtest ${e.session.id}: the actor did not answer`);
    if (!r.ok) throw new ApiError(r.code, r.message, r.details);
    return r.value;
  }

  /** Makes the session's changes durable; on failure it is dropped from memory so the next use reloads what is stored. */
  private async persist(e: Entry): Promise<void> {
    const entries = e.session.unsaved.splice(0);
    try {
      await repo.saveBacktest(this.db, e.session, entries, e.saved);
      e.saved += entries.length;
    } catch (err) {
      this.log.error('backtest.persist_failed', { session_id: e.session.id, err: err as Error });
      e.actor.stop();
      this.entries.delete(e.session.id);
      throw new ApiError('SERVICE_UNAVAILABLE', 'The backtest could not be saved; its last command was not applied.', { session_id: e.session.id });
    }
  }
}
