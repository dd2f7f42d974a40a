import type { Db, Queryable } from './db.js';

export interface JournalEvent {
  /** The stream an event belongs to: an agent id, a battle id, a backtest id. */
  stream: string;
  type: string;
  payload: unknown;
}

interface Waiter {
  seq: number;
  events: JournalEvent[];
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Data-modifying CTEs that write derived rows in the same statement as the journal rows; `param` is the
 * number of the first free `$n`. One statement per commit is atomic without BEGIN/COMMIT round trips.
 */
export type Projector = (events: readonly JournalEvent[], param: number) => { ctes: string[]; params: unknown[] };

/** The whole batch travels as one JSON parameter: no per-element array escaping on the client side. */
const JOURNAL_CTE = `j AS (INSERT INTO journal (stream, type, payload)
  SELECT x.e->>'s', x.e->>'t', x.e->'p' FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY x.n)`;
const journalRows = (events: readonly JournalEvent[]) => JSON.stringify(events.map((e) => ({ s: e.stream, t: e.type, p: e.payload })));

/** Writes events inside a caller's transaction (rare administrative changes that must be atomic with rows). */
export async function appendInTx(q: Queryable, events: readonly JournalEvent[]): Promise<void> {
  if (events.length === 0) return;
  await q.query(`WITH ${JOURNAL_CTE} SELECT 1`, [journalRows(events)]);
}

/**
 * Append-only journal with group commit: appends made while a commit is in flight wait and are
 * written together in the next single statement (one commit). Each caller's promise resolves only
 * once its events are durable, and rejects if that commit failed (nothing of it was written).
 */
export class Journal {
  private queue: Waiter[] = [];
  private writing = false;
  private closed = false;
  /** Waiters get increasing numbers; every waiter up to `settled` has its answer. */
  private seq = 0;
  private settled = 0;
  private idle: Array<{ target: number; resolve: () => void }> = [];
  private readonly failureListeners = new Set<(lost: readonly JournalEvent[]) => void>();
  readonly stats = { commits: 0, events: 0, failures: 0 };

  constructor(
    private readonly db: Db,
    private readonly batchEventsMax = 5000,
    /** Writes derived rows in the same statement as the events (see projection.ts). */
    private readonly project: Projector | null = null,
  ) {}

  append(events: JournalEvent[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('journal is closed'));
    if (events.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.queue.push({ seq: ++this.seq, events, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        // Let every append of the current tick join the first commit.
        setImmediate(() => void this.drain());
      }
    });
  }

  /**
   * Called with the events of a failed commit (and of everything it took down with it) synchronously, before any
   * caller hears of the failure: an owner of in-memory state can mark it stale before anything else acts on it.
   */
  onFailure(listener: (lost: readonly JournalEvent[]) => void): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  /** Resolves once everything appended so far is durable (or failed); later appends do not hold it up. */
  flush(): Promise<void> {
    const target = this.seq;
    if (this.settled >= target) return Promise.resolve();
    return new Promise((resolve) => this.idle.push({ target, resolve }));
  }

  private settle(upTo: number): void {
    this.settled = Math.max(this.settled, upTo);
    const ready = this.idle.filter((w) => w.target <= this.settled);
    this.idle = this.idle.filter((w) => w.target > this.settled);
    for (const w of ready) w.resolve();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private takeBatch(): Waiter[] {
    const batch: Waiter[] = [];
    let n = 0;
    while (this.queue.length > 0 && (batch.length === 0 || n + this.queue[0].events.length <= this.batchEventsMax)) {
      const w = this.queue.shift()!;
      n += w.events.length;
      batch.push(w);
    }
    return batch;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      const events = batch.flatMap((w) => w.events);
      try {
        const extra = this.project ? this.project(events, 2) : { ctes: [], params: [] };
        await this.db.query(`WITH ${[JOURNAL_CTE, ...extra.ctes].join(',\n')} SELECT 1`, [journalRows(events), ...extra.params]);
        this.stats.commits += 1;
        this.stats.events += events.length;
        for (const w of batch) w.resolve();
      } catch (err) {
        this.stats.failures += 1;
        // Events queued behind a failed commit on the same stream were computed from state that included the
        // lost events (a fill after a lost placement, say): they fail too, so no stream has a hole in the middle.
        const lost = new Set(events.map((e) => e.stream));
        const dependent = this.queue.filter((w) => w.events.some((e) => lost.has(e.stream)));
        this.queue = this.queue.filter((w) => !dependent.includes(w));
        const failed = [...batch, ...dependent];
        const lostEvents = failed.flatMap((w) => w.events);
        for (const l of this.failureListeners) {
          try {
            l(lostEvents);
          } catch {
            // A listener's own failure must not stall the writer; the callers still get their rejection.
          }
        }
        for (const w of failed) w.reject(err as Error);
      }
      // Batches leave in append order, and dependents of a failure are answered early: all up to here are settled.
      this.settle(this.queue.length === 0 ? this.seq : batch[batch.length - 1].seq);
    }
    this.writing = false;
  }
}
