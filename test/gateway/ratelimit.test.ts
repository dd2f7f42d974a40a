import t from 'tap';
import { loadConfig } from '../../engine/config.js';
import { createMemoryBus } from '../../engine/bus.js';
import { openEmbedded } from '../../engine/store/db.js';
import { backends, registerAndLogin, startTestServer, type Backend } from '../helpers/server.js';

/** Windows are fixed 60 s buckets: start each case well inside one so a boundary cannot reset the count mid-test. */
async function freshWindow(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 8_000) await new Promise((r) => setTimeout(r, left + 50));
}

const rate = (r: Partial<ReturnType<typeof loadConfig>['rate']>) => ({ rate: { ...loadConfig({}).rate, auth_per_ip_per_minute: 0, ...r } });

for (const backend of backends()) {
  t.test(`rate limits on ${backend.name}`, async (t) => {
    t.test('per agent: the limit-th request passes, the next is 429 with Retry-After; headers count down', async (t) => {
      const s = await startTestServer(backend, rate({ agent_per_minute: 5 }));
      t.teardown(() => s.stop());
      const { agentKey } = await registerAndLogin(s);
      await freshWindow();
      const remaining: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await s.call('GET', '/api/v1/account/balance', { headers: agentKey });
        t.equal(r.status, 200);
        t.equal(r.headers.get('x-ratelimit-limit'), '5');
        remaining.push(r.headers.get('x-ratelimit-remaining')!);
      }
      t.same(remaining, ['4', '3', '2', '1', '0']);
      const over = await s.call('GET', '/api/v1/account/balance', { headers: agentKey });
      t.equal(over.status, 429);
      t.equal(over.body.error.code, 'RATE_LIMIT_EXCEEDED');
      t.match(over.body.error.details, { limit: 5, window_seconds: 60, scope: 'agent' });
      const retry = Number(over.headers.get('retry-after'));
      t.ok(retry >= 1 && retry <= 60, `Retry-After ${retry} s lies within the window`);
      t.equal(Number(over.headers.get('x-ratelimit-reset')) % 60, 0, 'reset is the end of the fixed window');
      t.equal(over.headers.get('x-ratelimit-remaining'), '0');
    });

    t.test('per account: two agents of one account share its budget; another account is unaffected', async (t) => {
      const s = await startTestServer(backend, rate({ agent_per_minute: 100, account_per_minute: 6 }));
      t.teardown(() => s.stop());
      const a = await registerAndLogin(s);
      const other = await registerAndLogin(s);
      const second = await s.call('POST', '/api/v1/agents', { headers: a.jwt, body: { name: 'Second' } });
      t.equal(second.status, 201, JSON.stringify(second.body));
      await freshWindow();
      const key2 = { 'x-api-key': second.body.api_key as string };
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await s.call('GET', '/api/v1/account/info', { headers: a.agentKey })).status);
      for (let i = 0; i < 4; i++) statuses.push((await s.call('GET', '/api/v1/account/info', { headers: key2 })).status);
      // The JWT call creating the agent may fall in this window or the previous one: count from the answers.
      t.ok(statuses.filter((x) => x === 429).length >= 2, `statuses ${statuses}`);
      t.same(statuses.slice(0, 4), [200, 200, 200, 200]);
      t.equal(statuses[statuses.length - 1], 429);
      const o = await s.call('GET', '/api/v1/account/info', { headers: other.agentKey });
      t.equal(o.status, 200, 'another account has its own budget');
    });

    t.test('auth per IP: logins past the limit are 429, and so are repeated bad keys anywhere', async (t) => {
      const s = await startTestServer(backend, rate({ auth_per_ip_per_minute: 4 }));
      t.teardown(() => s.stop());
      await freshWindow();
      const reg = await s.call('POST', '/api/v1/auth/register', { body: { display_name: 'Limited' } });
      t.equal(reg.status, 201);
      const login = () => s.call('POST', '/api/v1/auth/login', { body: { api_key: reg.body.api_key, api_secret: reg.body.api_secret } });
      t.same([(await login()).status, (await login()).status, (await login()).status], [200, 200, 200], 'register + 3 logins = 4');
      const over = await login();
      t.equal(over.status, 429);
      t.equal(over.body.error.code, 'RATE_LIMIT_EXCEEDED');
      t.match(over.body.error.details, { scope: 'auth' });
      const guess = await s.call('GET', '/api/v1/account/info', { headers: { 'x-api-key': 'ak_live_guess' } });
      t.equal(guess.status, 429, 'a wrong key from the same address is refused before it is even looked at twice');
      const good = await s.call('GET', '/api/v1/account/info', { headers: { 'x-api-key': reg.body.api_key } });
      t.equal(good.status, 200, 'valid credentials are not blocked by the IP budget');
    });

    t.test('public market data per IP', async (t) => {
      const s = await startTestServer(backend, rate({ public_per_ip_per_minute: 3 }));
      t.teardown(() => s.stop());
      await freshWindow();
      const codes = [];
      for (let i = 0; i < 4; i++) codes.push((await s.call('GET', '/api/v1/market/pairs')).status);
      t.same(codes, [200, 200, 200, 429]);
      t.equal((await s.call('GET', '/health')).status === 429, false, 'system routes are never limited');
    });
  });
}

t.test('a failing counter store lets requests through (fail open) without limit headers', async (t) => {
  const bus = createMemoryBus();
  const broken: Backend = {
    name: 'embedded',
    db: async () => ({ db: await openEmbedded(null), drop: async () => {} }),
    bus: async () => ({ ...bus, incrWindow: async () => Promise.reject(new Error('redis down')) }),
  };
  const s = await startTestServer(broken, rate({ agent_per_minute: 1 }));
  t.teardown(() => s.stop());
  const { agentKey } = await registerAndLogin(s);
  for (let i = 0; i < 3; i++) {
    const r = await s.call('GET', '/api/v1/account/balance', { headers: agentKey });
    t.equal(r.status, 200);
    t.equal(r.headers.get('x-ratelimit-limit'), null);
  }
});
