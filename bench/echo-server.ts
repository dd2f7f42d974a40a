import uWS from 'uWebSockets.js';

/**
 * The ceiling for bench/ws-orders: a bare uWebSockets.js server on `/ws/v1` with the real gateway's socket
 * options, answering each request frame with a frame of the real server's size that carries the request's id
 * (and, for `order.place`, an order_id the client then cancels). No JSON parsing, no engine, no storage: what
 * is left is the transport, framing and the client, on the same machine.
 *
 * Env: PORT (0 = any; the port is printed as `{"event":"echo.listening","port":N}` on stdout),
 * PLACE_BYTES / CANCEL_BYTES: answer sizes (the bench measures them on the real server first).
 */

const port = Number(process.env.PORT ?? 0);
const placeBytes = Number(process.env.PLACE_BYTES ?? 600);
const cancelBytes = Number(process.env.CANCEL_BYTES ?? 630);

const ID = '{"id":';
let orders = 0;

/** The value of the leading `"id":` (the bench sends it first), or null. */
function idOf(text: string): string | null {
  if (!text.startsWith(ID)) return null;
  const end = text.indexOf(',', ID.length);
  return end < 0 ? null : text.slice(ID.length, end);
}

/** `{"id":N,"status":200,"result":{"order_id":"…","pad":"xxx…"}}`, padded to `bytes`. */
function answer(id: string, bytes: number, orderId: string): string {
  const head = `{"id":${id},"status":200,"result":{"order_id":"${orderId}","status":"pending","pad":"`;
  const tail = '"}}';
  return head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail;
}

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

const app = uWS.App().ws('/ws/v1', {
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 1024 * 1024,
  closeOnBackpressureLimit: 1,
  idleTimeout: 120,
  sendPingsAutomatically: true,
  compression: uWS.DISABLED,
  message(ws, message) {
    const text = Buffer.from(message).toString('latin1');
    const id = idOf(text);
    if (id === null) {
      ws.send(text, false);
      return;
    }
    const cancel = text.includes('"order.cancel"', ID.length);
    ws.send(cancel ? answer(id, cancelBytes, text.slice(text.indexOf('"order_id":"') + 12, text.indexOf('"order_id":"') + 48)) : answer(id, placeBytes, uuid(++orders)), false);
  },
});

app.any('/*', (res) => {
  res.end('ok');
});

app.listen('127.0.0.1', port, (sock) => {
  if (!sock) {
    process.stderr.write(`echo: cannot listen on ${port}\n`);
    process.exit(1);
  }
  const p = uWS.us_socket_local_port(sock as unknown as uWS.us_socket);
  process.stdout.write(JSON.stringify({ event: 'echo.listening', port: p }) + '\n');
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
