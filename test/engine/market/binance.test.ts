import t from 'tap';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { BinanceFeed, parseTradeFrame, streamUrls } from '../../../engine/market/feeds/binance.js';
import { createLogger } from '../../../engine/log.js';
import type { Tick } from '../../../engine/market/types.js';

const frame = (s: string, p: string, q: string, T: number, t: number, m = false) =>
  JSON.stringify({ stream: `${s.toLowerCase()}@trade`, data: { e: 'trade', E: T + 3, s, t, p, q, T, m, M: true } });
const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};
function captureLog() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, log: createLogger('debug', (l) => lines.push(JSON.parse(l))) };
}
async function wsServer(port = 0): Promise<{ wss: WebSocketServer; port: number; urls: string[]; sockets: WebSocket[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  await new Promise<void>((r) => wss.once('listening', r));
  const urls: string[] = [];
  const sockets: WebSocket[] = [];
  wss.on('connection', (ws, req) => {
    urls.push(req.url ?? '');
    sockets.push(ws);
  });
  return { wss, port: (wss.address() as AddressInfo).port, urls, sockets };
}
const closeServer = (wss: WebSocketServer) => {
  for (const c of wss.clients) c.terminate();
  return new Promise<void>((r) => wss.close(() => r()));
};

t.test('parseTradeFrame reads trade frames and ignores everything else', async (t) => {
  t.same(parseTradeFrame(frame('BTCUSDT', '64521.30000000', '0.01200000', 1717000000123, 42, true)), {
    symbol: 'BTCUSDT', price: '64521.30000000', quantity: '0.01200000', time: 1717000000123, is_buyer_maker: true, trade_id: 42,
  });
  t.same(parseTradeFrame('{"e":"trade","s":"ethusdt","p":"1.5","q":"2","T":5,"m":false,"t":7}'),
    { symbol: 'ETHUSDT', price: '1.5', quantity: '2', time: 5, is_buyer_maker: false, trade_id: 7 }, 'raw stream frame');
  for (const bad of [
    '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT","p":"1","q":"1","T":1,"a":1}}',
    '{"stream":"btcusdt@kline_1m","data":{"e":"kline","s":"BTCUSDT","k":{}}}',
    '{"result":null,"id":1}',
    'not json',
    'null',
    '{"data":{"e":"trade","s":"BTCUSDT","p":"1e3","q":"1","T":1}}',
    '{"data":{"e":"trade","s":"BTCUSDT","p":"-1","q":"1","T":1}}',
    '{"data":{"e":"trade","s":"BTCUSDT","p":"1","q":"1","T":"1"}}',
    '{"data":{"e":"trade","p":"1","q":"1","T":1}}',
  ]) t.equal(parseTradeFrame(bad), null, bad);
});

t.test('stream URLs: lower-case trade streams, at most N per connection', async (t) => {
  t.same(streamUrls('wss://stream.binance.com:9443/', ['BTCUSDT', 'ETHUSDT']), ['wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade']);
  t.same(streamUrls('ws://h', ['A', 'B', 'C'], 2), ['ws://h/stream?streams=a@trade/b@trade', 'ws://h/stream?streams=c@trade']);
});

t.test('against a local server: frames become ticks, pings get pongs, a dropped link reconnects', async (t) => {
  const srv = await wsServer();
  t.teardown(() => closeServer(srv.wss));
  const feed = new BinanceFeed({ symbols: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'], base: `ws://127.0.0.1:${srv.port}`, backoff_base_ms: 20 });
  t.teardown(() => feed.stop());
  const got: Tick[] = [];
  await feed.start((x) => got.push(x));
  await until(() => srv.sockets.length === 1);
  const first = srv.sockets[0];
  first.send(frame('BTCUSDT', '64521.30000000', '0.01200000', 1717000000000, 1));
  first.send('{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT","p":"1","q":"1","T":1,"a":1}}');
  first.send('garbage');
  first.send(frame('ETHUSDT', '3500.10000000', '1.00000000', 1717000000001, 2, true));
  const pong = new Promise<string>((r) => first.once('pong', (d) => r(d.toString())));
  first.ping('are-you-there');
  t.equal(await pong, 'are-you-there', 'the client answers pings');
  await until(() => got.length === 2);
  first.terminate();
  await until(() => srv.sockets.length === 2);
  srv.sockets[1].send(frame('SOLUSDT', '150.25000000', '3.00000000', 1717000000002, 3));
  await until(() => got.length === 3);
  t.same(got.map((x) => [x.symbol, x.price, x.quantity, x.time, x.is_buyer_maker, x.trade_id]), [
    ['BTCUSDT', '64521.30000000', '0.01200000', 1717000000000, false, 1],
    ['ETHUSDT', '3500.10000000', '1.00000000', 1717000000001, true, 2],
    ['SOLUSDT', '150.25000000', '3.00000000', 1717000000002, false, 3],
  ]);
  t.equal(feed.reconnects, 1);
  t.same(srv.urls, ['/stream?streams=btcusdt@trade/ethusdt@trade/solusdt@trade', '/stream?streams=btcusdt@trade/ethusdt@trade/solusdt@trade']);
  await feed.stop();
  await new Promise((r) => setTimeout(r, 60));
  t.equal(srv.sockets.length, 2, 'no reconnect after stop');
  t.equal(srv.sockets[1].readyState, srv.sockets[1].CLOSED);
});

t.test('while the server is down, retries back off exponentially up to the cap, then resume', async (t) => {
  const { lines, log } = captureLog();
  let srv = await wsServer();
  const port = srv.port;
  const feed = new BinanceFeed({ symbols: ['BTCUSDT'], base: `ws://127.0.0.1:${port}`, backoff_base_ms: 20, backoff_max_ms: 160, log });
  t.teardown(() => feed.stop());
  const got: Tick[] = [];
  await feed.start((x) => got.push(x));
  await closeServer(srv.wss);
  const delays = () => lines.filter((l) => l.event === 'feed.binance.disconnected').map((l) => l.retry_in_ms);
  await until(() => delays().length >= 6);
  t.same(delays().slice(0, 6), [20, 40, 80, 160, 160, 160]);
  srv = await wsServer(port);
  t.teardown(() => closeServer(srv.wss));
  await until(() => srv.sockets.length === 1);
  srv.sockets[0].send(frame('BTCUSDT', '1.00000000', '1.00000000', 1, 9));
  await until(() => got.length === 1);
  t.equal(feed.reconnects, 1);
  t.ok(lines.some((l) => l.event === 'feed.binance.connected' && l.reconnects === 1));
  srv.sockets[0].terminate();
  await until(() => delays().length >= 7);
  t.equal(delays()[6], 20, 'a successful connection resets the backoff');
});

t.test('a silent link is dropped after the idle timeout and reopened', async (t) => {
  const srv = await wsServer();
  t.teardown(() => closeServer(srv.wss));
  const feed = new BinanceFeed({ symbols: ['BTCUSDT'], base: `ws://127.0.0.1:${srv.port}`, backoff_base_ms: 10, idle_timeout_ms: 80 });
  t.teardown(() => feed.stop());
  await feed.start(() => {});
  await until(() => feed.reconnects >= 1);
  t.ok(srv.sockets.length >= 2);
});

t.test('the first connection failing rejects start(): refused, or no handshake in time', async (t) => {
  const tcp = createTcpServer(() => {});
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const silentPort = (tcp.address() as AddressInfo).port;
  t.teardown(() => tcp.close());
  const probe = await wsServer();
  const closedPort = probe.port;
  await closeServer(probe.wss);

  const refused = new BinanceFeed({ symbols: ['BTCUSDT'], base: `ws://127.0.0.1:${closedPort}` });
  await t.rejects(refused.start(() => {}), /ECONNREFUSED|failed/);
  const silent = new BinanceFeed({ symbols: ['BTCUSDT'], base: `ws://127.0.0.1:${silentPort}`, connect_timeout_ms: 150 });
  const t0 = Date.now();
  await t.rejects(silent.start(() => {}), /within 150 ms|timed out|failed/);
  t.ok(Date.now() - t0 < 2000);
  await refused.stop();
  await silent.stop();
});
