import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import type { ValueError } from '@sinclair/typebox/errors';
import { ApiError } from '../schemas/errors.js';
import { LIMITS } from '../schemas/limits.js';
import type { Engine } from '../engine/system.js';
import type { ActionGroup, Principal } from '../engine/identity/types.js';
import type { Tokens } from './auth.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
/** public: no credentials; optional: resolved when sent; any: API key or JWT; jwt: Bearer JWT only. */
export type AuthMode = 'public' | 'optional' | 'any' | 'jwt';

export interface Ctx<B = unknown, Q = unknown, P = unknown> {
  body: B;
  query: Q;
  params: P;
  headers: Record<string, string>;
  principal: Principal | null;
  ip: string;
  requestId: string;
  engine: Engine;
  tokens: Tokens;
}

/** What a handler may return instead of a plain JSON body (status 200, or the route's `status`). */
export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly contentType = 'application/json',
    readonly headers: Record<string, string> = {},
  ) {}
}

export interface RouteDef<B extends TSchema, Q extends TSchema, P extends TSchema> {
  method: Method;
  path: string;
  auth: AuthMode;
  /** Route group for `authorized_actions` and rate limits; null for auth and system routes. */
  group: ActionGroup | null;
  summary: string;
  description?: string;
  tag: string;
  body?: B;
  query?: Q;
  params?: P;
  /** Success status and response schema, for the OpenAPI document. */
  status?: number;
  response?: TSchema;
  contentType?: string;
  handler: (ctx: Ctx<Static<B>, Static<Q>, Static<P>>) => Promise<unknown> | unknown;
}

export interface Route extends RouteDef<TSchema, TSchema, TSchema> {
  segments: string[];
  paramNames: string[];
  rank: string;
  check: { body?: TypeCheck<TSchema>; query?: TypeCheck<TSchema>; params?: TypeCheck<TSchema> };
}

export function route<B extends TSchema = TSchema, Q extends TSchema = TSchema, P extends TSchema = TSchema>(
  def: RouteDef<B, Q, P>,
): RouteDef<TSchema, TSchema, TSchema> {
  return def as unknown as RouteDef<TSchema, TSchema, TSchema>;
}

export function compileRoutes(defs: RouteDef<TSchema, TSchema, TSchema>[]): Route[] {
  return defs.map((d) => {
    const segments = d.path.split('/').filter(Boolean);
    return {
      ...d,
      segments,
      paramNames: segments.filter((s) => s.startsWith('{')).map((s) => s.slice(1, -1)),
      // Static segments outrank parameters at the same position: /agents/overview beats /agents/{id}.
      rank: segments.map((s) => (s.startsWith('{') ? '1' : '0')).join(''),
      check: {
        body: d.body && TypeCompiler.Compile(d.body),
        query: d.query && TypeCompiler.Compile(d.query),
        params: d.params && TypeCompiler.Compile(d.params),
      },
    };
  });
}

export type Match = { route: Route; params: Record<string, string> } | { allowed: Method[] } | null;

export function matchRoute(routes: Route[], method: string, path: string): Match {
  const parts = path.split('/').filter(Boolean);
  let best: { route: Route; params: Record<string, string> } | null = null;
  const allowed = new Set<Method>();
  for (const r of routes) {
    if (r.segments.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < parts.length && ok; i++) {
      const s = r.segments[i];
      if (s.startsWith('{')) {
        try {
          params[s.slice(1, -1)] = decodeURIComponent(parts[i]);
        } catch {
          ok = false;
        }
      } else ok = s === parts[i];
    }
    if (!ok) continue;
    allowed.add(r.method);
    if (r.method === method && (!best || r.rank < best.route.rank)) best = { route: r, params };
  }
  if (best) return best;
  return allowed.size > 0 ? { allowed: [...allowed] } : null;
}

/** Throws 422 VALIDATION_ERROR naming the first failing field unless `value` passes `check`. */
export function assertValid(check: TypeCheck<TSchema>, value: unknown, location: string): void {
  if (!check.Check(value)) fail(location, check, value);
}

/**
 * Inside a union (a nullable object, say) the error the client needs is the deepest one of a variant: the field
 * in the object that is wrong, not "the object matched no variant". Variants that fail at the union's own path
 * (wrong type altogether) leave the union's error.
 */
function deepest(err: ValueError | undefined): ValueError | undefined {
  const depth = (e: ValueError) => e.path.split('/').length;
  let best = err;
  for (const variant of err?.errors ?? []) {
    const inner = deepest(variant.First());
    if (inner && (!best || depth(inner) > depth(best))) best = inner;
  }
  return best;
}

function fail(location: string, check: TypeCheck<TSchema>, value: unknown): never {
  const first = deepest(check.Errors(value).First());
  const path = first?.path.replace(/^\//, '').replace(/\//g, '.') ?? '';
  const field = path || location;
  throw new ApiError('VALIDATION_ERROR', `${field}: ${first?.message ?? 'invalid'}`, { field, location });
}

const NUL = '\u0000';

/**
 * The first string or key holding U+0000 (PostgreSQL stores it in neither text nor jsonb), or the first value nested
 * deeper than LIMITS.json_depth_max (deeper JSON overflows the stack where it is serialized again: jsonb columns).
 */
function unstorable(value: unknown, path: string, depth = 0): { field: string; reason: string } | null {
  if (typeof value === 'string') return value.includes(NUL) ? { field: path, reason: 'must not contain the character U+0000' } : null;
  if (typeof value !== 'object' || value === null) return null;
  if (depth >= LIMITS.json_depth_max) return { field: path, reason: `must not nest deeper than ${LIMITS.json_depth_max} levels` };
  for (const [k, v] of Object.entries(value)) {
    const field = path ? `${path}.${k}` : k;
    if (k.includes(NUL)) return { field, reason: 'must not contain the character U+0000' };
    const bad = unstorable(v, field, depth + 1);
    if (bad) return bad;
  }
  return null;
}

/** Validates path, query and body with the compiled schemas (query strings are coerced first), then refuses what no column can hold. */
export function validate(route: Route, params: Record<string, string>, query: Record<string, string>, body: unknown) {
  const { check } = route;
  if (check.params && !check.params.Check(params)) fail('path', check.params, params);
  let q: unknown = query;
  if (route.query) {
    q = Value.Convert(route.query, { ...query });
    if (!check.query!.Check(q)) fail('query', check.query!, q);
  }
  if (check.body && !check.body.Check(body)) fail('body', check.body, body);
  for (const [location, value] of [['path', params], ['query', q], ['body', body]] as const) {
    const bad = unstorable(value, '');
    if (bad) throw new ApiError('VALIDATION_ERROR', `${bad.field || location} ${bad.reason}.`, { field: bad.field || location, location });
  }
  return { params, query: q, body };
}
