import type { TSchema } from '@sinclair/typebox';
import { ERRORS } from '../schemas/errors.js';
import { ErrorEnvelope } from '../schemas/common.js';
import type { Route } from './router.js';

const plain = (s: TSchema): unknown => JSON.parse(JSON.stringify(s));

function parameters(r: Route) {
  const out: unknown[] = [];
  const add = (schema: TSchema | undefined, where: 'path' | 'query') => {
    const props = (schema?.properties ?? {}) as Record<string, TSchema>;
    const required = new Set<string>((schema?.required as string[]) ?? []);
    for (const [name, s] of Object.entries(props)) out.push({ name, in: where, required: where === 'path' || required.has(name), schema: plain(s) });
  };
  add(r.params, 'path');
  add(r.query, 'query');
  return out;
}

function security(r: Route) {
  if (r.auth === 'public') return [];
  if (r.auth === 'jwt') return [{ bearer: [] }];
  return r.auth === 'optional' ? [{}, { apiKey: [] }, { bearer: [] }] : [{ apiKey: [] }, { bearer: [] }];
}

/** OpenAPI 3.1 document generated from the route table, so it cannot drift from what is served. */
export function openApiDocument(routes: Route[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const status = String(r.status ?? 200);
    const ok = r.status === 204
      ? { description: 'No content' }
      : { description: 'Success', content: { [r.contentType ?? 'application/json']: { schema: r.response ? plain(r.response) : {} } } };
    (paths[r.path] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method.toLowerCase()}${r.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      security: security(r),
      parameters: parameters(r),
      ...(r.body && { requestBody: { required: true, content: { 'application/json': { schema: plain(r.body) } } } }),
      responses: { [status]: ok, default: { description: 'Error (see x-error-codes)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Agent Exchange API', version: '1.0.0', description: 'Exchange simulator for AI trading agents (TradeReady / AgentExchange compatible).' },
    servers: [{ url: '/' }],
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      },
      schemas: { Error: plain(ErrorEnvelope) },
    },
    'x-error-codes': Object.fromEntries(Object.entries(ERRORS).map(([code, e]) => [code, { status: e.status, ws_close: e.wsClose, message: e.message }])),
  };
}
