import t from 'tap';
import { upsertCandles } from '../../engine/store/candles-repo.js';
import { backends, startTestServer } from '../helpers/server.js';

const PATH = '/api/v1/market/data-range';
const MIN = 60_000;
const T0 = Date.UTC(2024, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();
const candle = (time: number, close = '1.5') => ({ time, open: '1', high: '2', low: '0.5', close, volume: '10' });

for (const backend of backends()) {
  t.test(`GET /market/data-range on ${backend.name}`, async (t) => {
    const s = await startTestServer(backend);
    t.teardown(() => s.stop());

    t.test('with no stored candles: nulls and empty lists, not an error', async (t) => {
      const r = await s.call('GET', PATH);
      t.equal(r.status, 200);
      t.same(r.body, { earliest: null, latest: null, total_pairs: 0, intervals_available: [], data_gaps: [], pairs: [] });
    });

    t.test('stored candles: overall range, intervals, missing periods per symbol and interval (no credentials needed)', async (t) => {
      // BTCUSDT 1m: minutes 0-3 and 6 (5 and 4 missing); 1h: two hours. ETHUSDT 1m: one minute, a day later.
      await upsertCandles(s.engine.db, 'BTCUSDT', '1m', [0, 1, 2, 3, 6].map((m) => candle(T0 + m * MIN)));
      await upsertCandles(s.engine.db, 'BTCUSDT', '1h', [candle(T0), candle(T0 + 60 * MIN)]);
      await upsertCandles(s.engine.db, 'ETHUSDT', '1m', [candle(T0 + 1440 * MIN)]);
      const r = await s.call('GET', PATH);
      t.equal(r.status, 200);
      t.same(r.body, {
        earliest: iso(T0),
        latest: iso(T0 + 1440 * MIN),
        total_pairs: 2,
        intervals_available: ['1m', '1h'],
        data_gaps: [{ symbol: 'BTCUSDT', interval: '1m', missing: 2 }],
        pairs: [
          {
            symbol: 'BTCUSDT',
            intervals: [
              { interval: '1m', earliest: iso(T0), latest: iso(T0 + 6 * MIN), count: 5, gaps: 2 },
              { interval: '1h', earliest: iso(T0), latest: iso(T0 + 60 * MIN), count: 2, gaps: 0 },
            ],
          },
          { symbol: 'ETHUSDT', intervals: [{ interval: '1m', earliest: iso(T0 + 1440 * MIN), latest: iso(T0 + 1440 * MIN), count: 1, gaps: 0 }] },
        ],
      });
    });

    t.test('documented in OpenAPI as a public market route', async (t) => {
      const doc = (await s.call('GET', '/openapi.json')).body;
      const op = doc.paths[PATH]?.get;
      t.ok(op);
      t.same(op?.tags, ['market']);
      t.same(op?.security, []);
    });
  });
}
