import t from 'tap';
import { DEFAULT_PRICES, SyntheticFeed, SyntheticWalk } from '../../../engine/market/feeds/synthetic.js';
import { BUILTIN_PAIRS } from '../../../engine/market/pairs.js';
import { hash32, mulberry32 } from '../../../engine/market/prng.js';
import { money } from '../../../engine/core/money.js';
import type { Tick } from '../../../engine/market/types.js';

const T0 = Date.UTC(2025, 0, 1);

t.test('mulberry32 is a fixed sequence per seed', async (t) => {
  const a = mulberry32(1);
  const b = mulberry32(1);
  const xs = [a(), a(), a()];
  t.same([b(), b(), b()], xs);
  t.not(mulberry32(2)(), xs[0]);
  t.ok(xs.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32));
  t.equal(hash32('BTCUSDT'), hash32('BTCUSDT'));
  t.not(hash32('a'), hash32('b'));
});

t.test('the same seed gives the same ticks; another seed gives others', async (t) => {
  const run = (seed: number | string) => {
    const f = new SyntheticFeed({ seed, manual: true, start_time: T0, interval_ms: 250 });
    return f.step(200);
  };
  // Compared as JSON text: tap's deep comparison is slow on thousands of objects.
  const json = (seed: number | string) => JSON.stringify(run(seed));
  const a = run(7);
  t.equal(json(7), JSON.stringify(a));
  t.not(json(8), JSON.stringify(a));
  t.equal(json('demo'), json('demo'));
  t.equal(a.length, 200 * Object.keys(DEFAULT_PRICES).length, 'one tick per symbol per round');
});

t.test('manual mode: ticks only on step(), times advance by the interval, through the sink', async (t) => {
  const f = new SyntheticFeed({ seed: 1, manual: true, start_time: T0, interval_ms: 1000, symbols: ['BTCUSDT', 'ETHUSDT'] });
  const got: Tick[] = [];
  await f.start((x) => got.push(x));
  await new Promise((r) => setTimeout(r, 30));
  t.equal(got.length, 0, 'nothing without step()');
  const stepped = f.step(3);
  t.same(got, stepped);
  t.same(got.map((x) => [x.symbol, x.time]), [
    ['BTCUSDT', T0], ['ETHUSDT', T0], ['BTCUSDT', T0 + 1000], ['ETHUSDT', T0 + 1000], ['BTCUSDT', T0 + 2000], ['ETHUSDT', T0 + 2000],
  ]);
  t.same(got.map((x) => x.trade_id), [1, 2, 3, 4, 5, 6]);
  await f.stop();
  f.step();
  t.equal(got.length, 6, 'no sink after stop');
});

t.test('a walk stays near its start, positive, 8-decimal strings, trade sizes of 10..5000 USDT', async (t) => {
  const symbols = BUILTIN_PAIRS.map((p) => p.symbol);
  const w = new SyntheticWalk(symbols, DEFAULT_PRICES, 99);
  const last = new Map<string, string>();
  const problems: string[] = [];
  const plain = /^\d+\.\d{8}$/;
  for (let i = 0; i < 2000; i++) {
    for (const x of w.round(T0 + i)) {
      if (!plain.test(x.price) || !plain.test(x.quantity)) problems.push(`format ${x.price} ${x.quantity}`);
      const notional = money(x.price).times(x.quantity);
      if (notional.lt('9.99') || notional.gt('5000.01')) problems.push(`notional ${notional} of ${x.symbol}`);
      const prev = last.get(x.symbol);
      // 0.1 % per tick plus the rounding of tiny prices (SHIB keeps 8 decimals).
      if (prev && money(prev).gt('0.01') && money(x.price).div(prev).minus(1).abs().gt('0.0012')) problems.push(`${x.symbol} jumped`);
      last.set(x.symbol, x.price);
    }
  }
  t.same(problems.slice(0, 5), []);
  for (const s of symbols) {
    const ratio = money(last.get(s)!).div(DEFAULT_PRICES[s]);
    t.ok(ratio.gt('0.5') && ratio.lt('2'), `${s} within 2x after 2000 ticks (${ratio.toFixed(3)})`);
  }
});

t.test('timed mode emits a round at once and then every interval until stopped', async (t) => {
  const f = new SyntheticFeed({ seed: 3, interval_ms: 20, symbols: ['BTCUSDT'] });
  const got: Tick[] = [];
  const before = Date.now();
  await f.start((x) => got.push(x));
  t.equal(got.length, 1, 'first round immediately');
  await new Promise((r) => setTimeout(r, 130));
  await f.stop();
  const n = got.length;
  t.ok(n >= 4, `several rounds (${n})`);
  t.ok(got.every((x) => x.time >= before && x.time <= Date.now()), 'wall-clock times');
  await new Promise((r) => setTimeout(r, 60));
  t.equal(got.length, n, 'stop() stops the timer');
  const replay = new SyntheticFeed({ seed: 3, manual: true, symbols: ['BTCUSDT'] }).step(n);
  t.same(replay.map((x) => x.price), got.map((x) => x.price), 'the same prices as manual mode');
});
