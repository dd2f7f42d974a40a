import t from 'tap';
import { createSigner } from 'fast-jwt';
import { backends, registerAndLogin, startTestServer } from '../helpers/server.js';

for (const backend of backends()) {
  t.test(`auth on ${backend.name}`, async (t) => {
    const s = await startTestServer(backend);
    t.teardown(() => s.stop());

    t.test('register returns account keys, secret and a default agent with its balance', async (t) => {
      const r = await s.call('POST', '/api/v1/auth/register', { body: { display_name: 'Alpha', starting_balance: '5000.00' } });
      t.equal(r.status, 201);
      t.match(r.body.api_key, /^ak_live_[A-Za-z0-9_-]{64}$/);
      t.match(r.body.api_secret, /^sk_live_[A-Za-z0-9_-]{64}$/);
      t.match(r.body.agent_api_key, /^ak_live_/);
      t.equal(r.body.starting_balance, '5000.00000000');
      t.equal(r.body.display_name, 'Alpha');
      const rows = await s.engine.db.query<{ available: string; locked: string }>(
        `SELECT available, locked FROM balances WHERE agent_id = $1 AND asset = 'USDT'`, [r.body.agent_id]);
      t.same(rows, [{ available: '5000.00000000', locked: '0.00000000' }]);
      const stored = await s.engine.db.query<Record<string, string>>(`SELECT * FROM accounts WHERE id = $1`, [r.body.account_id]);
      const row = JSON.stringify(stored[0]);
      t.notOk(row.includes(r.body.api_key), 'account key not stored in clear');
      t.notOk(row.includes(r.body.api_secret), 'secret not stored in clear');
      const agentRow = JSON.stringify((await s.engine.db.query(`SELECT * FROM agents WHERE id = $1`, [r.body.agent_id]))[0]);
      t.notOk(agentRow.includes(r.body.agent_api_key), 'agent key not stored in clear');
    });

    t.test('an empty display name becomes "Agent"; defaults to 10000', async (t) => {
      const r = await s.call('POST', '/api/v1/auth/register', { body: {} });
      t.equal(r.status, 201);
      t.equal(r.body.display_name, 'Agent');
      t.equal(r.body.starting_balance, '10000.00000000');
    });

    t.test('register rejects bad input with 422 naming the field', async (t) => {
      for (const [body, field] of [
        [{ starting_balance: '-5' }, 'starting_balance'],
        [{ starting_balance: '0' }, 'starting_balance'],
        [{ starting_balance: '1e5' }, 'starting_balance'],
        [{ starting_balance: '1.123456789' }, 'starting_balance'],
        [{ email: 'not-an-email' }, 'email'],
        [{ password: 'short' }, 'password'],
        [{ display_name: 'x'.repeat(101) }, 'display_name'],
      ] as const) {
        const r = await s.call('POST', '/api/v1/auth/register', { body });
        t.equal(r.status, 422, JSON.stringify(body));
        t.equal(r.body.error.code, 'VALIDATION_ERROR');
        t.equal(r.body.error.details.field, field);
      }
      const broken = await s.call('POST', '/api/v1/auth/register', { raw: '{"display_name":', headers: { 'content-type': 'application/json' } });
      t.equal(broken.status, 422);
      t.equal(broken.body.error.details.field, 'body');
    });

    t.test('duplicate email is 409 DUPLICATE_ACCOUNT and creates nothing', async (t) => {
      const before = await s.engine.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM accounts`);
      const a = await s.call('POST', '/api/v1/auth/register', { body: { email: 'dup@example.com', password: 'password1' } });
      t.equal(a.status, 201);
      const b = await s.call('POST', '/api/v1/auth/register', { body: { email: 'DUP@example.com'.toLowerCase(), password: 'password1' } });
      t.equal(b.status, 409);
      t.equal(b.body.error.code, 'DUPLICATE_ACCOUNT');
      const after = await s.engine.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM accounts`);
      t.equal(after[0].n, before[0].n + 1);
    });

    t.test('login: JWT with numeric expires_in; wrong secret 401; agent key 404; bad format 401', async (t) => {
      const reg = (await s.call('POST', '/api/v1/auth/register', { body: { display_name: 'L' } })).body;
      const ok = await s.call('POST', '/api/v1/auth/login', { body: { api_key: reg.api_key, api_secret: reg.api_secret } });
      t.equal(ok.status, 200);
      t.equal(typeof ok.body.expires_in, 'number');
      t.equal(ok.body.expires_in, 3600);
      t.equal(ok.body.token_type, 'Bearer');
      t.ok(Date.parse(ok.body.expires_at) > Date.now() + 3500_000);
      const bad = await s.call('POST', '/api/v1/auth/login', { body: { api_key: reg.api_key, api_secret: 'sk_live_wrong' } });
      t.equal(bad.status, 401);
      t.equal(bad.body.error.code, 'INVALID_API_KEY');
      const agent = await s.call('POST', '/api/v1/auth/login', { body: { api_key: reg.agent_api_key, api_secret: 'anything' } });
      t.equal(agent.status, 404);
      t.equal(agent.body.error.code, 'ACCOUNT_NOT_FOUND');
      const format = await s.call('POST', '/api/v1/auth/login', { body: { api_key: 'nope', api_secret: 'x' } });
      t.equal(format.status, 401);
      t.equal(format.body.error.code, 'INVALID_API_KEY');
      const empty = await s.call('POST', '/api/v1/auth/login', { body: { api_key: '', api_secret: '' } });
      t.equal(empty.status, 422);
    });

    t.test('user-login with email and password', async (t) => {
      await s.call('POST', '/api/v1/auth/register', { body: { email: 'u@example.com', password: 'hunter2hunter2' } });
      const ok = await s.call('POST', '/api/v1/auth/user-login', { body: { email: 'u@example.com', password: 'hunter2hunter2' } });
      t.equal(ok.status, 200);
      t.ok(ok.body.token);
      const bad = await s.call('POST', '/api/v1/auth/user-login', { body: { email: 'u@example.com', password: 'wrongpassword' } });
      t.equal(bad.status, 401);
      t.equal(bad.body.error.code, 'INVALID_API_KEY');
      const none = await s.call('POST', '/api/v1/auth/user-login', { body: { email: 'nobody@example.com', password: 'wrongpassword' } });
      t.equal(none.status, 401);
    });

    t.test('JWT checks: missing, expired, wrong key, alg none, other algorithm, bad subject', async (t) => {
      const { reg, jwt } = await registerAndLogin(s);
      const path = '/api/v1/agents';
      t.equal((await s.call('GET', path, { headers: jwt })).status, 200);
      const none = await s.call('GET', path);
      t.equal(none.status, 401);
      t.equal(none.body.error.code, 'INVALID_TOKEN');
      const secret = s.engine.secrets.jwtSecret;
      const now = Math.floor(Date.now() / 1000);
      const expired = createSigner({ key: secret, algorithm: 'HS256' })({ sub: reg.account_id, iat: now - 7200, exp: now - 3600 });
      const wrongKey = createSigner({ key: 'another-secret-entirely', algorithm: 'HS256', expiresIn: 60_000 })({ sub: reg.account_id });
      const hs512 = createSigner({ key: secret, algorithm: 'HS512', expiresIn: 60_000 })({ sub: reg.account_id });
      const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const algNone = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: reg.account_id, iat: now, exp: now + 600 })}.`;
      const badSub = createSigner({ key: secret, algorithm: 'HS256', expiresIn: 60_000 })({ sub: 'not-a-uuid' });
      for (const [name, token] of [['expired', expired], ['wrong key', wrongKey], ['HS512', hs512], ['alg none', algNone], ['bad sub', badSub], ['garbage', 'abc.def.ghi']]) {
        const r = await s.call('GET', path, { headers: { authorization: `Bearer ${token}` } });
        t.equal(r.status, 401, name);
        t.equal(r.body.error.code, 'INVALID_TOKEN', name);
      }
      const exp = await s.call('GET', path, { headers: { authorization: `Bearer ${expired}` } });
      t.match(exp.body.error.message, /expired/);
    });

    t.test('JWT-only routes ignore an X-API-Key sent beside the token, and refuse a key alone', async (t) => {
      const { jwt, agentKey, accountKey } = await registerAndLogin(s);
      const both = await s.call('GET', '/api/v1/agents', { headers: { ...jwt, 'x-api-key': 'ak_live_garbage' } });
      t.equal(both.status, 200);
      t.equal((await s.call('GET', '/api/v1/agents', { headers: agentKey })).status, 401);
      t.equal((await s.call('GET', '/api/v1/agents', { headers: accountKey })).status, 401);
    });

    t.test('account/info works with account key, agent key and JWT (as the official client calls it)', async (t) => {
      const { reg, jwt, agentKey, accountKey } = await registerAndLogin(s, { display_name: 'Info', starting_balance: '7500' });
      const byAgent = await s.call('GET', '/api/v1/account/info', { headers: agentKey });
      t.equal(byAgent.status, 200);
      t.equal(byAgent.body.account_id, reg.account_id);
      t.equal(byAgent.body.agent_id, reg.agent_id);
      t.equal(byAgent.body.display_name, "Info's Agent");
      t.equal(byAgent.body.starting_balance, '7500.00000000');
      t.same(
        [byAgent.body.risk_profile.max_position_size_pct, byAgent.body.risk_profile.daily_loss_limit_pct, byAgent.body.risk_profile.max_open_orders],
        [25, 20, 50],
      );
      t.match(byAgent.body.current_session.session_id, /^[0-9a-f-]{36}$/);
      // The SDK sends both headers; the key wins.
      const sdk = await s.call('GET', '/api/v1/account/info', { headers: { ...accountKey, ...jwt } });
      t.equal(sdk.status, 200);
      t.equal(sdk.body.agent_id, null);
      t.equal(sdk.body.display_name, 'Info');
      t.equal(sdk.body.status, 'active');
      const scoped = await s.call('GET', '/api/v1/account/info', { headers: { ...jwt, 'x-agent-id': reg.agent_id } });
      t.equal(scoped.body.agent_id, reg.agent_id);
      t.equal((await s.call('GET', '/api/v1/account/info')).status, 401);
      t.equal((await s.call('GET', '/api/v1/account/info', { headers: { 'x-api-key': 'ak_live_' + 'x'.repeat(64) } })).status, 401);
    });

    t.test('X-Agent-Id of another account is 403, malformed 422, unknown 404', async (t) => {
      const a = await registerAndLogin(s);
      const b = await registerAndLogin(s);
      const other = await s.call('GET', '/api/v1/account/info', { headers: { ...a.jwt, 'x-agent-id': b.reg.agent_id } });
      t.equal(other.status, 403);
      t.equal(other.body.error.code, 'PERMISSION_DENIED');
      t.notOk(JSON.stringify(other.body).includes(b.reg.agent_api_key));
      t.equal((await s.call('GET', '/api/v1/account/info', { headers: { ...a.jwt, 'x-agent-id': 'zzz' } })).status, 422);
      const unknown = await s.call('GET', '/api/v1/account/info', { headers: { ...a.jwt, 'x-agent-id': '00000000-0000-4000-8000-000000000000' } });
      t.equal(unknown.status, 404);
    });
  });
}
