import { Reply, route } from '../router.js';
import { openApiDocument } from '../openapi.js';
import { apiPageHtml } from '../docs.js';
import { routeTable } from './index.js';

const started = Date.now();
/** A dependency that has not answered a ping by then counts as down (a hanging one must not hang /health). */
const HEALTH_PING_TIMEOUT_MS = 2000;

async function check(fn: () => Promise<number>) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${HEALTH_PING_TIMEOUT_MS} ms`)), HEALTH_PING_TIMEOUT_MS);
  });
  try {
    return { connected: true, latency_ms: await Promise.race([fn(), timeout]) };
  } catch (err) {
    return { connected: false, error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

export const systemRoutes = [
  route({
    method: 'GET', path: '/health', auth: 'public', group: null, tag: 'system',
    summary:
      'Storage and bus status, journal counters and process memory. Status "degraded" names what is down in `down`. ' +
      'HTTP 503 when storage is down (orders are refused until it is back; reads answer from memory); 200 when only ' +
      'the bus is down (the exchange still works: rate limits are not enforced and other processes miss fan-out).',
    async handler({ engine }) {
      const [db, bus] = await Promise.all([check(() => engine.db.ping()), check(() => engine.bus.ping())]);
      const down = [...(db.connected ? [] : ['storage']), ...(bus.connected ? [] : ['bus'])];
      const mem = process.memoryUsage();
      const body = {
        status: down.length === 0 ? 'ok' : 'degraded',
        down,
        storage: { kind: engine.db.kind, ...db },
        bus: { kind: engine.bus.kind, ...bus },
        journal: engine.journal.stats,
        memory: { rss_mb: mb(mem.rss), heap_used_mb: mb(mem.heapUsed), heap_total_mb: mb(mem.heapTotal), external_mb: mb(mem.external) },
        uptime_seconds: Math.round((Date.now() - started) / 1000),
      };
      return new Reply(db.connected ? 200 : 503, body);
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
