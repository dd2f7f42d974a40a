import t from 'tap';
import { resolve } from 'node:path';
import { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { createFeed, FallbackFeed } from '../../../engine/market/feeds/index.js';
import { loadConfig } from '../../../engine/config.js';
import { createLogger } from '../../../engine/log.js';
import type { Feed, Tick } from '../../../engine/market/types.js';

const DATA = resolve('../shared/data');
const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};
const symbols = ['BTCUSDT', 'ETHUSDT', 'NEWCOINUSDT'];

t.test('config: FEED defaults to binance; FEED_URL, FEED_SEED, FEED_FILE, FEED_SPEED; bad values refused', async (t) => {
  const d = loadConfig({});
  t.same([d.feed, d.feedUrl, d.feedSeed, d.feedFiles, d.feedSpeed], ['binance', null, 42, [], 1]);
  const c = loadConfig({ FEED: 'Replay', FEED_URL: 'ws://x', FEED_SEED: '7', FEED_FILE: 'a.csv, b.csv', FEED_SPEED: '60' });
  t.same([c.feed, c.feedUrl, c.feedSeed, c.feedFiles, c.feedSpeed], ['replay', 'ws://x', 7, ['a.csv', 'b.csv'], 60]);
  t.equal(loadConfig({ FEED_SEED: 'demo' }).feedSeed, 'demo');
  t.throws(() => loadConfig({ FEED: 'kraken' }), /FEED must be one of/);
  t.throws(() => loadConfig({ FEED_SPEED: '0' }), /positive/);
});

t.test('none emits nothing; synthetic ticks the known symbols it has prices for', async (t) => {
  const none = createFeed('none', { symbols });
  t.equal(none.name, 'none');
  const got: Tick[] = [];
  await none.start((x) => got.push(x));
  await none.stop();
  const syn = createFeed('synthetic', { symbols, seed: 5 });
  await syn.start((x) => got.push(x));
  await syn.stop();
  t.equal(syn.name, 'synthetic');
  t.same(got.map((x) => x.symbol), ['BTCUSDT', 'ETHUSDT'], 'one immediate round, no made-up price for an unknown coin');
});

t.test('replay needs files and plays them', async (t) => {
  t.throws(() => createFeed('replay', { symbols }), /FEED_FILE/);
  const feed = createFeed('replay', { symbols, files: [`${DATA}/bybit-linear/BTCUSDT_60m.csv`], speed: 1e12 });
  const got: Tick[] = [];
  await feed.start((x) => got.push(x));
  await until(() => got.length === 720 * 4);
  await feed.stop();
  t.equal(got[0].price, '103875.4');
});

t.test('binance reachable: ticks come from the stream', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', r));
  t.teardown(() => new Promise<void>((r) => wss.close(() => r())));
  wss.on('connection', (ws) => ws.send(JSON.stringify({ stream: 'btcusdt@trade', data: { e: 'trade', s: 'BTCUSDT', p: '1.00000000', q: '2.00000000', T: 3, m: false, t: 4 } })));
  const feed = createFeed('binance', { symbols, url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` });
  const got: Tick[] = [];
  await feed.start((x) => got.push(x));
  await until(() => got.length === 1);
  t.equal(feed.name, 'binance');
  t.equal(got[0].price, '1.00000000');
  await feed.stop();
  for (const c of wss.clients) c.terminate();
});

t.test('binance unreachable: a loud warning, then synthetic prices', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('warn', (l) => lines.push(JSON.parse(l)));
  const probe = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => probe.once('listening', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const feed = createFeed('binance', { symbols, url: `ws://127.0.0.1:${port}`, seed: 1, log, fallback_after_ms: 1000 });
  const got: Tick[] = [];
  await feed.start((x) => got.push(x));
  t.equal(feed.name, 'synthetic');
  t.ok(got.length >= 2, 'synthetic ticks flow');
  const warn = lines.find((l) => l.event === 'feed.fallback');
  t.ok(warn, 'warned');
  t.equal(warn?.level, 'warn');
  t.match(warn?.message, /SYNTHETIC PRICES, NOT REAL MARKET DATA/);
  t.same([warn?.from, warn?.to], ['binance', 'synthetic']);
  await feed.stop();
});

t.test('stopping during a failing start does not start the fallback', async (t) => {
  let rejectStart: (e: Error) => void = () => {};
  const primary: Feed = { name: 'p', start: () => new Promise((_, rej) => (rejectStart = rej)), stop: async () => {} };
  let fallbackMade = false;
  const f = new FallbackFeed(primary, () => {
    fallbackMade = true;
    return createFeed('none', { symbols });
  });
  const started = f.start(() => {});
  await f.stop();
  rejectStart(new Error('closed'));
  await started;
  t.notOk(fallbackMade);
  t.equal(f.name, 'p');
});
