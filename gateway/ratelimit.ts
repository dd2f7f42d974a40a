import { ApiError } from '../schemas/errors.js';
import type { Config } from '../engine/config.js';
import type { Bus } from '../engine/bus.js';
import type { Logger } from '../engine/log.js';
import type { Principal } from '../engine/identity/types.js';
import type { Route } from './router.js';

const WINDOW_S = 60;

/**
 * Fixed 60 s windows, counted in the bus (Redis when configured, so every process shares one count; in
 * memory otherwise). Authenticated calls count against their agent and their account; unauthenticated
 * ones against the client IP, with a tight budget for POSTs (register, login) to slow down key guessing.
 * When the counter store fails, requests pass (fail open) and a warning is logged: a rate limiter must
 * never be the reason an exchange stops answering.
 */
export class RateLimiter {
  private warnedAt = 0;

  constructor(private readonly limits: Config['rate'], private readonly bus: Bus, private readonly log: Logger) {}

  /** Counts the request; returns the X-RateLimit-* headers, or throws 429 with them (and Retry-After). */
  async check(route: Route, method: string, p: Principal | null, ip: string, now = Date.now()): Promise<Record<string, string>> {
    const scopes: Array<[string, number]> = [];
    if (p) {
      if (p.agent) scopes.push([`agent:${p.agent.id}`, this.limits.agent_per_minute]);
      scopes.push([`account:${p.account.id}`, this.limits.account_per_minute]);
    } else if (route.path.startsWith('/api/')) {
      scopes.push(method === 'GET' ? [`ip:${ip}`, this.limits.public_per_ip_per_minute] : [`auth:${ip}`, this.limits.auth_per_ip_per_minute]);
    }
    return this.count(scopes, now);
  }

  /** A failed authentication (bad key or token, HTTP or WebSocket) counts against the client IP like a login. */
  failedAuth(ip: string, now = Date.now()): Promise<Record<string, string>> {
    return this.count([[`auth:${ip}`, this.limits.auth_per_ip_per_minute]], now);
  }

  private async count(scopes: Array<[string, number]>, now: number): Promise<Record<string, string>> {
    const active = scopes.filter(([, limit]) => limit > 0);
    if (active.length === 0) return {};
    const bucket = Math.floor(now / (WINDOW_S * 1000));
    const reset = (bucket + 1) * WINDOW_S;
    let counts: number[];
    try {
      counts = await Promise.all(active.map(([k]) => this.bus.incrWindow(`rl:${k}:${bucket}`, WINDOW_S * 2)));
    } catch (err) {
      if (now - this.warnedAt > 60_000) {
        this.warnedAt = now;
        this.log.warn('ratelimit.unavailable', { err: err as Error, effect: 'requests pass unlimited until the counter store is back' });
      }
      return {};
    }
    // The scope closest to its limit decides the headers.
    let worst = 0;
    for (let i = 1; i < active.length; i++) if (active[i][1] - counts[i] < active[worst][1] - counts[worst]) worst = i;
    const limit = active[worst][1];
    const headers = {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(Math.max(0, limit - counts[worst])),
      'x-ratelimit-reset': String(reset),
    };
    if (counts[worst] > limit) {
      const retry = Math.max(1, reset - Math.floor(now / 1000));
      throw new RateLimited(new ApiError('RATE_LIMIT_EXCEEDED', `Rate limit of ${limit} requests per ${WINDOW_S} s exceeded.`, {
        limit, window_seconds: WINDOW_S, retry_after_seconds: retry, scope: active[worst][0].split(':')[0],
      }), { ...headers, 'retry-after': String(retry) });
    }
    return headers;
  }
}

export class RateLimited extends Error {
  constructor(readonly error: ApiError, readonly headers: Record<string, string>) {
    super(error.message);
  }
}
