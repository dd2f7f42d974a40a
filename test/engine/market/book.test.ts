import t from 'tap';
import { PriceBook } from '../../../engine/market/book.js';
import { BUILTIN_PAIRS } from '../../../engine/market/pairs.js';
import type { Tick } from '../../../engine/market/types.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = Date.UTC(2025, 5, 1, 0, 0, 0);
const tick = (price: string, time: number, quantity = '1', symbol = 'BTCUSDT'): Tick => ({ symbol, price, quantity, time });
const book = () => new PriceBook(BUILTIN_PAIRS);

t.test('latest price per symbol; unknown symbols and malformed ticks are ignored', async (t) => {
  const b = book();
  t.equal(b.price('BTCUSDT'), undefined);
  t.equal(b.ticker('BTCUSDT'), undefined);
  t.ok(b.ingest(tick('64521.3', T0)));
  t.ok(b.ingest(tick('2500.5', T0 + 1, '2', 'ETHUSDT')));
  t.same(b.price('BTCUSDT'), { price: '64521.30000000', time: T0 });
  t.same(b.price('ETHUSDT'), { price: '2500.50000000', time: T0 + 1 });
  for (const bad of [tick('1', T0, '1', 'NOPEUSDT'), tick('-1', T0), tick('0', T0), tick('1e5', T0), tick('abc', T0), tick('1', T0, '-2'), tick('1', NaN)]) {
    t.notOk(b.ingest(bad), JSON.stringify(bad));
  }
  t.same(b.price('BTCUSDT'), { price: '64521.30000000', time: T0 });
  t.equal(b.price('NOPEUSDT'), undefined);
});

t.test('a late trade does not replace the latest price', async (t) => {
  const b = book();
  b.ingest(tick('100', T0 + 10_000));
  b.ingest(tick('90', T0 + 5_000));
  t.same(b.price('BTCUSDT'), { price: '100.00000000', time: T0 + 10_000 });
  const [c] = b.candles('BTCUSDT', '1m', 1);
  t.same([c.open, c.close, c.low, c.trade_count], ['90.00000000', '100.00000000', '90.00000000', 2], 'but it counts in its minute');
});

t.test('ticker is a true rolling 24 h window over minute buckets', async (t) => {
  const b = book();
  // One trade per hour over 30 hours: 100, 101, ... 129, quantity 2.
  for (let h = 0; h < 30; h++) b.ingest(tick(String(100 + h), T0 + h * HOUR, '2'));
  const tk = b.ticker('BTCUSDT')!;
  // Window ends at hour 29: buckets starting after hour 5 (hours 6..29) are in; hour 5 is exactly 24 h old and out.
  t.equal(tk.open, '106.00000000', 'open is the first price inside the window');
  t.equal(tk.high, '129.00000000');
  t.equal(tk.low, '106.00000000');
  t.equal(tk.close, '129.00000000');
  t.equal(tk.trade_count, 24);
  t.equal(tk.volume, '48.00000000');
  // Σ (106..129) × 2 = 2 × 24 × (106 + 129) / 2 = 5640
  t.equal(tk.quote_volume, '5640.00000000');
  t.equal(tk.change, '23.00000000');
  t.equal(tk.change_pct, '21.69811321');
  t.equal(tk.timestamp, T0 + 29 * HOUR);
  t.equal(tk.symbol, 'BTCUSDT');

  // Two more days of silence then one trade: everything before drops out.
  b.ingest(tick('50', T0 + 80 * HOUR, '3'));
  const later = b.ticker('BTCUSDT')!;
  t.same([later.open, later.high, later.low, later.close, later.volume, later.trade_count], ['50.00000000', '50.00000000', '50.00000000', '50.00000000', '3.00000000', 1]);
  t.equal(later.change_pct, '0.00000000');
});

t.test('ticker window edge at minute granularity', async (t) => {
  const b = book();
  b.ingest(tick('10', T0));
  b.ingest(tick('20', T0 + 24 * HOUR - 1));
  t.equal(b.ticker('BTCUSDT')!.open, '10.00000000', 'a bucket less than 24 h old still counts');
  b.ingest(tick('30', T0 + 24 * HOUR + MIN));
  t.equal(b.ticker('BTCUSDT')!.open, '20.00000000', 'the first minute left the window');
});

t.test('1m candles from ticks; 5m, 1h and 1d derived from them, oldest first', async (t) => {
  const b = book();
  const trades: Array<[string, number, string]> = [
    ['100', 0, '1'], ['105', 20_000, '1'], ['95', 40_000, '2'], // minute 0
    ['96', MIN + 1, '1'], // minute 1
    ['99', 4 * MIN + 59_999, '1'], // minute 4
    ['110', 5 * MIN, '1'], // minute 5: the next 5m candle
    ['120', HOUR + 30 * MIN, '0.5'], // next hour
  ];
  for (const [p, dt, q] of trades) b.ingest(tick(p, T0 + dt, q));

  const m1 = b.candles('BTCUSDT', '1m', 100);
  t.equal(m1.length, 5, 'no candle for minutes without trades');
  t.same(m1[0], { time: T0, open: '100.00000000', high: '105.00000000', low: '95.00000000', close: '95.00000000', volume: '4.00000000', quote_volume: '395.00000000', trade_count: 3 });
  t.same(m1.map((c) => c.time), [T0, T0 + MIN, T0 + 4 * MIN, T0 + 5 * MIN, T0 + 90 * MIN]);

  const m5 = b.candles('BTCUSDT', '5m', 100);
  t.same(m5.map((c) => [c.time, c.open, c.high, c.low, c.close, c.volume, c.trade_count]), [
    [T0, '100.00000000', '105.00000000', '95.00000000', '99.00000000', '6.00000000', 5],
    [T0 + 5 * MIN, '110.00000000', '110.00000000', '110.00000000', '110.00000000', '1.00000000', 1],
    [T0 + 90 * MIN, '120.00000000', '120.00000000', '120.00000000', '120.00000000', '0.50000000', 1],
  ]);
  const h1 = b.candles('BTCUSDT', '1h', 100);
  t.same(h1.map((c) => [c.time, c.open, c.high, c.low, c.close, c.volume, c.trade_count]), [
    [T0, '100.00000000', '110.00000000', '95.00000000', '110.00000000', '7.00000000', 6],
    [T0 + HOUR, '120.00000000', '120.00000000', '120.00000000', '120.00000000', '0.50000000', 1],
  ]);
  const d1 = b.candles('BTCUSDT', '1d', 100);
  t.same(d1.map((c) => [c.time, c.open, c.high, c.low, c.close, c.trade_count]), [[T0, '100.00000000', '120.00000000', '95.00000000', '120.00000000', 7]]);
  t.equal(d1[0].quote_volume, '760.00000000', '100+105+2×95+96+99+110+0.5×120');

  t.same(b.candles('BTCUSDT', '1m', 2).map((c) => c.time), [T0 + 5 * MIN, T0 + 90 * MIN], 'limit keeps the newest');
  t.same(b.candles('BTCUSDT', '1m', 10, { from: T0 + MIN, to: T0 + 5 * MIN }).map((c) => c.time), [T0 + MIN, T0 + 4 * MIN, T0 + 5 * MIN], 'range is inclusive');
  t.same(b.candles('ETHUSDT', '1m', 10), []);
  t.same(b.candles('NOPE', '1m', 10), []);
});

t.test('keeps the last 1440 one-minute candles', async (t) => {
  const b = book();
  for (let m = 0; m < 1500; m++) b.ingest(tick(String(1000 + m), T0 + m * MIN));
  const all = b.candles('BTCUSDT', '1m', 5000);
  t.equal(all.length, 1440);
  t.equal(all[0].time, T0 + 60 * MIN);
  t.equal(all[1439].close, '2499.00000000');
  b.ingest(tick('1', T0));
  const after = b.candles('BTCUSDT', '1m', 5000);
  t.same([after.length, after[0].time], [1440, T0 + 60 * MIN], 'a trade older than the buffer adds no candle');
  t.equal(b.price('BTCUSDT')!.price, '2499.00000000');
});

t.test('recent trades: a ring per symbol, newest first, ids assigned when the feed has none', async (t) => {
  const b = new PriceBook(BUILTIN_PAIRS, { trades_max: 3 });
  t.same(b.trades('BTCUSDT', 10), []);
  for (let i = 1; i <= 5; i++) b.ingest({ ...tick(String(i), T0 + i), is_buyer_maker: i % 2 === 0 });
  const r = b.trades('BTCUSDT', 10);
  t.same(r.map((x) => [x.trade_id, x.price, x.is_buyer_maker]), [[5, '5.00000000', false], [4, '4.00000000', true], [3, '3.00000000', false]]);
  t.same(b.trades('BTCUSDT', 1).map((x) => x.trade_id), [5]);
  b.ingest({ ...tick('6', T0 + 6), trade_id: 987654321 });
  t.equal(b.trades('BTCUSDT', 1)[0].trade_id, 987654321, 'feed ids are kept');
  t.equal(b.trades('BTCUSDT', 1)[0].quantity, '1.00000000');
});

t.test('onTick listeners get normalised ticks in order; unsubscribe; a throwing listener does not stop others', async (t) => {
  const errors: unknown[] = [];
  const b = new PriceBook(BUILTIN_PAIRS, { onListenerError: (e) => errors.push(e) });
  const seen: string[] = [];
  b.onTick(() => {
    throw new Error('boom');
  });
  const off = b.onTick((x) => seen.push(`${x.symbol}@${x.price}x${x.quantity}`));
  b.ingest(tick('1.5', T0, '0.1'));
  b.ingest(tick('1', T0, '1', 'UNKNOWN'));
  b.ingest(tick('2', T0 + 1, '3', 'ETHUSDT'));
  off();
  b.ingest(tick('3', T0 + 2));
  t.same(seen, ['BTCUSDT@1.50000000x0.10000000', 'ETHUSDT@2.00000000x3.00000000']);
  t.equal(errors.length, 3);
});

t.test('pairs: sorted, looked up by symbol; setPairs adds without losing state', async (t) => {
  const b = new PriceBook(BUILTIN_PAIRS.slice(0, 2));
  t.same(b.pairs().map((p) => p.symbol), ['BTCUSDT', 'ETHUSDT']);
  b.ingest(tick('5', T0));
  b.setPairs([{ ...BUILTIN_PAIRS[2] }, { ...BUILTIN_PAIRS[0], min_notional: '10' }]);
  t.same(b.pairs().map((p) => p.symbol), ['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
  t.equal(b.pair('BTCUSDT')!.min_notional, '10');
  t.equal(b.price('BTCUSDT')!.price, '5.00000000');
  t.equal(b.pair('XRPUSDT'), undefined);
});
