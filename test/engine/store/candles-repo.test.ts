import t from 'tap';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Decimal } from 'decimal.js';
import { loadCandleCsv, parseCandleCsv, type CsvCandle } from '../../../engine/market/csv.js';
import { dataRange, deriveIntervals, intervalMs, intervalName, loadCandles, upsertCandles } from '../../../engine/store/candles-repo.js';
import { migrate } from '../../../engine/store/migrations.js';
import { backends } from '../../helpers/server.js';

/** CI keeps the shared data folder beside the checkout. */
const DATA = resolve('../shared/data/bybit-linear');
const MIN = 60_000;
const HOUR = 60 * MIN;
/** First and last open time of ADAUSDT_1m.csv. */
const T0 = Date.UTC(2025, 4, 30, 16, 40);
const TN = Date.UTC(2025, 5, 29, 16, 39);
const iso = (ms: number) => new Date(ms).toISOString();
const dec = (v: string) => new Decimal(v);
const ohlcv = (c: { open: string; high: string; low: string; close: string; volume: string }) =>
  [c.open, c.high, c.low, c.close, c.volume].map((v) => dec(v).toFixed(8));
const sum = (cs: CsvCandle[]) => cs.reduce((a, c) => a.plus(c.volume), dec('0'));

const ada1m = loadCandleCsv(`${DATA}/ADAUSDT_1m.csv`, { bad_rows: 'collect' });
const ada60m = loadCandleCsv(`${DATA}/ADAUSDT_60m.csv`);
const ada5m = loadCandleCsv(`${DATA}/ADAUSDT_5m.csv`);

/** The real file with the minutes 17:00–17:02 and 18:30 of its first day taken out. */
function withHoles(): string {
  const drop = new Set(['2025-05-30 17:00', '2025-05-30 17:01', '2025-05-30 17:02', '2025-05-30 18:30']);
  return readFileSync(`${DATA}/ADAUSDT_1m.csv`, 'utf8').split('\n').filter((l) => !drop.has(l.slice(0, 16))).join('\n');
}

t.test('intervals: names and lengths', async (t) => {
  t.same(['1m', '5m', '15m', '1h', '4h', '1d', '1w', '1s'].map(intervalMs), [MIN, 5 * MIN, 15 * MIN, HOUR, 4 * HOUR, 24 * HOUR, 7 * 24 * HOUR, 1000]);
  t.same([intervalMs('1M'), intervalMs('0m'), intervalMs('m'), intervalMs('60')], [null, null, null, null]);
  t.same([MIN, 5 * MIN, HOUR, 4 * HOUR, 24 * HOUR, 90 * MIN].map(intervalName), ['1m', '5m', '1h', '4h', '1d', '90m']);
});

t.test('the real ADAUSDT 1m file: 43,200 candles, one minute apart, no gaps, no bad rows', async (t) => {
  t.equal(ada1m.candles.length, 43_200);
  t.equal(ada1m.interval_ms, MIN);
  t.same(ada1m.gaps, []);
  t.same(ada1m.bad_rows, []);
  t.equal(ada1m.candles[0].time, T0);
  t.equal(ada1m.candles.at(-1)!.time, TN);
});

t.test('gaps are reported at their exact place', async (t) => {
  const f = parseCandleCsv(withHoles());
  t.equal(f.candles.length, 43_196);
  t.same(f.gaps, [{ after: Date.UTC(2025, 4, 30, 16, 59), missing: 3 }, { after: Date.UTC(2025, 4, 30, 18, 29), missing: 1 }]);
});

t.test('Binance archive rows: no header or a header, ms or µs open times; the trade count is kept', async (t) => {
  const rows = [
    '1704067200000,42283.58000000,42298.62000000,42261.02000000,42298.61000000,35.92724000,1704067259999,1519607.19,1327,16.12,681777.65,0',
    '1704067260000,42298.62000000,42320.00000000,42298.61000000,42320.00000000,21.07073000,1704067319999,891347.06,1004,12.51,529337.85,0',
  ];
  const header = 'open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore';
  const micro = rows.map((r) => r.replace(/^(\d+),(.*),(\d+)(,[^,]*,\d+,)/, (_m, a, mid, c, rest) => `${a}000,${mid},${c}999${rest}`));
  for (const [name, text] of [['no header, ms', rows.join('\n')], ['header, ms', [header, ...rows].join('\r\n')], ['no header, µs', micro.join('\n')], ['header, µs', [header, ...micro].join('\n')]]) {
    const f = parseCandleCsv(text);
    t.same(f.candles.map((c) => [c.time, c.open, c.close, c.volume, c.trade_count]), [
      [1704067200000, '42283.58000000', '42298.61000000', '35.92724000', 1327],
      [1704067260000, '42298.62000000', '42320.00000000', '21.07073000', 1004],
    ], name);
    t.equal(f.interval_ms, MIN, name);
  }
});

t.test('bad rows: collected with line, text and reason, or the first one throws (the default)', async (t) => {
  const text = [
    'timestamp,open,high,low,close,volume',
    '2025-01-01 00:00:00+00:00,1,2,0.5,1.5,10',
    '2025-01-01 00:01:00+00:00,1,2,0.5,x,10',
    '',
    'yesterday,1,2,0.5,1.5,10',
    '2025-01-01 00:03:00+00:00,1,2',
    '2025-01-01 00:04:00+00:00,3,2,0.5,1.5,10',
    '2025-01-01 00:05:00+00:00,0,0,0,0,10',
    '2025-01-01 00:06:00+00:00,1,2,0.5,1.5,1e3',
    '2025-01-01 00:07:00+00:00,1,2,0.5,1.5,10',
  ].join('\n');
  const f = parseCandleCsv(text, { bad_rows: 'collect' });
  t.same(f.candles.map((c) => c.time), [Date.UTC(2025, 0, 1, 0, 0), Date.UTC(2025, 0, 1, 0, 7)]);
  t.same(f.bad_rows.map((b) => [b.line, b.reason]), [
    [3, 'close "x" is not a plain decimal'],
    [5, 'open time "yesterday" is not a date or epoch time'],
    [6, 'expected at least 6 columns, got 3'],
    [7, 'open and close must lie between low and high'],
    [8, 'prices must be positive'],
    [9, 'volume "1e3" is not a plain decimal'],
  ]);
  t.equal(f.bad_rows[0].text, '2025-01-01 00:01:00+00:00,1,2,0.5,x,10');
  t.throws(() => parseCandleCsv(text), /bad row 2 \(line 3, close "x" is not a plain decimal\)/);
  t.throws(() => parseCandleCsv('timestamp,open,high,low,close\n', { bad_rows: 'collect' }), /header needs/, 'a bad header still fails the file');
});

for (const backend of backends()) {
  t.test(`candles repository on ${backend.name}`, async (t) => {
    const { db, drop } = await backend.db();
    t.teardown(async () => {
      await db.close();
      await drop();
    });
    await migrate(db);

    t.test('an empty store has no range', async (t) => {
      t.same(await dataRange(db), { earliest: null, latest: null, pairs: [] });
    });

    t.test('importing the real file inserts 43,200 rows; importing it again changes nothing', async (t) => {
      const t0 = performance.now();
      t.same(await upsertCandles(db, 'ADAUSDT', '1m', ada1m.candles), { inserted: 43_200, updated: 0, unchanged: 0 });
      t.comment(`${backend.name}: 43,200-row import in ${Math.round(performance.now() - t0)} ms`);
      t.same(await upsertCandles(db, 'ADAUSDT', '1m', ada1m.candles), { inserted: 0, updated: 0, unchanged: 43_200 });
      const [{ n }] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM candles WHERE symbol = 'ADAUSDT' AND interval = '1m'`);
      t.equal(n, 43_200);
    });

    t.test('loadCandles: an inclusive range, oldest first, values as 8-dp strings', async (t) => {
      const rows = await loadCandles(db, 'ADAUSDT', '1m', T0, T0 + 2 * MIN);
      t.same(rows[0], { time: T0, open: '0.69010000', high: '0.69120000', low: '0.68940000', close: '0.68980000', volume: '216241.00000000', trade_count: 0 });
      t.same(rows.map((r) => r.time), [T0, T0 + MIN, T0 + 2 * MIN]);
      t.same(await loadCandles(db, 'ADAUSDT', '1h', T0, T0 + HOUR), []);
    });

    t.test('derives 5m, 15m, 1h, 4h, 1d from whole periods inside the stored span; again changes nothing', async (t) => {
      const first = await deriveIntervals(db, 'ADAUSDT', '1m');
      t.same(Object.fromEntries(Object.entries(first).map(([k, v]) => [k, v.inserted])), { '5m': 8640, '15m': 2879, '1h': 719, '4h': 179, '1d': 29 });
      const again = await deriveIntervals(db, 'ADAUSDT', '1m');
      t.same(Object.values(again).map((r) => r.inserted + r.updated), [0, 0, 0, 0, 0]);
      t.same(again['1h'], { inserted: 0, updated: 0, unchanged: 719 });
      const hours = await loadCandles(db, 'ADAUSDT', '1h', 0, Date.UTC(2030, 0));
      t.equal(hours[0].time, Date.UTC(2025, 4, 30, 17), 'the 16:00 hour holds only 20 minutes of the file: no candle');
      t.equal(hours.at(-1)!.time, Date.UTC(2025, 5, 29, 15), 'neither does the last, 40-minute hour');
      const days = await loadCandles(db, 'ADAUSDT', '1d', 0, Date.UTC(2030, 0));
      t.same([days[0].time, days.at(-1)!.time], [Date.UTC(2025, 4, 31), Date.UTC(2025, 5, 28)]);
    });

    t.test("derived 1h candles equal Bybit's 60m file, except its last row: an hour still open when it was fetched", async (t) => {
      const hours = await loadCandles(db, 'ADAUSDT', '1h', 0, Date.UTC(2030, 0));
      const file = ada60m.candles;
      t.equal(file.length, 720);
      t.same(hours.map((h) => [h.time, ...ohlcv(h)]), file.slice(0, 719).map((c) => [c.time, ...ohlcv(c)]));
      const lastHour = ada1m.candles.filter((c) => c.time >= Date.UTC(2025, 5, 29, 16));
      t.equal(lastHour.length, 40);
      const fiveMinAt1640 = ada5m.candles.find((c) => c.time === Date.UTC(2025, 5, 29, 16, 40))!;
      t.equal(sum(lastHour).plus(fiveMinAt1640.volume).toFixed(1), file[719].volume, 'its volume = 16:00–16:39 plus the first bit of 16:40');
      t.same(await upsertCandles(db, 'ADAUSDT', '1h', file), { inserted: 1, updated: 0, unchanged: 719 });
    });

    t.test("derived 5m candles equal Bybit's 5m file where both exist", async (t) => {
      const fives = await loadCandles(db, 'ADAUSDT', '5m', 0, Date.UTC(2030, 0));
      const byTime = new Map(fives.map((c) => [c.time, c]));
      const shared = ada5m.candles.filter((c) => byTime.has(c.time));
      t.equal(shared.length, 8639);
      t.same(shared.map((c) => ohlcv(byTime.get(c.time)!)), shared.map(ohlcv));
    });

    t.test('data range: overall and per interval, with counts and missing periods', async (t) => {
      const r = await dataRange(db);
      t.equal(r.earliest, iso(T0));
      t.equal(r.latest, iso(TN));
      t.same(r.pairs.map((p) => p.symbol), ['ADAUSDT']);
      t.same(r.pairs[0].intervals, [
        { interval: '1m', earliest: iso(T0), latest: iso(TN), count: 43_200, gaps: 0 },
        { interval: '5m', earliest: iso(T0), latest: iso(TN - 4 * MIN), count: 8640, gaps: 0 },
        { interval: '15m', earliest: iso(T0 + 5 * MIN), latest: '2025-06-29T16:15:00.000Z', count: 2879, gaps: 0 },
        { interval: '1h', earliest: '2025-05-30T17:00:00.000Z', latest: '2025-06-29T16:00:00.000Z', count: 720, gaps: 0 },
        { interval: '4h', earliest: '2025-05-30T20:00:00.000Z', latest: '2025-06-29T12:00:00.000Z', count: 179, gaps: 0 },
        { interval: '1d', earliest: '2025-05-31T00:00:00.000Z', latest: '2025-06-28T00:00:00.000Z', count: 29, gaps: 0 },
      ]);
    });

    t.test('a file with missing minutes: gaps counted; derived periods built from the minutes present', async (t) => {
      const f = parseCandleCsv(withHoles());
      t.same(await upsertCandles(db, 'GAPUSDT', '1m', f.candles), { inserted: 43_196, updated: 0, unchanged: 0 });
      const gap = (await dataRange(db)).pairs.find((p) => p.symbol === 'GAPUSDT')!;
      t.same(gap.intervals, [{ interval: '1m', earliest: iso(T0), latest: iso(TN), count: 43_196, gaps: 4 }]);
      await deriveIntervals(db, 'GAPUSDT', '1m', { intervals: ['1h'] });
      const [h17] = await loadCandles(db, 'GAPUSDT', '1h', Date.UTC(2025, 4, 30, 17), Date.UTC(2025, 4, 30, 17));
      const minutes = f.candles.filter((c) => c.time >= Date.UTC(2025, 4, 30, 17) && c.time < Date.UTC(2025, 4, 30, 18));
      t.equal(minutes.length, 57);
      t.equal(h17.open, dec(minutes[0].open).toFixed(8), 'opens at 17:03, the first minute present');
      t.equal(h17.volume, sum(minutes).toFixed(8));
      t.not(h17.open, (await loadCandles(db, 'ADAUSDT', '1h', h17.time, h17.time))[0].open);
    });

    t.test('a changed row is updated; within one batch the later row with the same time wins', async (t) => {
      const c = { ...ada1m.candles[0], close: '0.6899' };
      t.same(await upsertCandles(db, 'ADAUSDT', '1m', [c]), { inserted: 0, updated: 1, unchanged: 0 });
      t.same(await upsertCandles(db, 'ADAUSDT', '1m', [c, ada1m.candles[0]]), { inserted: 0, updated: 1, unchanged: 0 });
      t.equal((await loadCandles(db, 'ADAUSDT', '1m', T0, T0))[0].close, '0.68980000');
      const rederived = await deriveIntervals(db, 'ADAUSDT', '1m', { from: T0, to: T0 });
      t.same(Object.values(rederived).map((r) => r.inserted + r.updated), [0, 0, 0, 0, 0], 'only the periods around T0 are rebuilt, all unchanged');
      t.ok(Object.values(rederived).every((r) => r.unchanged <= 1));
    });

    t.test('Binance archive rows keep their trade count in the table', async (t) => {
      const f = parseCandleCsv('1704067200000000,42283.58,42298.62,42261.02,42298.61,35.92724,1704067259999999,1519607.19,1327,16.12,681777.65,0');
      t.same(await upsertCandles(db, 'BTCUSDT', '1m', f.candles), { inserted: 1, updated: 0, unchanged: 0 });
      t.same(await loadCandles(db, 'BTCUSDT', '1m', 1704067200000, 1704067200000), [
        { time: 1704067200000, open: '42283.58000000', high: '42298.62000000', low: '42261.02000000', close: '42298.61000000', volume: '35.92724000', trade_count: 1327 },
      ]);
    });
  });
}
