import t from 'tap';
import { resolve } from 'node:path';
import { parseCandleCsv, symbolFromFile, loadCandleCsv } from '../../../engine/market/csv.js';
import { candleTicks, ReplayFeed, seriesFromFiles } from '../../../engine/market/feeds/replay.js';
import { PriceBook } from '../../../engine/market/book.js';
import { BUILTIN_PAIRS } from '../../../engine/market/pairs.js';
import { fmt, money } from '../../../engine/core/money.js';
import type { Tick } from '../../../engine/market/types.js';

/** CI keeps the shared data folder beside the checkout. */
const DATA = resolve('../shared/data');
const HOUR = 3_600_000;

t.test('reads the bybit (timestamp) and binance-us (open_time) headers, and Binance archives in ms or µs', async (t) => {
  const bybit = parseCandleCsv('timestamp,open,high,low,close,volume\n2025-05-30 16:40:00+00:00,0.6901,0.6912,0.6894,0.6898,216241.0\n2025-05-30 16:41:00+00:00,0.6898,0.69,0.6897,0.69,1.5\n');
  t.same(bybit.candles[0], { time: Date.UTC(2025, 4, 30, 16, 40), open: '0.6901', high: '0.6912', low: '0.6894', close: '0.6898', volume: '216241.0' });
  t.equal(bybit.interval_ms, 60_000);
  const us = parseCandleCsv('open_time,open,high,low,close,volume\r\n2023-03-01 00:00:00+00:00,23140.48,23150.77,23128.52,23142.31,2.131777\r\n');
  t.same(us.candles.map((c) => [c.time, c.close]), [[Date.UTC(2023, 2, 1), '23142.31']]);
  const archive = [
    '1704067200000,42283.58000000,42298.62000000,42261.02000000,42298.61000000,35.92724000,1704067259999,1519607.19,1327,16.12,681777.65,0',
    '1704067260000,42298.62000000,42320.00000000,42298.61000000,42320.00000000,21.07073000,1704067319999,891347.06,1004,12.51,529337.85,0',
  ].join('\n');
  t.same(parseCandleCsv(archive).candles.map((c) => [c.time, c.open, c.volume]), [[1704067200000, '42283.58000000', '35.92724000'], [1704067260000, '42298.62000000', '21.07073000']]);
  const micro = parseCandleCsv('1735689600000000,1,2,0.5,1.5,10,1735689659999999,0,0,0,0,0');
  t.equal(micro.candles[0].time, 1735689600000, 'µs open times (2025 archives) become ms');
});

t.test('gaps are reported, not filled; duplicates collapse; order is restored', async (t) => {
  const rows = ['timestamp,open,high,low,close,volume'];
  for (const m of [0, 1, 2, 6, 5, 7, 7, 10]) rows.push(`2025-01-01 00:${String(m).padStart(2, '0')}:00+00:00,1,1,1,1,1`);
  const f = parseCandleCsv(rows.join('\n'));
  const T = Date.UTC(2025, 0, 1);
  t.same(f.candles.map((c) => (c.time - T) / 60_000), [0, 1, 2, 5, 6, 7, 10]);
  t.equal(f.interval_ms, 60_000);
  t.same(f.gaps, [{ after: T + 2 * 60_000, missing: 2 }, { after: T + 7 * 60_000, missing: 2 }]);
});

t.test('malformed files are refused with the row', async (t) => {
  t.throws(() => parseCandleCsv('timestamp,open,high,low,close\n'), /header needs/);
  t.throws(() => parseCandleCsv('timestamp,open,high,low,close,volume\n2025-01-01 00:00:00+00:00,1,2,0.5,x,3'), /bad row 1/);
  t.throws(() => parseCandleCsv('timestamp,open,high,low,close,volume\nyesterday,1,2,0.5,1,3'), /bad row 1/);
  t.throws(() => parseCandleCsv('timestamp,open,high,low,close,volume\n2025-01-01 00:00:00+00:00,1,2,0.5,1e3,3'), /bad row/);
});

t.test('symbol from the file name', async (t) => {
  t.equal(symbolFromFile('/x/BTCUSDT_60m.csv'), 'BTCUSDT');
  t.equal(symbolFromFile('BTCUSDT_1m_20230301_20230321.csv'), 'BTCUSDT');
  t.equal(symbolFromFile('ethusdt-1m-2024-01.csv'), 'ETHUSDT');
});

t.test('a candle becomes open → nearer extreme → other extreme → close, volume split in four', async (t) => {
  const c = { time: 1000, open: '100', high: '110', low: '95', close: '105', volume: '10' };
  t.same(candleTicks('BTCUSDT', c, 60_000).map((x) => [x.price, x.time, x.quantity]), [
    ['100', 1000, '2.50000000'], ['95', 16_000, '2.50000000'], ['110', 31_000, '2.50000000'], ['105', 60_999, '2.50000000'],
  ]);
  const down = candleTicks('BTCUSDT', { ...c, close: '96' }, 60_000, 5);
  t.same(down.map((x) => [x.price, x.time]), [['100', 1005], ['110', 16_005], ['95', 31_005], ['96', 61_004]]);
});

t.test('real data: the whole ADA 1m file parses without gaps', async (t) => {
  const f = loadCandleCsv(`${DATA}/bybit-linear/ADAUSDT_1m.csv`);
  t.equal(f.candles.length, 43_200);
  t.equal(f.interval_ms, 60_000);
  t.same(f.gaps, []);
  t.equal(f.candles[0].time, Date.UTC(2025, 4, 30, 16, 40));
});

t.test('real data: a day of BTC hourly candles replayed at 100000x rebuilds the same candles in the book', async (t) => {
  const [series] = seriesFromFiles([`${DATA}/bybit-linear/BTCUSDT_60m.csv`]);
  t.equal(series.symbol, 'BTCUSDT');
  t.equal(series.interval_ms, HOUR);
  t.equal(series.candles.length, 720);
  const day = series.candles.slice(0, 24);
  const book = new PriceBook(BUILTIN_PAIRS);
  const feed = new ReplayFeed({ series: [{ ...series, candles: day }], speed: 100_000 });
  const started = Date.now();
  await feed.start((x) => book.ingest(x));
  await feed.done;
  const elapsed = Date.now() - started;
  // 24 h of data less the last tick's minute, at 100000x: ~864 ms of wall time.
  t.ok(elapsed >= 800 && elapsed < 5000, `paced in real time (${elapsed} ms)`);
  t.equal(feed.emitted, 96);
  const rebuilt = book.candles('BTCUSDT', '1h', 100);
  t.same(rebuilt.map((c) => [c.time, c.open, c.high, c.low, c.close, c.volume]),
    day.map((c) => [c.time, fmt(c.open), fmt(c.high), fmt(c.low), fmt(c.close), fmt(c.volume)]));
  t.same(rebuilt[0].open, '103875.40000000');
  const tk = book.ticker('BTCUSDT')!;
  t.equal(tk.open, fmt(day[0].open));
  t.equal(tk.close, fmt(day[23].close));
  t.equal(tk.high, fmt(day.reduce((m, c) => (money(c.high).gt(m) ? money(c.high) : m), money(0))));
  t.equal(tk.volume, fmt(day.reduce((s, c) => s.plus(c.volume), money(0))));
  t.equal(book.price('BTCUSDT')!.time, day[23].time + HOUR - 1);
});

t.test('several files are merged in time order; stop() ends the replay early', async (t) => {
  const series = seriesFromFiles([`${DATA}/bybit-linear/BTCUSDT_60m.csv`, `${DATA}/bybit-linear/DOGEUSDT_60m.csv`])
    .map((s) => ({ ...s, candles: s.candles.slice(0, 3) }));
  const got: Tick[] = [];
  const all = new ReplayFeed({ series, speed: 1e9 });
  await all.start((x) => got.push(x));
  await all.done;
  t.equal(got.length, 24);
  t.same(new Set(got.map((x) => x.symbol)), new Set(['BTCUSDT', 'DOGEUSDT']));
  t.ok(got.every((x, i) => i === 0 || x.time >= got[i - 1].time), 'non-decreasing times');

  const slow = new ReplayFeed({ series, speed: 1 });
  const few: Tick[] = [];
  await slow.start((x) => few.push(x));
  await new Promise((r) => setTimeout(r, 30));
  await slow.stop();
  await slow.done;
  t.equal(few.length, 2, 'only the two opens are due at once at 1x');
});

t.test('loop starts over with times shifted forward', async (t) => {
  const [series] = seriesFromFiles([`${DATA}/bybit-linear/BTCUSDT_60m.csv`]);
  const two = { ...series, candles: series.candles.slice(0, 2) };
  const got: Tick[] = [];
  const feed = new ReplayFeed({ series: [two], speed: 1e9, loop: true, batch_ticks_max: 4 });
  await feed.start((x) => got.push(x));
  while (got.length < 20) await new Promise((r) => setTimeout(r, 5));
  await feed.stop();
  t.same(got.slice(8, 16).map((x) => x.time - 2 * HOUR), got.slice(0, 8).map((x) => x.time), 'second pass is two hours later');
  t.same(got.slice(8, 16).map((x) => x.price), got.slice(0, 8).map((x) => x.price));
  t.ok(got.every((x, i) => i === 0 || x.time > got[i - 1].time), 'strictly increasing');
});
