import { TypeCompiler } from '@sinclair/typebox/compiler';
import uWS from 'uWebSockets.js';
import { ApiError, ERRORS } from '../../schemas/errors.js';
import { AuthFrame, RequestFrame, SubscribeFrame } from '../../schemas/ws.js';
import type { Engine } from '../../engine/system.js';
import { authenticateKey } from '../auth.js';
import { assertValid } from '../router.js';
import { Channels, channelKey, type Conn, type Sock } from './channels.js';
import { runMethod } from './requests.js';
import { RateLimited, type RateLimiter } from '../ratelimit.js';

/**
 * `/ws/v1`: market and account pushes, and order entry on the same socket.
 * Auth: `?api_key=` (refused before the upgrade with HTTP 401/403, which the official client treats as
 * final) or, without it, an `{"action":"auth","api_key":…}` first frame within the auth timeout.
 */

export interface WsGateway {
  connections(): number;
  /** Closes every socket with 1001 (going away). */
  close(): void;
}

const check = { sub: TypeCompiler.Compile(SubscribeFrame), auth: TypeCompiler.Compile(AuthFrame), req: TypeCompiler.Compile(RequestFrame) };
const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 422: 'Unprocessable Entity', 429: 'Too Many Requests', 503: 'Service Unavailable' };

const errorFrame = (err: ApiError, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type: 'error', code: err.code, message: err.message, details: err.details, ...extra });

export function attachWs(app: uWS.TemplatedApp, engine: Engine, isAccepting: () => boolean, limiter: RateLimiter): WsGateway {
  const limits = engine.config.ws;
  const { log } = engine;
  const channels = new Channels(engine);
  const sockets = new Set<Sock>();
  const perKey = new Map<string, number>();
  let nextId = 1;
  channels.start(limits.portfolio_interval_ms);

  const countKey = (key: string, delta: number) => {
    const n = (perKey.get(key) ?? 0) + delta;
    if (n <= 0) perKey.delete(key);
    else perKey.set(key, n);
  };
  const fail = (err: unknown): ApiError => {
    if (err instanceof ApiError) return err;
    log.error('ws.failed', { err: err as Error });
    return new ApiError('INTERNAL_ERROR', ERRORS.INTERNAL_ERROR.message);
  };

  /** Binds a key to the connection, enforcing the per-key connection limit. */
  async function authenticate(conn: Conn, rawKey: string, agentId: string | null): Promise<void> {
    // Counted by the key as resolved (trimmed): padding a key with whitespace must not open extra slots.
    const key = rawKey.trim();
    const principal = await authenticateKey(engine.identity, key, agentId);
    if (conn.key !== key && (perKey.get(key) ?? 0) >= limits.connections_per_key_max) {
      throw new ApiError('CONNECTION_LIMIT', `At most ${limits.connections_per_key_max} connections per API key.`, { limit: limits.connections_per_key_max });
    }
    if (conn.key !== key) {
      if (conn.key) countKey(conn.key, -1);
      countKey(key, 1);
    }
    Object.assign(conn, { key, agentScope: agentId, principal });
  }

  async function onFrame(sock: Sock, text: string): Promise<void> {
    const conn = sock.getUserData();
    let f: Record<string, unknown>;
    try {
      f = JSON.parse(text);
    } catch {
      throw new ApiError('VALIDATION_ERROR', 'Frame is not valid JSON.', { field: 'frame' });
    }
    if (typeof f !== 'object' || f === null || Array.isArray(f)) throw new ApiError('VALIDATION_ERROR', 'Frame must be a JSON object.', { field: 'frame' });
    if ('method' in f) return onRequest(sock, f);
    const action = String(f.action ?? f.type ?? '');
    if (action === 'ping') return channels.send(sock, '{"type":"pong"}');
    if (action === 'pong') return;
    if (action === 'auth') {
      assertValid(check.auth, f, 'frame');
      try {
        await authenticate(conn, f.api_key as string, (f.agent_id as string | undefined) ?? null);
      } catch (err) {
        channels.send(sock, errorFrame(fail(err)));
        channels.flush(sock);
        return sock.end(fail(err).code === 'CONNECTION_LIMIT' ? 4429 : 4401, 'authentication failed');
      }
      if (conn.authTimer) clearTimeout(conn.authTimer);
      conn.authTimer = null;
      const p = conn.principal!;
      // Re-authentication: orders/portfolio follow the new principal at once (the previous key may have been
      // revoked; its agents' events must stop here, not at the next ping check). The slots are kept.
      // A battle subscription survives only if the new principal's account owns the battle.
      const own = [...conn.subs.keys()].filter((k) => k === 'orders' || k === 'portfolio' || k.startsWith('battle:'));
      for (const k of own) channels.add(sock, k, []);
      for (const k of own) {
        const topics = k.startsWith('battle:') ? await channels.topicsFor(k, p).catch(() => []) : await channels.topicsFor(k, p);
        if (conn.closed || conn.principal !== p) return;
        channels.add(sock, k, topics);
      }
      return channels.send(sock, JSON.stringify({ type: 'authenticated', account_id: p.account.id, agent_id: p.agent?.id ?? null }));
    }
    if (action !== 'subscribe' && action !== 'unsubscribe') {
      throw new ApiError('UNKNOWN_ACTION', `Unknown action '${action}'. Valid actions: auth, subscribe, unsubscribe, ping, pong; or send {"id","method","params"}.`, { action });
    }
    if (!conn.principal) throw new ApiError('INVALID_API_KEY', 'Authenticate first: {"action":"auth","api_key":"..."}.');
    assertValid(check.sub, f, 'frame');
    const key = channelKey(f as { channel: string }, (s) => engine.market.pair(s) !== undefined);
    if (action === 'unsubscribe') {
      channels.remove(sock, key);
      return channels.send(sock, JSON.stringify({ type: 'unsubscribed', channel: key }));
    }
    if (!conn.subs.has(key) && conn.subs.size >= limits.subscriptions_max) {
      throw new ApiError('SUBSCRIPTION_LIMIT', `Maximum of ${limits.subscriptions_max} subscriptions per connection reached.`, { limit: limits.subscriptions_max, channel: key });
    }
    let p = conn.principal;
    let topics = await channels.topicsFor(key, p);
    // A re-authentication may have landed meanwhile: never add topics of the previous principal.
    while (!conn.closed && conn.principal !== p) topics = await channels.topicsFor(key, (p = conn.principal));
    if (conn.closed) return;
    channels.add(sock, key, topics);
    channels.send(sock, JSON.stringify({ type: 'subscribed', channel: key }));
  }

  async function onRequest(sock: Sock, f: Record<string, unknown>): Promise<void> {
    const conn = sock.getUserData();
    const id = typeof f.id === 'string' || typeof f.id === 'number' ? f.id : null;
    let out: string;
    try {
      assertValid(check.req, f, 'frame');
      if (!conn.key) throw new ApiError('INVALID_API_KEY', 'Authenticate first: {"action":"auth","api_key":"..."}.');
      // Re-resolved per request (a cached lookup): an archived agent or a regenerated key stops at once.
      const p = await authenticateKey(engine.identity, conn.key, conn.agentScope);
      const result = await runMethod(engine, p, f.method as string, (f.params as Record<string, unknown>) ?? {});
      out = JSON.stringify({ id, status: 200, result });
    } catch (err) {
      const e = fail(err);
      out = JSON.stringify({ id, status: e.status, error: e.toBody().error });
    }
    channels.send(sock, out);
  }

  app.ws<Conn>('/ws/v1', {
    // uWS drops the TCP connection without a close frame (the client sees 1006) past maxPayloadLength, so the
    // frame limit is enforced in `message` with a proper 1009; uWS's own cap only bounds what is read.
    maxPayloadLength: limits.frame_bytes_max * 2,
    maxBackpressure: limits.backpressure_bytes_max,
    closeOnBackpressureLimit: 1,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    compression: uWS.DISABLED,
    upgrade(res, req, context) {
      const query = new URLSearchParams(req.getQuery() ?? '');
      const headers = [req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions')] as const;
      const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
      let aborted = false;
      res.onAborted(() => (aborted = true));
      const conn: Conn = { id: nextId++, ip, key: null, agentScope: null, principal: null, subs: new Map(), closed: false, authTimer: null };
      const refuse = (e: ApiError) => {
        if (aborted) return;
        res.cork(() => {
          res.writeStatus(`${e.status} ${STATUS_TEXT[e.status] ?? 'Error'}`).writeHeader('content-type', 'application/json').end(JSON.stringify(e.toBody()));
        });
      };
      if (!isAccepting()) return refuse(new ApiError('SERVICE_UNAVAILABLE', 'Server is shutting down.'));
      const key = query.get('api_key');
      const ready = key ? authenticate(conn, key, query.get('agent_id')) : Promise.resolve();
      ready.then(
        () => {
          if (aborted) {
            if (conn.key) countKey(conn.key, -1);
            return;
          }
          res.cork(() => res.upgrade(conn, headers[0], headers[1], headers[2], context));
        },
        async (err) => {
          if (conn.key) countKey(conn.key, -1);
          const e = fail(err);
          if (e.status === 401) {
            const limited = await limiter.failedAuth(ip).then(() => null, (r: unknown) => (r instanceof RateLimited ? r.error : null));
            if (limited) return refuse(limited);
          }
          refuse(e);
        },
      );
    },
    open(sock) {
      sockets.add(sock);
      const conn = sock.getUserData();
      if (!conn.principal) {
        conn.authTimer = setTimeout(() => {
          if (!conn.closed && !conn.principal) sock.end(4401, 'authentication timeout');
        }, limits.auth_timeout_ms);
      }
    },
    message(sock, message) {
      if (message.byteLength > limits.frame_bytes_max) return sock.end(ERRORS.PAYLOAD_TOO_LARGE.wsClose, 'frame too large');
      const text = Buffer.from(message).toString('utf8');
      onFrame(sock, text).catch((err) => channels.send(sock, errorFrame(fail(err))));
    },
    close(sock) {
      const conn = sock.getUserData();
      conn.closed = true;
      sockets.delete(sock);
      if (conn.authTimer) clearTimeout(conn.authTimer);
      if (conn.key) countKey(conn.key, -1);
      channels.drop(sock);
    },
  });

  // Application-level ping (the official client answers {"type":"pong"}), and a recheck of each socket's key.
  const pinger = setInterval(() => {
    for (const sock of sockets) {
      const conn = sock.getUserData();
      if (!conn.key) continue;
      authenticateKey(engine.identity, conn.key, conn.agentScope).then(
        () => channels.send(sock, '{"type":"ping"}'),
        (err) => {
          if (conn.closed) return;
          channels.send(sock, errorFrame(fail(err)));
          channels.flush(sock);
          sock.end(4401, 'credentials no longer valid');
        },
      );
    }
  }, limits.ping_interval_ms);
  pinger.unref();

  return {
    connections: () => sockets.size,
    close() {
      clearInterval(pinger);
      channels.stop();
      for (const sock of [...sockets]) {
        channels.flush(sock);
        sock.end(1001, 'server shutting down');
      }
    },
  };
}
