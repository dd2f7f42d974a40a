import t from 'tap';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BUILTIN_PAIRS, fetchBinancePairs, parseExchangeInfo } from '../../../engine/market/pairs.js';
import { loadOrSeedPairs, loadPairs, upsertPairs } from '../../../engine/market/pairs-repo.js';
import { migrate } from '../../../engine/store/migrations.js';
import { backends } from '../../helpers/server.js';
import type { Pair } from '../../../engine/market/types.js';

const fixture = readFileSync(new URL('./fixtures/exchange-info.json', import.meta.url), 'utf8');
const pair = (symbol: string, base: string, min_qty: string, step_size: string, min_notional: string): Pair =>
  ({ symbol, base_asset: base, quote_asset: 'USDT', status: 'active', min_qty, step_size, min_notional });

t.test('parseExchangeInfo keeps TRADING USDT pairs with LOT_SIZE and NOTIONAL / MIN_NOTIONAL filters', async (t) => {
  t.same(parseExchangeInfo(JSON.parse(fixture)), [
    pair('ACMEUSDT', 'ACME', '0', '0', '0'),
    pair('BTCUSDT', 'BTC', '0.00001', '0.00001', '5'),
    pair('DOGEUSDT', 'DOGE', '1', '1', '1'),
  ]);
});

t.test('parseExchangeInfo refuses a body without symbols', async (t) => {
  for (const bad of [null, {}, { symbols: 'x' }, []]) t.throws(() => parseExchangeInfo(bad), /symbols/);
  t.same(parseExchangeInfo({ symbols: [null, 5, { symbol: 1, status: 'TRADING', quoteAsset: 'USDT' }] }), []);
});

t.test('the built-in list: 20+ major USDT pairs with plain decimal filters', async (t) => {
  const symbols = BUILTIN_PAIRS.map((p) => p.symbol);
  for (const s of ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'BNBUSDT', 'XRPUSDT', 'ADAUSDT', 'DOGEUSDT', 'DOTUSDT', 'LTCUSDT', 'LINKUSDT', 'AVAXUSDT', 'POLUSDT']) {
    t.ok(symbols.includes(s), s);
  }
  t.ok(BUILTIN_PAIRS.length >= 20);
  t.equal(new Set(symbols).size, symbols.length, 'no duplicates');
  for (const p of BUILTIN_PAIRS) {
    t.equal(p.symbol, `${p.base_asset}USDT`);
    for (const v of [p.min_qty, p.step_size, p.min_notional]) t.match(v, /^\d+(\.\d+)?$/, `${p.symbol} ${v}`);
  }
  t.same(BUILTIN_PAIRS.find((p) => p.symbol === 'BTCUSDT'), pair('BTCUSDT', 'BTC', '0.00001', '0.00001', '5'));
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

t.test('fetchBinancePairs reads exchangeInfo over HTTP', async (t) => {
  const paths: string[] = [];
  const { url, server } = await serve((req, res) => {
    paths.push(req.url ?? '');
    if (req.url === '/api/v3/exchangeInfo') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(fixture);
    } else res.writeHead(418).end('{"code":-1,"msg":"teapot"}');
  });
  t.teardown(() => server.close());
  const pairs = await fetchBinancePairs(`${url}/api/v3/exchangeInfo`);
  t.same(pairs.map((p) => p.symbol), ['ACMEUSDT', 'BTCUSDT', 'DOGEUSDT']);
  await t.rejects(fetchBinancePairs(`${url}/elsewhere`), /HTTP 418/);
  t.same(paths, ['/api/v3/exchangeInfo', '/elsewhere']);
  server.close();
  await t.rejects(fetchBinancePairs(`${url}/api/v3/exchangeInfo`), 'unreachable server rejects');
});

for (const backend of backends()) {
  t.test(`trading_pairs repository on ${backend.name}`, async (t) => {
    const { db, drop } = await backend.db();
    t.teardown(async () => {
      await db.close();
      await drop();
    });
    await migrate(db);

    t.test('an empty table is seeded with the built-in list; a second load does not re-seed', async (t) => {
      t.same(await loadPairs(db), []);
      const seeded = await loadOrSeedPairs(db);
      t.same(seeded, [...BUILTIN_PAIRS].sort((a, b) => (a.symbol < b.symbol ? -1 : 1)), 'stored and read back exactly');
      await db.query(`DELETE FROM trading_pairs WHERE symbol = 'SHIBUSDT'`);
      t.equal((await loadOrSeedPairs(db)).length, BUILTIN_PAIRS.length - 1);
    });

    t.test('upsert updates filters and status, adds new pairs; keepExisting leaves rows alone', async (t) => {
      await upsertPairs(db, [
        { ...pair('BTCUSDT', 'BTC', '0.0001', '0.0001', '10'), status: 'inactive' },
        pair('ACMEUSDT', 'ACME', '0.5', '0.5', '2.25'),
      ]);
      await upsertPairs(db, [pair('BTCUSDT', 'BTC', '9', '9', '9')], true);
      await upsertPairs(db, []);
      const rows = await loadPairs(db);
      t.same(rows.find((p) => p.symbol === 'BTCUSDT'), { ...pair('BTCUSDT', 'BTC', '0.0001', '0.0001', '10'), status: 'inactive' });
      t.same(rows.find((p) => p.symbol === 'ACMEUSDT'), pair('ACMEUSDT', 'ACME', '0.5', '0.5', '2.25'));
      t.same(rows.map((p) => p.symbol), [...rows.map((p) => p.symbol)].sort(), 'ordered by symbol');
    });
  });
}
