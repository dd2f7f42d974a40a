import t from 'tap';
import { PriceBook } from '../../../engine/market/book.js';
import { CandleWriter } from '../../../engine/market/candle-writer.js';
import { BUILTIN_PAIRS } from '../../../engine/market/pairs.js';
import { loadCandles } from '../../../engine/store/candles-repo.js';
import type { Queryable } from '../../../engine/store/db.js';
import { migrate } from '../../../engine/store/migrations.js';
import { backends } from '../../helpers/server.js';

const MIN = 60_000;
const T0 = Date.UTC(2025, 5, 1, 12, 0);
const ALL = [0, Date.UTC(2100, 0)] as const;

for (const backend of backends()) {
  t.test(`live 1m candles are persisted on ${backend.name}`, async (t) => {
    const { db, drop } = await backend.db();
    t.teardown(async () => {
      await db.close();
      await drop();
    });
    await migrate(db);
    const fresh = () => {
      const book = new PriceBook(BUILTIN_PAIRS);
      const trade = (symbol: string, price: string, time: number, quantity = '1') => book.ingest({ symbol, price, quantity, time });
      return { book, trade };
    };

    t.test('a flush writes the minutes that traded since the last one: closed ones, late trades, the open one', async (t) => {
      const { book, trade } = fresh();
      const w = new CandleWriter(db, book);
      t.equal(await w.flush(), 0, 'nothing traded, nothing written');
      trade('BTCUSDT', '100', T0 + 1000, '2');
      trade('BTCUSDT', '105', T0 + 20_000);
      trade('BTCUSDT', '99', T0 + 40_000);
      trade('BTCUSDT', '101', T0 + 59_000);
      trade('BTCUSDT', '101.5', T0 + MIN + 5000);
      trade('ETHUSDT', '2500.25', T0 + 3000, '0.5');
      t.equal(await w.flush(), 3);
      t.same(await loadCandles(db, 'BTCUSDT', '1m', ...ALL), [
        { time: T0, open: '100.00000000', high: '105.00000000', low: '99.00000000', close: '101.00000000', volume: '5.00000000', trade_count: 4 },
        { time: T0 + MIN, open: '101.50000000', high: '101.50000000', low: '101.50000000', close: '101.50000000', volume: '1.00000000', trade_count: 1 },
      ]);
      t.same((await loadCandles(db, 'ETHUSDT', '1m', ...ALL)).map((c) => [c.time, c.close, c.volume]), [[T0, '2500.25000000', '0.50000000']]);

      trade('BTCUSDT', '110', T0 + MIN + 30_000);
      t.equal(await w.flush(), 1, 'only the open minute traded again');
      t.equal((await loadCandles(db, 'BTCUSDT', '1m', T0 + MIN, T0 + MIN))[0].high, '110.00000000');

      trade('BTCUSDT', '90', T0 + 50_000);
      t.equal(await w.flush(), 1, 'a late trade rewrites its (closed) minute');
      const [m0] = await loadCandles(db, 'BTCUSDT', '1m', T0, T0);
      t.same([m0.low, m0.close, m0.trade_count], ['90.00000000', '101.00000000', 5]);
      t.equal(await w.flush(), 0);
    });

    t.test('start flushes on a timer; stop writes what is left and stops watching', async (t) => {
      const { book, trade } = fresh();
      const w = new CandleWriter(db, book, { flush_interval_ms: 30 });
      w.start();
      trade('SOLUSDT', '150', T0 + 10 * MIN);
      for (let i = 0; i < 200 && (await loadCandles(db, 'SOLUSDT', '1m', ...ALL)).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      t.equal((await loadCandles(db, 'SOLUSDT', '1m', ...ALL)).length, 1, 'written by the timer');
      trade('SOLUSDT', '151', T0 + 11 * MIN);
      await w.stop();
      t.equal((await loadCandles(db, 'SOLUSDT', '1m', ...ALL)).length, 2, 'written by stop');
      trade('SOLUSDT', '152', T0 + 12 * MIN);
      await new Promise((r) => setTimeout(r, 100));
      t.equal((await loadCandles(db, 'SOLUSDT', '1m', ...ALL)).length, 2, 'nothing after stop');
    });

    t.test('a failed flush keeps its minutes for the next one', async (t) => {
      const { book, trade } = fresh();
      let failing = 1;
      const flaky: Queryable = {
        query: async <T>(sql: string, params?: readonly unknown[]) => {
          if (failing-- > 0) throw new Error('connection lost');
          return db.query<T>(sql, params);
        },
        exec: (sql) => db.exec(sql),
      };
      const errors: unknown[] = [];
      const w = new CandleWriter(flaky, book, { onError: (e) => errors.push(e) });
      trade('XRPUSDT', '0.5', T0 + 20 * MIN);
      await t.rejects(w.flush(), /connection lost/);
      trade('XRPUSDT', '0.6', T0 + 21 * MIN);
      t.equal(await w.flush(), 2);
      t.same((await loadCandles(db, 'XRPUSDT', '1m', ...ALL)).map((c) => c.close), ['0.50000000', '0.60000000']);
    });
  });
}
