import { createSigner, createVerifier } from 'fast-jwt';
import { ApiError } from '../schemas/errors.js';
import type { IdentityService } from '../engine/identity/service.js';
import type { Account, ActionGroup, Principal } from '../engine/identity/types.js';
import type { Route } from './router.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface Tokens {
  issue(accountId: string): { token: string; expires_in: number; expires_at: string; token_type: 'Bearer' };
  verify(token: string): string;
}

/** HS256 only: tokens signed with another algorithm, or with `alg: none`, are refused. */
export function createTokens(secret: string, expiry_seconds: number): Tokens {
  const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: expiry_seconds * 1000 });
  const verify = createVerifier({ key: secret, algorithms: ['HS256'], requiredClaims: ['sub', 'exp', 'iat'], cache: 10_000 });
  return {
    issue(accountId) {
      const token = sign({ sub: accountId });
      const exp = Math.floor(Date.now() / 1000) + expiry_seconds;
      return { token, expires_in: expiry_seconds, expires_at: new Date(exp * 1000).toISOString().replace('.000Z', 'Z'), token_type: 'Bearer' };
    },
    verify(token) {
      let claims: { sub?: unknown };
      try {
        claims = verify(token) as { sub?: unknown };
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'FAST_JWT_EXPIRED') throw new ApiError('INVALID_TOKEN', 'JWT token has expired.');
        throw new ApiError('INVALID_TOKEN', 'JWT token is invalid.');
      }
      if (typeof claims.sub !== 'string' || !UUID.test(claims.sub)) throw new ApiError('INVALID_TOKEN', 'JWT token has an invalid subject.');
      return claims.sub;
    },
  };
}

const bearer = (h: Record<string, string>): string | null => {
  const m = /^bearer\s+(.+)$/i.exec(h['authorization'] ?? '');
  return m ? m[1].trim() : null;
};

function active(account: Account): Account {
  if (account.status !== 'active') throw new ApiError('ACCOUNT_SUSPENDED', `Account is ${account.status}.`, { account_id: account.id });
  return account;
}

async function fromJwt(identity: IdentityService, tokens: Tokens, token: string): Promise<Principal> {
  const account = await identity.accountById(tokens.verify(token));
  if (!account) throw new ApiError('INVALID_API_KEY', 'The account of this token no longer exists.');
  return { account: active(account), agent: null, via: 'jwt' };
}

async function fromKey(identity: IdentityService, key: string): Promise<Principal> {
  const p = await identity.resolveKey(key);
  if (!p) throw new ApiError('INVALID_API_KEY', 'Invalid API key.');
  active(p.account);
  if (p.agent?.status === 'archived') throw new ApiError('INVALID_API_KEY', 'Agent is archived.');
  if (p.agent && p.agent.mode !== 'sandbox') throw new ApiError('AGENT_SUSPENDED', `Agent is ${p.agent.mode}.`, { agent_id: p.agent.id });
  return p;
}

/** Narrows an account caller to one of its agents through X-Agent-Id. */
async function scopeToAgent(identity: IdentityService, p: Principal, headerValue: string | undefined): Promise<Principal> {
  if (p.agent || headerValue === undefined || headerValue === '') return p;
  const id = headerValue.trim();
  if (!UUID.test(id)) throw new ApiError('VALIDATION_ERROR', 'X-Agent-Id must be a UUID.', { field: 'X-Agent-Id', location: 'header' });
  return { ...p, agent: await identity.ownedAgent(p.account, id) };
}

/**
 * Who is calling, by the route's auth mode. On JWT-only routes an X-API-Key sent beside the token is
 * ignored (the official client always sends both); elsewhere the key wins over the token.
 */
export async function authenticate(route: Route, headers: Record<string, string>, identity: IdentityService, tokens: Tokens): Promise<Principal | null> {
  if (route.auth === 'public') return null;
  const token = bearer(headers);
  const key = headers['x-api-key']?.trim() || null;
  let p: Principal | null = null;
  if (route.auth === 'jwt') {
    if (!token) throw new ApiError('INVALID_TOKEN', 'This endpoint needs a JWT: send Authorization: Bearer <token> from POST /api/v1/auth/login.');
    p = await fromJwt(identity, tokens, token);
  } else if (key) p = await fromKey(identity, key);
  else if (token) p = await fromJwt(identity, tokens, token);
  else if (route.auth === 'any') throw new ApiError('INVALID_API_KEY', 'Authentication credentials are required (X-API-Key or Authorization: Bearer).');
  if (!p) return null;
  p = await scopeToAgent(identity, p, headers['x-agent-id']);
  assertAction(p, route.group);
  return p;
}

/** An agent key whose `authorized_actions` leave out a route group may not use that group. */
export function assertAction(p: Principal, group: ActionGroup | null): void {
  const allowed = p.agent?.authorized_actions;
  if (p.via === 'agent_key' && allowed && group && !allowed.includes(group)) {
    throw new ApiError('PERMISSION_DENIED', `This agent key is not authorized for '${group}' actions.`, { action: group });
  }
}

/** WebSocket callers authenticate with an API key (query or first frame), optionally scoped to one agent. */
export async function authenticateKey(identity: IdentityService, key: string, agentId: string | null): Promise<Principal> {
  return scopeToAgent(identity, await fromKey(identity, key.trim()), agentId ?? undefined);
}
