import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMemoryBus, type Bus } from '../../engine/bus.js';
import { backends } from '../helpers/server.js';

/** Collects messages of one handler and lets a test wait for the n-th. */
function collector() {
  const got: string[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const handler = (m: string) => {
    got.push(m);
    for (const w of waiters.splice(0)) {
      if (got.length >= w.n) w.resolve();
      else waiters.push(w);
    }
  };
  const waitFor = (n: number, ms = 3000) =>
    new Promise<void>((resolve, reject) => {
      if (got.length >= n) return resolve();
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} messages, got ${JSON.stringify(got)}`)), ms);
      waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  return { got, handler, waitFor };
}

for (const backend of backends()) {
  t.test(`bus on ${backend.name}`, async (t) => {
    const bus: Bus = await backend.bus();
    t.teardown(() => bus.close());
    const expectedKind = backend.name === 'postgres' && process.env.REDIS_URL ? 'redis' : 'memory';
    t.equal(bus.kind, expectedKind, `bus is ${expectedKind}`);

    t.test('ping answers with a latency in ms', async (t) => {
      const ms = await bus.ping();
      t.type(ms, 'number');
      t.ok(ms >= 0 && ms < 5000, `latency ${ms}`);
    });

    t.test('publish reaches every subscriber of the channel, in order, and no other channel', async (t) => {
      const a = collector();
      const b = collector();
      const other = collector();
      const offA = await bus.subscribe('ch.deliver', a.handler);
      const offB = await bus.subscribe('ch.deliver', b.handler);
      const offOther = await bus.subscribe('ch.other', other.handler);
      t.teardown(async () => {
        await offA();
        await offB();
        await offOther();
      });
      await bus.publish('ch.deliver', 'one');
      await bus.publish('ch.deliver', 'two');
      await bus.publish('ch.deliver', '{"json":true}');
      await Promise.all([a.waitFor(3), b.waitFor(3)]);
      t.same(a.got, ['one', 'two', '{"json":true}']);
      t.same(b.got, ['one', 'two', '{"json":true}']);
      // A marker on the other channel proves its subscription works and that earlier messages did not leak.
      await bus.publish('ch.other', 'marker');
      await other.waitFor(1);
      t.same(other.got, ['marker']);
    });

    t.test('publishing with no subscriber is fine', async (t) => {
      await t.resolves(bus.publish('ch.nobody', 'x'));
    });

    t.test('unsubscribe stops delivery to that handler only', async (t) => {
      const gone = collector();
      const stays = collector();
      const offGone = await bus.subscribe('ch.unsub', gone.handler);
      const offStays = await bus.subscribe('ch.unsub', stays.handler);
      await bus.publish('ch.unsub', 'before');
      await Promise.all([gone.waitFor(1), stays.waitFor(1)]);
      await offGone();
      await bus.publish('ch.unsub', 'after');
      await stays.waitFor(2);
      t.same(stays.got, ['before', 'after']);
      t.same(gone.got, ['before'], 'unsubscribed handler got nothing more');
      await offStays();
    });

    t.test('after the last handler unsubscribes, nothing is delivered; subscribing again works', async (t) => {
      const first = collector();
      const off = await bus.subscribe('ch.last', first.handler);
      await off();
      await bus.publish('ch.last', 'lost');
      await sleep(200);
      t.same(first.got, []);
      const again = collector();
      const off2 = await bus.subscribe('ch.last', again.handler);
      await bus.publish('ch.last', 'found');
      await again.waitFor(1);
      t.same(again.got, ['found']);
      t.same(first.got, [], 'old handler still receives nothing');
      await off2();
      await t.resolves(off2(), 'unsubscribing twice is harmless');
    });

    t.test('incrWindow counts within a key and keys are independent', async (t) => {
      t.equal(await bus.incrWindow('k.independent.a', 60), 1);
      t.equal(await bus.incrWindow('k.independent.a', 60), 2);
      t.equal(await bus.incrWindow('k.independent.b', 60), 1);
      t.equal(await bus.incrWindow('k.independent.a', 60), 3);
    });

    t.test('incrWindow is atomic under concurrent callers', async (t) => {
      const counts = await Promise.all(Array.from({ length: 50 }, () => bus.incrWindow('k.concurrent', 60)));
      t.same([...counts].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1));
    });

    if (bus.kind === 'redis') {
      t.test('incrWindow counts 1,2,3 then starts again after the window (real time, 1 s)', async (t) => {
        const key = 'k.window';
        t.same([await bus.incrWindow(key, 1), await bus.incrWindow(key, 1), await bus.incrWindow(key, 1)], [1, 2, 3]);
        await sleep(1200);
        t.equal(await bus.incrWindow(key, 1), 1, 'reset after the window');
        t.equal(await bus.incrWindow(key, 1), 2);
      });
    }
  });
}

t.test('memory bus incrWindow with an injected clock', async (t) => {
  let now = 1_000_000;
  const bus = createMemoryBus(() => now);
  t.teardown(() => bus.close());
  const key = 'k.clock';
  t.same([await bus.incrWindow(key, 10), await bus.incrWindow(key, 10), await bus.incrWindow(key, 10)], [1, 2, 3]);
  now += 9_999;
  t.equal(await bus.incrWindow(key, 10), 4, 'still inside the window 1 ms before it ends');
  now += 1;
  t.equal(await bus.incrWindow(key, 10), 1, 'reset exactly when the window ends');
  t.equal(await bus.incrWindow(key, 10), 2);
  now += 10_000;
  t.equal(await bus.incrWindow(key, 10), 1, 'the new window starts at its first increment');
  now += 60_000;
  t.equal(await bus.incrWindow(key, 10), 1, 'reset after a long pause');
});

t.test('memory bus: a window does not slide with every increment', async (t) => {
  let now = 0;
  const bus = createMemoryBus(() => now);
  for (let i = 1; i <= 5; i++) {
    t.equal(await bus.incrWindow('k.fixed', 1), i);
    now += 150;
  }
  now = 1000;
  t.equal(await bus.incrWindow('k.fixed', 1), 1, 'fixed window from the first increment');
});
