import t from 'tap';
import { backends, startTestServer } from '../helpers/server.js';
import { BUILTIN_PAIRS } from '../../engine/market/pairs.js';
import type { Tick } from '../../engine/market/types.js';

const M = '/api/v1/market';
const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = Date.UTC(2025, 5, 1);
const iso = (ms: number) => new Date(ms).toISOString();

for (const backend of backends()) {
  t.test(`market routes on ${backend.name}`, async (t) => {
    const s = await startTestServer(backend);
    t.teardown(() => s.stop());
    const ingest = (symbol: string, price: string, time: number, quantity = '1', extra: Partial<Tick> = {}) =>
      s.engine.market.ingest({ symbol, price, quantity, time, ...extra });

    t.test('the engine loads its pairs from trading_pairs (seeded) and runs no feed in tests', async (t) => {
      const rows = await s.engine.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM trading_pairs`);
      t.equal(rows[0].n, BUILTIN_PAIRS.length);
      t.equal(s.engine.market.pairs().length, BUILTIN_PAIRS.length);
      t.equal(s.engine.feed.name, 'none');
    });

    t.test('GET /prices before any tick: empty list, stale', async (t) => {
      const r = await s.call('GET', `${M}/prices`);
      t.equal(r.status, 200);
      t.same(r.body.prices, []);
      t.equal(r.body.count, 0);
      t.equal(r.body.stale, true);
      t.equal(r.body.data_age_seconds, null);
    });

    t.test('GET /pairs: every pair with filters as 8-dp strings, ordered by symbol; ?status filters', async (t) => {
      ingest('BTCUSDT', '64521.3', Date.now());
      const r = await s.call('GET', `${M}/pairs`);
      t.equal(r.status, 200);
      t.equal(r.body.total, BUILTIN_PAIRS.length);
      t.equal(r.body.pairs.length, BUILTIN_PAIRS.length);
      const symbols = r.body.pairs.map((p: { symbol: string }) => p.symbol);
      t.same(symbols, [...symbols].sort());
      t.same(r.body.pairs.find((p: { symbol: string }) => p.symbol === 'BTCUSDT'), {
        symbol: 'BTCUSDT', base_asset: 'BTC', quote_asset: 'USDT', status: 'active',
        min_qty: '0.00001000', step_size: '0.00001000', min_notional: '5.00000000', has_price: true,
      });
      t.equal(r.body.pairs.find((p: { symbol: string }) => p.symbol === 'DOGEUSDT').has_price, false);
      t.equal((await s.call('GET', `${M}/pairs?status=active`)).body.total, BUILTIN_PAIRS.length);
      t.same((await s.call('GET', `${M}/pairs?status=inactive`)).body, { pairs: [], total: 0 });
      const bad = await s.call('GET', `${M}/pairs?status=paused`);
      t.equal(bad.status, 422);
      t.equal(bad.body.error.code, 'VALIDATION_ERROR');
      t.equal(bad.body.error.details.field, 'status');
    });

    t.test('GET /price/{symbol}: upper-cases; 400 INVALID_SYMBOL for unknown; 503 before the first tick', async (t) => {
      ingest('ETHUSDT', '3500.1', T0 + 5);
      const r = await s.call('GET', `${M}/price/ethusdt`);
      t.equal(r.status, 200);
      t.same(r.body, { symbol: 'ETHUSDT', price: '3500.10000000', timestamp: iso(T0 + 5) });
      const unknown = await s.call('GET', `${M}/price/NOPEUSDT`);
      t.equal(unknown.status, 400);
      t.equal(unknown.body.error.code, 'INVALID_SYMBOL');
      t.same(unknown.body.error.details, { symbol: 'NOPEUSDT' });
      const none = await s.call('GET', `${M}/price/xrpusdt`);
      t.equal(none.status, 503);
      t.equal(none.body.error.code, 'PRICE_NOT_AVAILABLE');
      t.same(none.body.error.details, { symbol: 'XRPUSDT' });
      const withKey = await s.call('GET', `${M}/price/ETHUSDT`, { headers: { 'x-api-key': 'ak_live_garbage' } });
      t.equal(withKey.status, 200, 'public: credentials are not looked at');
    });

    t.test('GET /prices: a list of {symbol, price, timestamp}, freshness from BTCUSDT; ?symbols narrows', async (t) => {
      const all = await s.call('GET', `${M}/prices`);
      t.equal(all.status, 200);
      t.same(all.body.prices.map((p: { symbol: string }) => p.symbol), ['BTCUSDT', 'ETHUSDT']);
      t.same(all.body.prices[1], { symbol: 'ETHUSDT', price: '3500.10000000', timestamp: iso(T0 + 5) });
      t.equal(all.body.prices[0].price, '64521.30000000');
      t.equal(all.body.count, 2);
      t.equal(all.body.stale, false);
      t.ok(all.body.data_age_seconds >= 0 && all.body.data_age_seconds < 30, `age ${all.body.data_age_seconds}`);
      t.ok(Math.abs(Date.parse(all.body.timestamp) - Date.now()) < 30_000);
      const some = await s.call('GET', `${M}/prices?symbols=ethusdt,%20NOPE,XRPUSDT,ETHUSDT`);
      t.same(some.body.prices, [{ symbol: 'ETHUSDT', price: '3500.10000000', timestamp: iso(T0 + 5) }]);
      t.equal(some.body.count, 1);
    });

    t.test('GET /ticker/{symbol}: rolling 24 h window', async (t) => {
      // SOL: one trade per hour for 30 hours at 100..129, quantity 2; the window holds hours 6..29.
      for (let h = 0; h < 30; h++) ingest('SOLUSDT', String(100 + h), T0 + h * HOUR, '2');
      const r = await s.call('GET', `${M}/ticker/solusdt`);
      t.equal(r.status, 200);
      t.same(r.body, {
        symbol: 'SOLUSDT', open: '106.00000000', high: '129.00000000', low: '106.00000000', close: '129.00000000',
        volume: '48.00000000', quote_volume: '5640.00000000', change: '23.00000000', change_pct: '21.69811321',
        trade_count: 24, timestamp: iso(T0 + 29 * HOUR),
      });
      t.equal((await s.call('GET', `${M}/ticker/ADAUSDT`)).status, 503);
      t.equal((await s.call('GET', `${M}/ticker/NOPE`)).body.error.code, 'INVALID_SYMBOL');
    });

    t.test('GET /tickers: keyed by symbol; ?symbols skips unknown and unpriced; at most 100', async (t) => {
      const r = await s.call('GET', `${M}/tickers?symbols=SOLUSDT,btcusdt,XRPUSDT,NOPE`);
      t.equal(r.status, 200);
      t.same(Object.keys(r.body.tickers).sort(), ['BTCUSDT', 'SOLUSDT']);
      t.equal(r.body.count, 2);
      t.equal(r.body.tickers.SOLUSDT.open, '106.00000000');
      t.equal(r.body.tickers.BTCUSDT.close, '64521.30000000');
      const all = await s.call('GET', `${M}/tickers`);
      t.same(Object.keys(all.body.tickers).sort(), ['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
      const many = Array.from({ length: 101 }, (_, i) => `S${i}USDT`).join(',');
      const tooMany = await s.call('GET', `${M}/tickers?symbols=${many}`);
      t.equal(tooMany.status, 422);
      t.equal(tooMany.body.error.details.field, 'symbols');
    });

    t.test('GET /candles/{symbol}: 1h by default, 1m/5m/1d, limit keeps the newest, oldest first', async (t) => {
      const trades: Array<[string, number, string]> = [
        ['0.5', 0, '10'], ['0.6', 20_000, '10'], ['0.45', 40_000, '20'], ['0.46', MIN + 1, '10'],
        ['0.49', 4 * MIN + 59_999, '10'], ['0.55', 5 * MIN, '10'], ['0.7', HOUR + 30 * MIN, '5'],
      ];
      for (const [p, dt, q] of trades) ingest('ADAUSDT', p, T0 + dt, q);
      const h = await s.call('GET', `${M}/candles/adausdt`);
      t.equal(h.status, 200);
      t.same(h.body, {
        symbol: 'ADAUSDT', interval: '1h', count: 2,
        candles: [
          { time: iso(T0), open: '0.50000000', high: '0.60000000', low: '0.45000000', close: '0.55000000', volume: '70.00000000', quote_volume: '35.00000000', trade_count: 6 },
          { time: iso(T0 + HOUR), open: '0.70000000', high: '0.70000000', low: '0.70000000', close: '0.70000000', volume: '5.00000000', quote_volume: '3.50000000', trade_count: 1 },
        ],
      });
      const m1 = await s.call('GET', `${M}/candles/ADAUSDT?interval=1m&limit=2`);
      t.same(m1.body.candles.map((c: { time: string; close: string }) => [c.time, c.close]), [[iso(T0 + 5 * MIN), '0.55000000'], [iso(T0 + 90 * MIN), '0.70000000']]);
      const m5 = await s.call('GET', `${M}/candles/ADAUSDT?interval=5m`);
      t.same(m5.body.candles.map((c: { time: string; open: string; close: string; trade_count: number }) => [c.time, c.open, c.close, c.trade_count]), [
        [iso(T0), '0.50000000', '0.49000000', 5], [iso(T0 + 5 * MIN), '0.55000000', '0.55000000', 1], [iso(T0 + 90 * MIN), '0.70000000', '0.70000000', 1],
      ]);
      const d1 = await s.call('GET', `${M}/candles/ADAUSDT?interval=1d`);
      t.same(d1.body.candles.map((c: { time: string; high: string; low: string; volume: string }) => [c.time, c.high, c.low, c.volume]), [[iso(T0), '0.70000000', '0.45000000', '75.00000000']]);
      const ranged = await s.call('GET', `${M}/candles/ADAUSDT?interval=1m&start_time=${iso(T0 + MIN)}&end_time=${iso(T0 + 5 * MIN)}`);
      t.equal(ranged.body.count, 3);
      const empty = await s.call('GET', `${M}/candles/LINKUSDT?interval=1m`);
      t.same([empty.status, empty.body.candles, empty.body.count], [200, [], 0], 'no history yet is an empty list');
      for (const [q, field] of [['interval=4h', 'interval'], ['limit=0', 'limit'], ['limit=1001', 'limit'], ['limit=abc', 'limit'], ['start_time=yesterday', 'start_time']]) {
        const bad = await s.call('GET', `${M}/candles/ADAUSDT?${q}`);
        t.equal(bad.status, 422, q);
        t.equal(bad.body.error.code, 'VALIDATION_ERROR', q);
        t.equal(bad.body.error.details.field, field, q);
      }
      t.equal((await s.call('GET', `${M}/candles/ADAUSDT?limit=1000`)).status, 200);
      const unknown = await s.call('GET', `${M}/candles/FOO`);
      t.same([unknown.status, unknown.body.error.code, unknown.body.error.details.symbol], [400, 'INVALID_SYMBOL', 'FOO']);
    });

    t.test('GET /trades/{symbol}: newest first with ids, sides and ISO times; limit 1..500', async (t) => {
      for (let i = 1; i <= 5; i++) ingest('DOTUSDT', `4.${i}`, T0 + i * 1000, '10', { trade_id: 1000 + i, is_buyer_maker: i % 2 === 0 });
      const r = await s.call('GET', `${M}/trades/dotusdt?limit=3`);
      t.equal(r.status, 200);
      t.same(r.body, {
        symbol: 'DOTUSDT', count: 3,
        trades: [
          { trade_id: 1005, price: '4.50000000', quantity: '10.00000000', time: iso(T0 + 5000), is_buyer_maker: false },
          { trade_id: 1004, price: '4.40000000', quantity: '10.00000000', time: iso(T0 + 4000), is_buyer_maker: true },
          { trade_id: 1003, price: '4.30000000', quantity: '10.00000000', time: iso(T0 + 3000), is_buyer_maker: false },
        ],
      });
      t.equal((await s.call('GET', `${M}/trades/DOTUSDT`)).body.count, 5, 'default limit 100');
      t.same((await s.call('GET', `${M}/trades/LINKUSDT`)).body.trades, []);
      for (const q of ['limit=0', 'limit=501']) t.equal((await s.call('GET', `${M}/trades/DOTUSDT?${q}`)).status, 422, q);
      t.equal((await s.call('GET', `${M}/trades/NOPE`)).status, 400);
    });

    t.test('GET /orderbook/{symbol}: levels i bp away, deterministic sizes, depth 5|10|20', async (t) => {
      ingest('BNBUSDT', '600', T0 + 7);
      const r = await s.call('GET', `${M}/orderbook/bnbusdt`);
      t.equal(r.status, 200);
      t.equal(r.body.symbol, 'BNBUSDT');
      t.equal(r.body.depth, 10);
      t.equal(r.body.timestamp, iso(T0 + 7));
      t.same(r.body.bids.map((l: string[]) => l[0]), Array.from({ length: 10 }, (_, i) => (600 - 0.06 * (i + 1)).toFixed(8)));
      t.same(r.body.asks.map((l: string[]) => l[0]), Array.from({ length: 10 }, (_, i) => (600 + 0.06 * (i + 1)).toFixed(8)));
      for (const [, q] of [...r.body.bids, ...r.body.asks]) {
        t.match(q, /^\d+\.\d{3}00000$/);
        t.ok(Number(q) >= 0.1 && Number(q) <= 10, q);
      }
      t.same((await s.call('GET', `${M}/orderbook/BNBUSDT`)).body, r.body, 'same price, same book');
      const five = await s.call('GET', `${M}/orderbook/BNBUSDT?depth=5`);
      t.same([five.body.bids.length, five.body.asks.length], [5, 5]);
      t.same(five.body.bids, r.body.bids.slice(0, 5));
      t.equal((await s.call('GET', `${M}/orderbook/BNBUSDT?depth=20`)).body.asks.length, 20);
      const bad = await s.call('GET', `${M}/orderbook/BNBUSDT?depth=7`);
      t.same([bad.status, bad.body.error.code, bad.body.error.details.field], [422, 'VALIDATION_ERROR', 'depth']);
      t.equal((await s.call('GET', `${M}/orderbook/XRPUSDT`)).status, 503);
      t.equal((await s.call('GET', `${M}/orderbook/NOPE`)).status, 400);
      ingest('BNBUSDT', '601', T0 + 8);
      const moved = (await s.call('GET', `${M}/orderbook/BNBUSDT`)).body;
      t.equal(moved.bids[0][0], '600.93990000');
      t.notSame([...moved.bids, ...moved.asks].map((l: string[]) => l[1]), [...r.body.bids, ...r.body.asks].map((l: string[]) => l[1]), 'another price, other sizes');
    });

    t.test('the market routes are public and documented in OpenAPI under the market tag', async (t) => {
      const doc = (await s.call('GET', '/openapi.json')).body;
      for (const p of ['/pairs', '/price/{symbol}', '/prices', '/ticker/{symbol}', '/tickers', '/candles/{symbol}', '/trades/{symbol}', '/orderbook/{symbol}']) {
        const op = doc.paths[`${M}${p}`]?.get;
        t.ok(op, p);
        t.same(op?.tags, ['market'], p);
        t.same(op?.security, [], p);
      }
    });
  });
}
