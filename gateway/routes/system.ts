import { Reply, route } from '../router.js';
import { openApiDocument } from '../openapi.js';
import { apiPageHtml } from '../docs.js';
import { routeTable } from './index.js';

const started = Date.now();

async function check(fn: () => Promise<number>) {
  try {
    return { connected: true, latency_ms: await fn() };
  } catch (err) {
    return { connected: false, error: (err as Error).message };
  }
}

export const systemRoutes = [
  route({
    method: 'GET', path: '/health', auth: 'public', group: null, tag: 'system',
    summary: 'Storage and bus status; 503 with status "degraded" when either is unreachable.',
    async handler({ engine }) {
      const [db, bus] = await Promise.all([check(() => engine.db.ping()), check(() => engine.bus.ping())]);
      const ok = db.connected && bus.connected;
      const body = {
        status: ok ? 'ok' : 'degraded',
        storage: { kind: engine.db.kind, ...db },
        bus: { kind: engine.bus.kind, ...bus },
        journal: engine.journal.stats,
        uptime_seconds: Math.round((Date.now() - started) / 1000),
      };
      return new Reply(ok ? 200 : 503, body);
    },
  }),
  route({
    method: 'GET', path: '/openapi.json', auth: 'public', group: null, tag: 'system',
    summary: 'OpenAPI 3.1 document generated from the route table.',
    handler: () => openApiDocument(routeTable()),
  }),
  route({
    method: 'GET', path: '/docs', auth: 'public', group: null, tag: 'system', contentType: 'text/html; charset=utf-8',
    summary: 'Human-readable API page.',
    handler: () => new Reply(200, apiPageHtml(), 'text/html; charset=utf-8'),
  }),
];
