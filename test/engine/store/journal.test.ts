import t from 'tap';
import type { Db } from '../../../engine/store/db.js';
import { appendInTx, Journal, type JournalEvent } from '../../../engine/store/journal.js';
import { migrate, MIGRATIONS } from '../../../engine/store/migrations.js';
import { backends } from '../../helpers/server.js';

interface Row {
  seq: number;
  stream: string;
  type: string;
  payload: { caller: number; n: number; stream?: string };
}

const rowsOf = (db: Db, stream: string) =>
  db.query<Row>(`SELECT seq, stream, type, payload FROM journal WHERE stream = $1 ORDER BY seq`, [stream]);

const count = async (db: Db, prefix: string) =>
  (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM journal WHERE stream LIKE $1`, [prefix + '%']))[0].n;

/** A Db whose next `failing` statements (plain queries or whole transactions) fail, as a lost commit would. */
function flaky(db: Db) {
  const state = { failing: 0 };
  const fail = () => {
    if (state.failing <= 0) return false;
    state.failing -= 1;
    return true;
  };
  const wrapped: Db = {
    kind: db.kind,
    query: async <T>(sql: string, params?: readonly unknown[]) => {
      if (fail()) throw new Error('simulated commit failure');
      return db.query<T>(sql, params);
    },
    exec: (sql) => db.exec(sql),
    tx: async (fn) => {
      if (fail()) throw new Error('simulated commit failure');
      return db.tx(fn);
    },
    ping: () => db.ping(),
    close: () => db.close(),
  };
  return { db: wrapped, state };
}

for (const backend of backends()) {
  t.test(`journal on ${backend.name}`, async (t) => {
    const { db, drop } = await backend.db();
    t.teardown(async () => {
      await db.close();
      await drop();
    });
    t.same(await migrate(db), MIGRATIONS.map((m) => m.id), 'fresh schema migrated');

    t.test('500 callers × 2 events in one tick: all durable, in order per stream, few commits', async (t) => {
      const journal = new Journal(db);
      const callers = 500;
      const streams = ['s1-a', 's1-b', 's1-c', 's1-d', 's1-e'];
      const promises: Array<Promise<void>> = [];
      for (let caller = 0; caller < callers; caller++) {
        const stream = streams[caller % streams.length];
        promises.push(
          journal.append([
            { stream, type: 'order.placed', payload: { caller, n: 0 } },
            { stream, type: 'order.filled', payload: { caller, n: 1 } },
          ]),
        );
      }
      const settled = await Promise.allSettled(promises);
      t.equal(settled.filter((s) => s.status === 'fulfilled').length, callers, 'every caller resolved');
      t.ok(journal.stats.commits <= 5, `group commit: ${journal.stats.commits} commits for ${callers} callers`);
      t.ok(journal.stats.commits >= 1);
      t.equal(journal.stats.events, callers * 2);
      t.equal(journal.stats.failures, 0);
      t.equal(await count(db, 's1-'), callers * 2, 'every event is a row');

      for (const [i, stream] of streams.entries()) {
        const rows = await rowsOf(db, stream);
        const expected = [];
        for (let caller = i; caller < callers; caller += streams.length) {
          expected.push([caller, 0, 'order.placed'], [caller, 1, 'order.filled']);
        }
        t.same(rows.map((r) => [r.payload.caller, r.payload.n, r.type]), expected, `${stream}: append order kept`);
        t.ok(rows.every((r, j) => j === 0 || r.seq > rows[j - 1].seq), `${stream}: seq increases`);
        t.ok(rows.every((r) => typeof r.seq === 'number'), 'seq is a number');
      }
    });

    t.test('batches are bounded by batchEventsMax and still group callers', async (t) => {
      const journal = new Journal(db, 100);
      const promises = Array.from({ length: 300 }, (_, caller) =>
        journal.append([{ stream: 's2', type: 'e', payload: { caller, n: 0 } }]),
      );
      await Promise.all(promises);
      t.equal(journal.stats.commits, 3, '300 one-event callers at 100 events per commit');
      const rows = await rowsOf(db, 's2');
      t.same(rows.map((r) => r.payload.caller), Array.from({ length: 300 }, (_, i) => i));
      // One caller bigger than a batch is still written whole, in one commit.
      const big = new Journal(db, 10);
      await big.append(Array.from({ length: 25 }, (_, n) => ({ stream: 's2-big', type: 'e', payload: { caller: 0, n } })));
      t.equal(big.stats.commits, 1);
      t.equal((await rowsOf(db, 's2-big')).length, 25);
    });

    t.test("a caller's promise resolves only after its rows are readable", async (t) => {
      const journal = new Journal(db);
      const seen: number[] = [];
      const checks = Array.from({ length: 50 }, (_, caller) =>
        journal
          .append([{ stream: `s3-${caller}`, type: 'e', payload: { caller, n: 0 } }])
          .then(async () => {
            seen.push((await rowsOf(db, `s3-${caller}`)).length);
          }),
      );
      await Promise.all(checks);
      t.same(seen, Array(50).fill(1), 'each caller saw its own row at resolve time');
    });

    t.test('appends made while a commit is in flight join the next commit', async (t) => {
      const journal = new Journal(db);
      const first = journal.append([{ stream: 's4', type: 'e', payload: { caller: 0, n: 0 } }]);
      await new Promise((r) => setImmediate(r));
      // The first commit has started; these wait for it and then go together.
      const later = Array.from({ length: 100 }, (_, i) =>
        journal.append([{ stream: 's4', type: 'e', payload: { caller: i + 1, n: 0 } }]),
      );
      await Promise.all([first, ...later]);
      t.ok(journal.stats.commits <= 3, `${journal.stats.commits} commits`);
      t.same((await rowsOf(db, 's4')).map((r) => r.payload.caller), Array.from({ length: 101 }, (_, i) => i));
    });

    t.test('a failed commit rejects exactly its callers; later appends succeed', async (t) => {
      const { db: bad, state } = flaky(db);
      const journal = new Journal(bad);
      state.failing = 1;
      const failed = Array.from({ length: 20 }, (_, caller) =>
        journal.append([{ stream: 's5-failed', type: 'e', payload: { caller, n: 0 } }]),
      );
      const results = await Promise.allSettled(failed);
      t.ok(results.every((r) => r.status === 'rejected'), 'every caller of the failed batch rejected');
      t.match((results[0] as PromiseRejectedResult).reason, { message: 'simulated commit failure' });
      t.equal(journal.stats.failures, 1);
      t.equal(journal.stats.commits, 0);
      t.equal(await count(db, 's5-failed'), 0, 'nothing of the failed batch was written');

      const ok = Array.from({ length: 20 }, (_, caller) =>
        journal.append([{ stream: 's5-ok', type: 'e', payload: { caller, n: 0 } }]),
      );
      await Promise.all(ok);
      t.equal(await count(db, 's5-ok'), 20, 'appends after the failure are written');
      t.equal(journal.stats.commits, 1);
      await t.resolves(journal.flush(), 'flush after a failure resolves');
    });

    t.test('a failed batch takes down what is queued behind it on its streams, and nothing else', async (t) => {
      const { db: bad, state } = flaky(db);
      const journal = new Journal(bad, 10);
      state.failing = 1;
      // 30 one-event callers with 10 events per batch: the first batch (stream s6a) fails; queued s6a events
      // depend on it and fail too; s6b events are independent and are written.
      const all = Array.from({ length: 30 }, (_, caller) =>
        journal.append([{ stream: caller < 10 || caller % 2 === 0 ? 's6a' : 's6b', type: 'e', payload: { caller, n: 0 } }]),
      );
      const results = await Promise.allSettled(all);
      t.same(
        results.map((r) => r.status),
        Array.from({ length: 30 }, (_, i) => (i < 10 || i % 2 === 0 ? 'rejected' : 'fulfilled')),
      );
      t.equal(await count(db, 's6a'), 0, 'no hole: nothing of s6a after the lost batch was written');
      t.same((await rowsOf(db, 's6b')).map((r) => r.payload.caller), Array.from({ length: 10 }, (_, i) => 11 + 2 * i));
    });

    t.test('an invalid event fails its batch without wedging the journal', async (t) => {
      const journal = new Journal(db);
      const bad = journal.append([{ stream: null as unknown as string, type: 'e', payload: {} }]);
      await t.rejects(bad, 'NOT NULL violation rejects the caller');
      await journal.append([{ stream: 's7', type: 'e', payload: { caller: 1, n: 0 } }]);
      t.equal(await count(db, 's7'), 1);
    });

    t.test('flush() waits for everything appended so far', async (t) => {
      const journal = new Journal(db);
      await t.resolves(journal.flush(), 'flush with nothing pending resolves');
      let resolved = 0;
      for (let caller = 0; caller < 200; caller++) {
        void journal.append([{ stream: 's8', type: 'e', payload: { caller, n: 0 } }]).then(() => void (resolved += 1));
      }
      await journal.flush();
      t.equal(await count(db, 's8'), 200, 'all rows written by the time flush resolves');
      await new Promise((r) => setImmediate(r));
      t.equal(resolved, 200, 'every caller resolved');
    });

    t.test('flush() called while a commit may be in flight covers the appends queued behind it', async (t) => {
      const journal = new Journal(db);
      void journal.append([{ stream: 's9', type: 'e', payload: { caller: 0, n: 0 } }]);
      await new Promise((r) => setImmediate(r));
      for (let caller = 1; caller <= 50; caller++) void journal.append([{ stream: 's9', type: 'e', payload: { caller, n: 0 } }]);
      await journal.flush();
      t.equal(await count(db, 's9'), 51);
    });

    t.test('flush() is not held up by appends made after it was called (sustained load)', async (t) => {
      const journal = new Journal(db, 10);
      for (let caller = 0; caller < 20; caller++) void journal.append([{ stream: 's9b', type: 'e', payload: { caller, n: 0 } }]);
      let stop = false;
      let later = 0;
      // A producer that never lets the queue run dry while flush() waits.
      const produce = async () => {
        while (!stop) {
          await journal.append([{ stream: 's9c', type: 'e', payload: { caller: later++, n: 0 } }]);
        }
      };
      const producers = [produce(), produce(), produce()];
      await journal.flush();
      stop = true;
      t.ok((await count(db, 's9b')) === 20, 'everything appended before flush() is durable when it resolves');
      await Promise.all(producers);
      await journal.flush();
      t.equal(await count(db, 's9c'), later, 'and the producers carried on meanwhile');
    });

    t.test('close() flushes, then append rejects', async (t) => {
      const journal = new Journal(db);
      const pending = Array.from({ length: 10 }, (_, caller) =>
        journal.append([{ stream: 's10', type: 'e', payload: { caller, n: 0 } }]),
      );
      await journal.close();
      t.equal(await count(db, 's10'), 10, 'pending appends written before close resolves');
      await t.resolves(Promise.all(pending));
      await t.rejects(journal.append([{ stream: 's10', type: 'e', payload: { caller: 99, n: 0 } }]), /journal is closed/);
      await t.rejects(journal.append([]), /journal is closed/, 'even an empty append');
      t.equal(await count(db, 's10'), 10, 'nothing written after close');
      await t.resolves(journal.close(), 'closing twice is harmless');
    });

    t.test('an empty append resolves without a commit', async (t) => {
      const journal = new Journal(db);
      await journal.append([]);
      t.equal(journal.stats.commits, 0);
    });

    t.test('payloads round-trip as JSON; appendInTx is atomic with its transaction', async (t) => {
      const payload = { price: '65000.12345678', nested: { list: [1, 'two', null], flag: true }, text: 'quote " and \\ and ✓' };
      const journal = new Journal(db);
      await journal.append([{ stream: 's11', type: 'e', payload }]);
      const [row] = await db.query<{ payload: unknown; recorded_at: Date }>(`SELECT payload, recorded_at FROM journal WHERE stream = 's11'`);
      t.same(row.payload, payload);
      t.ok(row.recorded_at instanceof Date);

      const events: JournalEvent[] = [{ stream: 's12', type: 'admin', payload: { n: 1 } }];
      await t.rejects(
        db.tx(async (q) => {
          await appendInTx(q, events);
          throw new Error('roll back');
        }),
      );
      t.equal(await count(db, 's12'), 0, 'rolled back with the transaction');
      await db.tx((q) => appendInTx(q, events));
      t.equal(await count(db, 's12'), 1);
    });
  });
}
