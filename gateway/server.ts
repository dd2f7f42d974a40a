import { randomUUID } from 'node:crypto';
import uWS from 'uWebSockets.js';
import { ApiError, ERRORS } from '../schemas/errors.js';
import type { Engine } from '../engine/system.js';
import { authenticate, createTokens, type Tokens } from './auth.js';
import { BodyTooLarge, readBody, readRequest, send, type RawRequest, type ResState } from './http.js';
import { matchRoute, Reply, validate, type Route } from './router.js';
import { routeTable } from './routes/index.js';
import { attachWs } from './ws/index.js';
import { RateLimited, RateLimiter } from './ratelimit.js';

export interface Server {
  readonly port: number;
  readonly routes: Route[];
  readonly tokens: Tokens;
  /** Stops accepting, waits for in-flight requests (up to the grace period), then flushes the journal. */
  close(): Promise<void>;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const BASE_HEADERS = { 'access-control-allow-origin': '*' };
const CORS_PREFLIGHT = {
  ...BASE_HEADERS,
  'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE, OPTIONS',
  'access-control-allow-headers': 'content-type, authorization, x-api-key, x-agent-id, x-trace-id',
  'access-control-max-age': '600',
};

/** uWS silently falls back to a slow pure-JS build when its binary does not load: refuse to run on it. */
export function assertNativeUws(): void {
  if (!String(uWS.App).includes('[native code]')) {
    throw new Error('uWebSockets.js native binary did not load (pure-JS fallback in use); check Node version and glibc');
  }
}

export async function startServer(engine: Engine, opts: { port: number; host: string }): Promise<Server> {
  assertNativeUws();
  const routes = routeTable();
  const tokens = createTokens(engine.secrets.jwtSecret, engine.config.jwtExpiry_seconds);
  const limiter = new RateLimiter(engine.config.rate, engine.bus, engine.log);
  const { log } = engine;
  let accepting = true;
  let inflight = 0;
  let drained: (() => void) | null = null;

  const errorReply = (err: unknown, requestId: string): Reply => {
    if (err instanceof RateLimited) return new Reply(429, err.error.toBody(), 'application/json', err.headers);
    if (err instanceof ApiError) return new Reply(err.status, err.toBody());
    if (err instanceof BodyTooLarge) {
      const e = new ApiError('PAYLOAD_TOO_LARGE', `Request body exceeds ${engine.config.body_bytes_max} bytes.`, { limit_bytes: engine.config.body_bytes_max });
      return new Reply(e.status, e.toBody(), 'application/json', { connection: 'close' });
    }
    log.error('request.failed', { request_id: requestId, err: err as Error });
    return new Reply(500, new ApiError('INTERNAL_ERROR', ERRORS.INTERNAL_ERROR.message, { request_id: requestId }).toBody());
  };

  async function handle(raw: RawRequest, body: Promise<Buffer> | null, requestId: string): Promise<Reply> {
    if (!accepting) throw new ApiError('SERVICE_UNAVAILABLE', 'Server is shutting down.');
    const match = matchRoute(routes, raw.method, raw.path);
    if (!match) throw new ApiError('NOT_FOUND', `No route ${raw.path}.`, { path: raw.path });
    if ('allowed' in match) {
      const e = new ApiError('METHOD_NOT_ALLOWED', `${raw.method} is not allowed on ${raw.path}.`, { allowed: match.allowed });
      return new Reply(405, e.toBody(), 'application/json', { allow: match.allowed.join(', ') });
    }
    const { route } = match;
    const bytes = body ? await body : null;
    let principal;
    try {
      principal = await authenticate(route, raw.headers, engine.identity, tokens);
    } catch (err) {
      // Failed credentials count against the client IP like logins do, so keys cannot be guessed at speed.
      if (err instanceof ApiError && err.status === 401) await limiter.failedAuth(raw.ip);
      throw err;
    }
    const limits = await limiter.check(route, raw.method, principal, raw.ip);
    let json: unknown = {};
    if (bytes && bytes.length > 0 && route.body) {
      try {
        json = JSON.parse(bytes.toString('utf8'));
      } catch {
        throw new ApiError('VALIDATION_ERROR', 'Request body is not valid JSON.', { field: 'body', location: 'body' });
      }
    }
    const input = validate(route, match.params, raw.query, json);
    const out = await route.handler({ ...input, headers: raw.headers, principal, ip: raw.ip, requestId, engine, tokens });
    const reply = out instanceof Reply ? out : new Reply(route.status ?? 200, out, route.contentType);
    return new Reply(reply.status, reply.body, reply.contentType, { ...limits, ...reply.headers });
  }

  const app = uWS.App().any('/*', (res, req) => {
    const state: ResState = { aborted: false, done: false };
    let counted = true;
    inflight += 1;
    const finish = () => {
      if (!counted) return;
      counted = false;
      inflight -= 1;
      if (inflight === 0 && drained) drained();
    };
    res.onAborted(() => {
      state.aborted = true;
      finish();
    });
    const raw = readRequest(res, req, engine.config.trustProxy);
    const requestId = randomUUID();
    if (raw.method === 'OPTIONS') {
      send(res, state, 204, '', CORS_PREFLIGHT);
      return finish();
    }
    const body = BODY_METHODS.has(raw.method) ? readBody(res, engine.config.body_bytes_max) : null;
    body?.catch(() => {});
    handle(raw, body, requestId)
      .catch((err) => errorReply(err, requestId))
      .then((reply) => {
        const payload = reply.contentType === 'application/json' ? JSON.stringify(reply.body) : String(reply.body);
        const headers = { ...BASE_HEADERS, 'content-type': reply.contentType, 'x-request-id': requestId, ...reply.headers };
        send(res, state, reply.status, payload, headers, !accepting || reply.headers.connection === 'close');
        log.debug('request', { request_id: requestId, method: raw.method, path: raw.path, status: reply.status });
      })
      .catch((err) => log.error('response.failed', { request_id: requestId, err }))
      .finally(finish);
  });

  const ws = attachWs(app, engine, () => accepting, limiter);

  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) =>
    app.listen(opts.host, opts.port, (s) => (s ? resolve(s) : reject(new Error(`cannot listen on ${opts.host}:${opts.port}`)))),
  );
  const port = uWS.us_socket_local_port(listenSocket as unknown as uWS.us_socket);
  log.info('server.listening', { host: opts.host, port, routes: routes.length });

  return {
    port,
    routes,
    tokens,
    async close() {
      if (!accepting) return;
      accepting = false;
      uWS.us_listen_socket_close(listenSocket);
      ws.close();
      if (inflight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, engine.config.shutdownGrace_ms);
          drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      await engine.journal.flush();
      log.info('server.closed', { port });
    },
  };
}
