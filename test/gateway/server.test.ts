import t from 'tap';
import { connect } from 'node:net';
import { backends, registerAndLogin, startTestServer, type TestServer } from '../helpers/server.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Opens a raw socket, sends a request head promising `declared` body bytes plus a few of them, then drops it. */
function abortMidBody(port: number, path: string, declared: number, sent: string, headers = ''): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => {
      sock.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${headers}Content-Length: ${declared}\r\n\r\n${sent}`);
      setTimeout(() => {
        sock.destroy();
        resolve();
      }, 20);
    });
    sock.on('error', reject);
  });
}

const accounts = async (s: TestServer) => (await s.engine.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM accounts`))[0].n;

type Asserts = Record<'same' | 'equal' | 'ok', (...args: any[]) => boolean>;

function expectEnvelope(t: Asserts, body: any, code: string) {
  t.same(Object.keys(body), ['error'], `${code}: only an error key`);
  t.same(Object.keys(body.error).sort(), ['code', 'details', 'message'], `${code}: code, message, details`);
  t.equal(body.error.code, code);
  t.equal(typeof body.error.message, 'string');
  t.ok(body.error.message.length > 0);
}

for (const backend of backends()) {
  t.test(`server on ${backend.name}`, async (t) => {
    const s = await startTestServer(backend);
    t.teardown(() => s.stop());

    t.test('unknown route: 404 NOT_FOUND in the error envelope', async (t) => {
      for (const [method, path] of [['GET', '/nope'], ['POST', '/api/v1/nothing'], ['GET', '/api/v1/agents/a/b/c/d/e'], ['DELETE', '/']]) {
        const r = await s.call(method, path);
        t.equal(r.status, 404, `${method} ${path}`);
        t.match(r.headers.get('content-type'), /^application\/json/);
        expectEnvelope(t, r.body, 'NOT_FOUND');
        t.same(r.body.error.details, { path: path });
      }
    });

    t.test('wrong method: 405 with an Allow header listing the route\'s methods', async (t) => {
      // Expected methods come from the route table, for every path it serves.
      const byPath = new Map<string, Set<string>>();
      for (const r of s.server.routes) (byPath.get(r.path) ?? byPath.set(r.path, new Set()).get(r.path)!).add(r.method);
      const cases: Array<[string, string, string]> = [
        ['DELETE', '/health', '/health'],
        ['POST', '/openapi.json', '/openapi.json'],
        ['PATCH', '/api/v1/agents', '/api/v1/agents'],
        ['GET', '/api/v1/auth/login', '/api/v1/auth/login'],
        ['PATCH', '/api/v1/agents/00000000-0000-4000-8000-000000000000', '/api/v1/agents/{agent_id}'],
        ['DELETE', '/api/v1/agents/00000000-0000-4000-8000-000000000000/api-key', '/api/v1/agents/{agent_id}/api-key'],
      ];
      for (const [method, path, pattern] of cases) {
        const r = await s.call(method, path);
        t.equal(r.status, 405, `${method} ${path}`);
        expectEnvelope(t, r.body, 'METHOD_NOT_ALLOWED');
        const allow = (r.headers.get('allow') ?? '').split(',').map((m) => m.trim()).filter(Boolean);
        t.same(allow.sort(), [...byPath.get(pattern)!].sort(), `${method} ${path} allow header`);
        t.same([...r.body.error.details.allowed].sort(), [...byPath.get(pattern)!].sort());
      }
    });

    t.test('/health: 200 with storage and bus kinds, both connected', async (t) => {
      const r = await s.call('GET', '/health');
      t.equal(r.status, 200);
      t.equal(r.body.status, 'ok');
      t.equal(r.body.storage.kind, backend.name === 'postgres' ? 'postgres' : 'embedded');
      t.equal(r.body.bus.kind, backend.name === 'postgres' && process.env.REDIS_URL ? 'redis' : 'memory');
      t.equal(r.body.storage.connected, true);
      t.equal(r.body.bus.connected, true);
      t.equal(typeof r.body.storage.latency_ms, 'number');
      t.equal(typeof r.body.bus.latency_ms, 'number');
      t.equal(typeof r.body.uptime_seconds, 'number');
      t.match(r.body.journal, { commits: Number, events: Number, failures: Number });
    });

    t.test('/openapi.json: OpenAPI 3.1 with an operation for every route of the table', async (t) => {
      const r = await s.call('GET', '/openapi.json');
      t.equal(r.status, 200);
      const doc = r.body;
      t.equal(doc.openapi, '3.1.0');
      t.ok(doc.info?.title);
      t.ok(s.server.routes.length > 20, 'the table is not empty');
      for (const route of s.server.routes) {
        const name = `${route.method} ${route.path}`;
        const op = doc.paths?.[route.path]?.[route.method.toLowerCase()];
        t.ok(op, `${name} is documented`);
        if (!op) continue;
        t.equal(op.summary, route.summary, `${name} summary`);
        t.ok(op.responses[String(route.status ?? 200)], `${name} documents its success status`);
        const pathParams = op.parameters.filter((p: { in: string }) => p.in === 'path').map((p: { name: string }) => p.name);
        t.same(pathParams, route.paramNames, `${name} path parameters`);
        t.equal(Boolean(op.requestBody), Boolean(route.body), `${name} request body`);
        t.same(op.security.length === 0, route.auth === 'public', `${name} security`);
      }
      const documented = Object.values(doc.paths as Record<string, object>).reduce((n, ops) => n + Object.keys(ops).length, 0);
      t.equal(documented, s.server.routes.length, 'no operation beyond the route table');
      t.ok(doc.components.schemas.Error, 'the error envelope schema');
      t.same(Object.keys(doc['x-error-codes']).includes('PAYLOAD_TOO_LARGE'), true);
    });

    t.test('/docs: an HTML page listing every route', async (t) => {
      const r = await s.call('GET', '/docs');
      t.equal(r.status, 200);
      t.match(r.headers.get('content-type'), /^text\/html/);
      t.match(r.body, /^<!doctype html>/i);
      for (const route of s.server.routes) {
        t.ok(r.body.includes(`<td><code>${route.method}</code></td><td><code>${route.path}</code></td>`), `${route.method} ${route.path} listed`);
      }
    });

    t.test('every response carries a fresh X-Request-Id and CORS allow-origin', async (t) => {
      const { jwt, reg } = await registerAndLogin(s);
      const responses = [
        await s.call('GET', '/health'),
        await s.call('GET', '/nope'),
        await s.call('DELETE', '/health'),
        await s.call('GET', '/api/v1/agents'),
        await s.call('GET', `/api/v1/agents/${reg.agent_id}/skill.md`, { headers: jwt }),
        await s.call('POST', '/api/v1/auth/register', { raw: '{', headers: { 'content-type': 'application/json' } }),
      ];
      const ids = responses.map((r) => r.headers.get('x-request-id'));
      for (const [i, id] of ids.entries()) {
        t.match(id, UUID_RE, `response ${i} (${responses[i].status}) has a request id`);
        t.equal(responses[i].headers.get('access-control-allow-origin'), '*');
      }
      t.equal(new Set(ids).size, ids.length, 'request ids are unique');
    });

    t.test('CORS preflight: OPTIONS answers 204 with the allowed methods and headers', async (t) => {
      for (const path of ['/api/v1/agents', '/api/v1/account/info', '/anything']) {
        const r = await s.call('OPTIONS', path, {
          headers: { origin: 'http://example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-api-key' },
        });
        t.equal(r.status, 204, path);
        t.equal(r.body, '');
        t.equal(r.headers.get('access-control-allow-origin'), '*');
        const methods = (r.headers.get('access-control-allow-methods') ?? '').split(',').map((m) => m.trim());
        for (const m of ['GET', 'POST', 'PUT', 'DELETE']) t.ok(methods.includes(m), `${path} allows ${m}`);
        const allowed = (r.headers.get('access-control-allow-headers') ?? '').toLowerCase();
        for (const h of ['content-type', 'authorization', 'x-api-key', 'x-agent-id']) t.ok(allowed.includes(h), `${path} allows ${h}`);
      }
    });

    t.test('a body over the limit is 413 PAYLOAD_TOO_LARGE and the server keeps serving', async (t) => {
      const small = await startTestServer(backend, { body_bytes_max: 1024 });
      t.teardown(() => small.stop());
      const before = await accounts(small);
      const fits = await small.call('POST', '/api/v1/auth/register', { body: { display_name: 'x'.repeat(90) } });
      t.equal(fits.status, 201, 'a body under the limit is served');
      for (const size of [1025, 5000, 60_000]) {
        const r = await small.call('POST', '/api/v1/auth/register', { raw: JSON.stringify({ display_name: 'x'.repeat(size) }), headers: { 'content-type': 'application/json' } });
        t.equal(r.status, 413, `${size} bytes`);
        expectEnvelope(t, r.body, 'PAYLOAD_TOO_LARGE');
        t.equal(r.body.error.details.limit_bytes, 1024);
        t.match(r.headers.get('x-request-id'), UUID_RE);
      }
      // on a route that needs a JWT too: the size check does not wait for authentication
      const big = await small.call('POST', '/api/v1/agents', { raw: 'y'.repeat(4096), headers: { 'content-type': 'application/json' } });
      t.equal(big.status, 413);
      t.equal(await accounts(small), before + 1, 'only the request that fit created an account');
      const health = await small.call('GET', '/health');
      t.equal(health.status, 200, 'still serving after the rejections');
      t.equal((await small.call('POST', '/api/v1/auth/register', { body: {} })).status, 201, 'and still accepts bodies');
    });

    t.test('clients that abort mid-request do not crash the server or stall its shutdown', async (t) => {
      const own = await startTestServer(backend);
      let stopped = false;
      t.teardown(() => (stopped ? undefined : own.stop()));
      const { jwt } = await registerAndLogin(own);
      const before = await accounts(own);
      for (let i = 0; i < 10; i++) {
        await abortMidBody(own.server.port, '/api/v1/auth/register', 100_000, '{"display_name":"abo');
        await abortMidBody(own.server.port, '/api/v1/agents', 100_000, '{"display_name":', `Authorization: ${jwt.authorization}\r\n`);
      }
      await abortMidBody(own.server.port, '/api/v1/auth/register', 100_000, ''); // head only, no body bytes
      const health = await own.call('GET', '/health');
      t.equal(health.status, 200, 'still answering');
      t.equal(await accounts(own), before, 'no half-received request created anything');
      t.equal((await own.call('GET', '/api/v1/agents', { headers: jwt })).body.total, 1, 'no agent from the aborted creates');
      t.equal((await own.call('POST', '/api/v1/auth/register', { body: { display_name: 'After' } })).status, 201, 'full requests still served');
      const t0 = Date.now();
      await own.stop();
      stopped = true;
      t.ok(Date.now() - t0 < 5000, `aborted requests are not counted as in flight at shutdown (${Date.now() - t0} ms)`);
    });
  });
}
