import t from 'tap';
import { randomBytes } from 'node:crypto';
import { backends, registerAndLogin, startTestServer, type TestServer } from '../helpers/server.js';

const A = '/api/v1/agents';
const INFO = '/api/v1/account/info';
const UNKNOWN = '00000000-0000-4000-8000-000000000000';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const KEY_RE = /^ak_live_[A-Za-z0-9_-]{64}$/;
type H = Record<string, string>;
type Body = Record<string, unknown>;

async function createAgent(s: TestServer, jwt: H, body: Body) {
  const r = await s.call('POST', A, { body, headers: jwt });
  if (r.status !== 201) throw new Error(`create failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as { agent_id: string; api_key: string; display_name: string; starting_balance: string };
}

const key = (k: string): H => ({ 'x-api-key': k });

async function usdt(s: TestServer, agentId: string) {
  return s.engine.db.query<{ available: string; locked: string }>(
    `SELECT available, locked FROM balances WHERE agent_id = $1 AND asset = 'USDT'`, [agentId]);
}

/** Row counts of everything an agent owns (plus the account's agents), to prove a rejected request wrote nothing. */
async function footprint(s: TestServer, accountId: string) {
  const n = async (sql: string) => (await s.engine.db.query<{ n: number }>(sql, [accountId]))[0].n;
  return {
    agents: await n(`SELECT count(*)::int AS n FROM agents WHERE account_id = $1`),
    balances: await n(`SELECT count(*)::int AS n FROM balances b JOIN agents a ON a.id = b.agent_id WHERE a.account_id = $1`),
    sessions: await n(`SELECT count(*)::int AS n FROM trading_sessions WHERE account_id = $1`),
    journal: await n(`SELECT count(*)::int AS n FROM journal j JOIN agents a ON a.id::text = j.stream WHERE a.account_id = $1`),
  };
}

async function agentRows(s: TestServer, agentId: string) {
  const n = async (sql: string) => (await s.engine.db.query<{ n: number }>(sql, [agentId]))[0].n;
  return {
    agents: await n(`SELECT count(*)::int AS n FROM agents WHERE id = $1`),
    balances: await n(`SELECT count(*)::int AS n FROM balances WHERE agent_id = $1`),
    sessions: await n(`SELECT count(*)::int AS n FROM trading_sessions WHERE agent_id = $1`),
    journal: await n(`SELECT count(*)::int AS n FROM journal WHERE stream = $1::text`),
  };
}

const ownerId = () => `owner-${randomBytes(6).toString('hex')}`;

for (const backend of backends()) {
  t.test(`agents on ${backend.name}`, async (t) => {
    const s = await startTestServer(backend);
    t.teardown(() => s.stop());

    t.test('create: 201 with the key shown once, 8-decimal balance, USDT balance row and a session', async (t) => {
      const { jwt, reg } = await registerAndLogin(s);
      const r = await s.call('POST', A, {
        headers: jwt,
        body: {
          display_name: 'RSI Scalper', starting_balance: '5000.00', llm_model: 'claude-sonnet-4-6', framework: 'custom',
          strategy_tags: ['rsi', 'scalping', 'BTCUSDT'], color: '#3B82F6',
          risk_profile: { max_position_size_pct: 20, daily_loss_limit_pct: 10, max_open_orders: 10 },
        },
      });
      t.equal(r.status, 201);
      t.match(r.body.agent_id, UUID_RE);
      t.equal(r.body.id, r.body.agent_id);
      t.match(r.body.api_key, KEY_RE);
      t.equal(r.body.display_name, 'RSI Scalper');
      t.equal(r.body.name, 'RSI Scalper');
      t.equal(r.body.starting_balance, '5000.00000000');
      t.match(r.body.message, /Save your API key/);
      t.same(await usdt(s, r.body.agent_id), [{ available: '5000.00000000', locked: '0.00000000' }]);
      t.same(await agentRows(s, r.body.agent_id), { agents: 1, balances: 1, sessions: 1, journal: 1 });

      const got = await s.call('GET', `${A}/${r.body.agent_id}`, { headers: jwt });
      t.equal(got.status, 200);
      t.match(got.body, {
        id: r.body.agent_id, account_id: reg.account_id, display_name: 'RSI Scalper', starting_balance: '5000.00000000',
        llm_model: 'claude-sonnet-4-6', framework: 'custom', color: '#3B82F6', status: 'active', mode: 'sandbox',
        agent_type: 'trading', avatar_url: null, api_key_preview: r.body.api_key.slice(0, 12) + '...',
        risk_profile: { max_position_size_pct: 20, daily_loss_limit_pct: 10, max_open_orders: 10 },
      });
      t.same(got.body.strategy_tags, ['rsi', 'scalping', 'BTCUSDT']);
      t.notOk(JSON.stringify(got.body).includes(r.body.api_key), 'full key not in AgentResponse');

      const info = await s.call('GET', INFO, { headers: key(r.body.api_key) });
      t.equal(info.status, 200);
      t.equal(info.body.agent_id, r.body.agent_id);
      t.equal(info.body.starting_balance, '5000.00000000');
    });

    t.test('create accepts `name` and `risk_config`; defaults 10000 and a derived colour', async (t) => {
      const { jwt } = await registerAndLogin(s);
      const a = await createAgent(s, jwt, { name: 'Momentum Bot v1', risk_config: { max_open_orders: 7, max_order_size_pct: 30 } });
      t.equal(a.display_name, 'Momentum Bot v1');
      t.equal(a.starting_balance, '10000.00000000');
      t.same(await usdt(s, a.agent_id), [{ available: '10000.00000000', locked: '0.00000000' }]);
      const risk = await s.call('GET', `${A}/${a.agent_id}/risk-profile`, { headers: jwt });
      t.match(risk.body, { max_open_orders: 7, max_order_size_pct: 30, max_position_size_pct: 25, daily_loss_limit_pct: 20 });
      const got = await s.call('GET', `${A}/${a.agent_id}`, { headers: jwt });
      t.match(got.body.color, /^#[0-9a-f]{6}$/);
      t.same(got.body.strategy_tags, []);
      // display_name wins over name when both are sent
      const both = await createAgent(s, jwt, { display_name: 'Display', name: 'Name' });
      t.equal(both.display_name, 'Display');
      t.equal((await createAgent(s, jwt, { display_name: 'Num', starting_balance: 2500.5 })).starting_balance, '2500.50000000');
    });

    t.test('create rejects bad input with 422 naming the field, and writes nothing', async (t) => {
      const { jwt, reg } = await registerAndLogin(s);
      const before = await footprint(s, reg.account_id);
      const cases: Array<[Body, string]> = [
        [{}, 'display_name'],
        [{ display_name: '' }, 'display_name'],
        [{ display_name: '   ' }, 'display_name'],
        [{ display_name: 'x'.repeat(101) }, 'display_name'],
        [{ name: 'x'.repeat(101) }, 'name'],
        [{ display_name: 'A', starting_balance: '-5' }, 'starting_balance'],
        [{ display_name: 'A', starting_balance: -5 }, 'starting_balance'],
        [{ display_name: 'A', starting_balance: '0' }, 'starting_balance'],
        [{ display_name: 'A', starting_balance: 'abc' }, 'starting_balance'],
        [{ display_name: 'A', starting_balance: '1e5' }, 'starting_balance'],
        [{ display_name: 'A', starting_balance: '1.123456789' }, 'starting_balance'],
        [{ display_name: 'A', starting_balance: '1000000001' }, 'starting_balance'],
        [{ display_name: 'A', color: 'blue' }, 'color'],
        [{ display_name: 'A', color: '#12345' }, 'color'],
        [{ display_name: 'A', risk_profile: { max_open_orders: 201 } }, 'risk_profile.max_open_orders'],
        [{ display_name: 'A', risk_profile: { max_open_orders: 0 } }, 'risk_profile.max_open_orders'],
        [{ display_name: 'A', risk_profile: { max_open_orders: 2.5 } }, 'risk_profile.max_open_orders'],
        [{ display_name: 'A', risk_profile: { max_position_size_pct: 101 } }, 'risk_profile.max_position_size_pct'],
        [{ display_name: 'A', risk_profile: { daily_loss_limit_pct: 'lots' } }, 'risk_profile.daily_loss_limit_pct'],
        [{ display_name: 'A', risk_profile: { bogus_limit: 1 } }, 'risk_profile.bogus_limit'],
        [{ display_name: 'A', risk_config: { daily_loss_limit_pct: 0 } }, 'risk_config.daily_loss_limit_pct'],
        [{ display_name: 'A', agent_type: 'bogus' }, 'agent_type'],
        [{ display_name: 'A', strategy_tags: 'rsi' }, 'strategy_tags'],
        [{ display_name: 'A', authorized_actions: ['teleport'] }, 'authorized_actions.0'],
      ];
      for (const [body, field] of cases) {
        const r = await s.call('POST', A, { body, headers: jwt });
        t.equal(r.status, 422, JSON.stringify(body));
        t.equal(r.body.error?.code, 'VALIDATION_ERROR', JSON.stringify(body));
        t.equal(r.body.error?.details?.field, field, JSON.stringify(body));
      }
      t.same(await footprint(s, reg.account_id), before, 'no agent, balance, session or journal row was written');
    });

    t.test('list: include_archived, limit, offset; total is the true count', async (t) => {
      const { jwt, reg } = await registerAndLogin(s);
      const created: Array<Awaited<ReturnType<typeof createAgent>>> = [];
      for (let i = 1; i <= 5; i++) created.push(await createAgent(s, jwt, { display_name: `Bot ${i}` }));
      const all = [reg.agent_id, ...created.map((a) => a.agent_id)]; // the default agent comes first
      const full = await s.call('GET', A, { headers: jwt });
      t.equal(full.status, 200);
      t.equal(full.body.total, 6);
      t.same(full.body.agents.map((a: { id: string }) => a.id), all);
      t.equal(full.body.limit, 100);
      t.equal(full.body.offset, 0);

      const pages: Array<[number, number, number]> = [[0, 2, 2], [2, 2, 2], [4, 2, 2], [5, 2, 1], [6, 2, 0]];
      for (const [offset, limit, len] of pages) {
        const r = await s.call('GET', `${A}?limit=${limit}&offset=${offset}`, { headers: jwt });
        t.equal(r.status, 200);
        t.equal(r.body.total, 6, `total at offset ${offset}`);
        t.equal(r.body.limit, limit);
        t.equal(r.body.offset, offset);
        t.same(r.body.agents.map((a: { id: string }) => a.id), all.slice(offset, offset + len), `page at offset ${offset}`);
      }

      await s.call('POST', `${A}/${created[1].agent_id}/archive`, { headers: jwt });
      const active = await s.call('GET', `${A}?limit=2`, { headers: jwt });
      t.equal(active.body.total, 5);
      t.notOk((await s.call('GET', A, { headers: jwt })).body.agents.some((a: { id: string }) => a.id === created[1].agent_id));
      const withArchived = await s.call('GET', `${A}?include_archived=true`, { headers: jwt });
      t.equal(withArchived.body.total, 6);
      t.equal(withArchived.body.agents.find((a: { id: string }) => a.id === created[1].agent_id)?.status, 'archived');

      for (const q of ['limit=0', 'limit=501', 'offset=-1', 'limit=abc', 'include_archived=maybe']) {
        const r = await s.call('GET', `${A}?${q}`, { headers: jwt });
        t.equal(r.status, 422, q);
        t.equal(r.body.error.details.field, q.split('=')[0], q);
      }
    });

    t.test('overview: equity, PnL and trade count per active agent', async (t) => {
      const { jwt, reg } = await registerAndLogin(s);
      const a = await createAgent(s, jwt, { display_name: 'Overview A', starting_balance: '5000' });
      const gone = await createAgent(s, jwt, { display_name: 'Overview Archived' });
      await s.call('POST', `${A}/${gone.agent_id}/archive`, { headers: jwt });
      const r = await s.call('GET', `${A}/overview`, { headers: jwt });
      t.equal(r.status, 200);
      t.equal(r.body.total, 2);
      t.same(r.body.agents.map((x: { id: string }) => x.id), [reg.agent_id, a.agent_id], 'archived agent excluded');
      t.match(r.body.agents[1], { display_name: 'Overview A', equity: '5000.00000000', total_pnl: '0.00000000', roi_pct: '0.00000000', trade_count: 0 });
      t.match(r.body.agents[0], { equity: '10000.00000000', total_pnl: '0.00000000', trade_count: 0 });

      // equity counts available + locked USDT
      await s.engine.db.query(`UPDATE balances SET available = 4000, locked = 500 WHERE agent_id = $1 AND asset = 'USDT'`, [a.agent_id]);
      const after = (await s.call('GET', `${A}/overview`, { headers: jwt })).body.agents[1];
      t.match(after, { equity: '4500.00000000', total_pnl: '-500.00000000', roi_pct: '-10.00000000' });
    });

    t.test('every /agents/{id} route: unknown 404, another account 403 leaking nothing, malformed 422', async (t) => {
      const me = await registerAndLogin(s);
      const other = await registerAndLogin(s, { display_name: 'Victim' });
      const victim = await createAgent(s, other.jwt, { display_name: 'Secret Strategy', starting_balance: '4321', llm_model: 'victim-model' });
      const routes: Array<[string, string, Body?]> = [
        ['GET', ''], ['PUT', '', { display_name: 'Hijacked' }], ['DELETE', ''], ['POST', '/clone'], ['POST', '/reset'],
        ['POST', '/archive'], ['GET', '/api-key'], ['POST', '/regenerate-key'], ['GET', '/risk-profile'],
        ['PUT', '/risk-profile', { max_position_size_pct: 1, daily_loss_limit_pct: 1, max_open_orders: 1 }], ['GET', '/skill.md'],
      ];
      const secrets = [victim.api_key, victim.api_key.slice(0, 12), 'Secret Strategy', 'victim-model', other.reg.account_id, '4321'];
      for (const [method, suffix, body] of routes) {
        const name = `${method} ${suffix || '/'}`;
        const unknown = await s.call(method, `${A}/${UNKNOWN}${suffix}`, { body, headers: me.jwt });
        t.equal(unknown.status, 404, `${name} unknown`);
        t.equal(unknown.body.error.code, 'AGENT_NOT_FOUND', `${name} unknown`);
        t.equal(unknown.body.error.details.agent_id, UNKNOWN);

        const foreign = await s.call(method, `${A}/${victim.agent_id}${suffix}`, { body, headers: me.jwt });
        t.equal(foreign.status, 403, `${name} foreign`);
        t.equal(foreign.body.error.code, 'PERMISSION_DENIED', `${name} foreign`);
        const text = JSON.stringify(foreign.body);
        for (const secret of secrets) t.notOk(text.includes(secret), `${name} leaks nothing of the other account`);

        const bad = await s.call(method, `${A}/not-a-uuid${suffix}`, { body, headers: me.jwt });
        t.equal(bad.status, 422, `${name} malformed`);
        t.equal(bad.body.error.details.field, 'agent_id');
        t.equal(bad.body.error.details.location, 'path');
      }
      // and the victim's agent is untouched
      const still = await s.call('GET', `${A}/${victim.agent_id}`, { headers: other.jwt });
      t.match(still.body, { display_name: 'Secret Strategy', status: 'active', starting_balance: '4321.00000000' });
      t.equal((await s.call('GET', INFO, { headers: key(victim.api_key) })).status, 200, 'victim key still works');
      t.equal((await s.call('GET', A, { headers: other.jwt })).body.total, 2, 'no clone was made for the victim');
    });

    t.test('partial update: only sent fields change; risk_config merges', async (t) => {
      const { jwt } = await registerAndLogin(s);
      const a = await createAgent(s, jwt, {
        display_name: 'Orig', llm_model: 'gpt-4o', framework: 'langchain', strategy_tags: ['rsi'], color: '#112233',
        description: 'first', risk_profile: { max_position_size_pct: 20, daily_loss_limit_pct: 10, max_open_orders: 10 },
      });
      const base = (await s.call('GET', `${A}/${a.agent_id}`, { headers: jwt })).body;
      const steps: Array<[Body, Body]> = [
        [{ display_name: 'Renamed' }, { display_name: 'Renamed', name: 'Renamed' }],
        [{ name: 'Via name' }, { display_name: 'Via name', name: 'Via name' }],
        [{ strategy_tags: ['rsi', 'multi-pair'] }, { strategy_tags: ['rsi', 'multi-pair'] }],
        [{ llm_model: 'claude-sonnet-4-6', color: '#abcdef' }, { llm_model: 'claude-sonnet-4-6', color: '#abcdef' }],
        [{ description: null }, { description: null }],
        [{ risk_config: { max_open_orders: 7 } }, { risk_profile: { ...base.risk_profile, max_open_orders: 7 } }],
        [{ risk_profile: { max_order_size_pct: 30 } }, { risk_profile: { ...base.risk_profile, max_open_orders: 7, max_order_size_pct: 30 } }],
        [{}, {}],
      ];
      let expected = { ...base };
      for (const [body, change] of steps) {
        const r = await s.call('PUT', `${A}/${a.agent_id}`, { body, headers: jwt });
        t.equal(r.status, 200, JSON.stringify(body));
        expected = { ...expected, ...change };
        const { updated_at: _u, ...rest } = r.body;
        const { updated_at: _e, ...want } = expected;
        t.same(rest, want, `after ${JSON.stringify(body)} only those fields changed`);
      }
      const got = (await s.call('GET', `${A}/${a.agent_id}`, { headers: jwt })).body;
      t.match(got, { display_name: 'Via name', framework: 'langchain', starting_balance: '10000.00000000', description: null });
      t.same(got.risk_profile, { ...base.risk_profile, max_open_orders: 7, max_order_size_pct: 30 });

      const bad: Array<[Body, string]> = [
        [{ display_name: '' }, 'display_name'],
        [{ display_name: '   ' }, 'display_name'],
        [{ color: 'red' }, 'color'],
        [{ risk_config: { max_open_orders: 201 } }, 'risk_config.max_open_orders'],
        [{ agent_type: 'bogus' }, 'agent_type'],
      ];
      for (const [body, field] of bad) {
        const r = await s.call('PUT', `${A}/${a.agent_id}`, { body, headers: jwt });
        t.equal(r.status, 422, JSON.stringify(body));
        t.equal(r.body.error.details.field, field, JSON.stringify(body));
      }
      const unchanged = (await s.call('GET', `${A}/${a.agent_id}`, { headers: jwt })).body;
      t.same(unchanged, got, 'rejected updates changed nothing');
    });

    t.test('clone: new name (or "<name> (copy)"), same configuration, new key, fresh wallet', async (t) => {
      const { jwt } = await registerAndLogin(s);
      const src = await createAgent(s, jwt, {
        display_name: 'RSI Scalper', starting_balance: '2500', llm_model: 'claude-sonnet-4-6', framework: 'custom',
        strategy_tags: ['rsi', 'BTCUSDT'], risk_profile: { max_position_size_pct: 15, daily_loss_limit_pct: 5, max_open_orders: 3 },
        agent_type: 'analysis', authorized_instruments: ['BTCUSDT'],
      });
      await s.engine.db.query(`UPDATE balances SET available = 100 WHERE agent_id = $1`, [src.agent_id]);
      const srcFull = (await s.call('GET', `${A}/${src.agent_id}`, { headers: jwt })).body;

      for (const [query, name] of [['?new_name=RSI+Scalper+Experiment', 'RSI Scalper Experiment'], ['', 'RSI Scalper (copy)']]) {
        const r = await s.call('POST', `${A}/${src.agent_id}/clone${query}`, { headers: jwt });
        t.equal(r.status, 201, name);
        t.equal(r.body.display_name, name);
        t.not(r.body.agent_id, src.agent_id);
        t.match(r.body.api_key, KEY_RE);
        t.not(r.body.api_key, src.api_key, 'clone has its own key');
        t.equal(r.body.starting_balance, '2500.00000000');
        t.same(await usdt(s, r.body.agent_id), [{ available: '2500.00000000', locked: '0.00000000' }], 'fresh wallet, not the source balance');
        const clone = (await s.call('GET', `${A}/${r.body.agent_id}`, { headers: jwt })).body;
        for (const f of ['risk_profile', 'strategy_tags', 'llm_model', 'framework', 'agent_type', 'authorized_instruments', 'starting_balance'] as const) {
          t.same(clone[f], srcFull[f], `clone keeps ${f}`);
        }
        t.equal((await s.call('GET', INFO, { headers: key(r.body.api_key) })).body.agent_id, r.body.agent_id, 'clone key resolves to the clone');
      }
      t.same(await usdt(s, src.agent_id), [{ available: '100.00000000', locked: '0.00000000' }], 'source wallet untouched');
      t.equal((await s.call('GET', INFO, { headers: key(src.api_key) })).body.agent_id, src.agent_id, 'source key unchanged');

      for (const q of ['?new_name=', '?new_name=%20%20', `?new_name=${'x'.repeat(101)}`]) {
        const r = await s.call('POST', `${A}/${src.agent_id}/clone${q}`, { headers: jwt });
        t.equal(r.status, 422, q);
        t.equal(r.body.error.details.field, 'new_name', q);
      }
    });

    t.test('reset: restores the starting balance (or a new one) in a new session', async (t) => {
      const { jwt, reg } = await registerAndLogin(s);
      const a = await createAgent(s, jwt, { display_name: 'Resettable', starting_balance: '3000' });
      const sessionBefore = (await s.call('GET', INFO, { headers: key(a.api_key) })).body.current_session.session_id;
      await s.engine.db.query(`UPDATE balances SET available = 1234.5, locked = 10 WHERE agent_id = $1 AND asset = 'USDT'`, [a.agent_id]);
      await s.engine.db.query(`INSERT INTO balances (agent_id, asset, available, locked) VALUES ($1, 'BTC', 0.5, 0)`, [a.agent_id]);

      const r = await s.call('POST', `${A}/${a.agent_id}/reset`, { headers: jwt });
      t.equal(r.status, 200);
      t.match(r.body, { id: a.agent_id, status: 'active', starting_balance: '3000.00000000' });
      t.match(r.body.session_id, UUID_RE);
      t.not(r.body.session_id, sessionBefore);
      t.same(await s.engine.db.query(`SELECT asset, available, locked FROM balances WHERE agent_id = $1`, [a.agent_id]),
        [{ asset: 'USDT', available: '3000.00000000', locked: '0.00000000' }], 'only the restored USDT row remains');
      const info = (await s.call('GET', INFO, { headers: key(a.api_key) })).body;
      t.equal(info.current_session.session_id, r.body.session_id, 'the new session is current');
      const sessions = await s.engine.db.query<{ id: string; open: boolean }>(
        `SELECT id, ended_at IS NULL AS open FROM trading_sessions WHERE agent_id = $1 ORDER BY started_at`, [a.agent_id]);
      t.same(sessions, [{ id: sessionBefore, open: false }, { id: r.body.session_id, open: true }], 'old session closed, kept');

      const again = await s.call('POST', `${A}/${a.agent_id}/reset`, { body: { starting_balance: '7500.5' }, headers: jwt });
      t.equal(again.status, 200);
      t.equal(again.body.starting_balance, '7500.50000000');
      t.same(await usdt(s, a.agent_id), [{ available: '7500.50000000', locked: '0.00000000' }]);
      t.equal((await s.call('GET', INFO, { headers: key(a.api_key) })).body.starting_balance, '7500.50000000');
      t.equal((await s.call('GET', `${A}/${a.agent_id}`, { headers: jwt })).body.starting_balance, '7500.50000000');

      const before = await footprint(s, reg.account_id);
      for (const sb of ['0', '-1', 'abc', '1.123456789']) {
        const bad = await s.call('POST', `${A}/${a.agent_id}/reset`, { body: { starting_balance: sb }, headers: jwt });
        t.equal(bad.status, 422, sb);
        t.equal(bad.body.error.details.field, 'starting_balance', sb);
      }
      t.same(await footprint(s, reg.account_id), before, 'rejected resets wrote nothing');
      t.same(await usdt(s, a.agent_id), [{ available: '7500.50000000', locked: '0.00000000' }]);

      await s.call('POST', `${A}/${a.agent_id}/archive`, { headers: jwt });
      const archived = await s.call('POST', `${A}/${a.agent_id}/reset`, { headers: jwt });
      t.equal(archived.status, 409);
      t.equal(archived.body.error.code, 'AGENT_INVALID_STATE');
    });

    t.test('archive: status archived, hidden from lists, key refused at once', async (t) => {
      const { jwt } = await registerAndLogin(s);
      const a = await createAgent(s, jwt, { display_name: 'To Archive' });
      t.equal((await s.call('GET', INFO, { headers: key(a.api_key) })).status, 200, 'key works (and is cached) before');
      const r = await s.call('POST', `${A}/${a.agent_id}/archive`, { headers: jwt });
      t.equal(r.status, 200);
      t.match(r.body, { id: a.agent_id, status: 'archived', display_name: 'To Archive' });
      const refused = await s.call('GET', INFO, { headers: key(a.api_key) });
      t.equal(refused.status, 401);
      t.equal(refused.body.error.code, 'INVALID_API_KEY');
      const ids = (q: string) => s.call('GET', `${A}${q}`, { headers: jwt }).then((x) => x.body.agents.map((g: { id: string }) => g.id));
      t.notOk((await ids('')).includes(a.agent_id), 'not listed');
      t.notOk((await ids('?include_archived=false')).includes(a.agent_id));
      t.ok((await ids('?include_archived=true')).includes(a.agent_id), 'listed with include_archived=true');
      t.notOk((await ids('/overview')).includes(a.agent_id), 'not in overview');
      t.equal((await s.call('GET', `${A}/${a.agent_id}`, { headers: jwt })).body.status, 'archived', 'still readable by id');
      t.equal((await s.call('GET', `${A}/${a.agent_id}/api-key`, { headers: jwt })).body.api_key, a.api_key, 'data preserved');
      const twice = await s.call('POST', `${A}/${a.agent_id}/archive`, { headers: jwt });
      t.equal(twice.status, 200);
      t.equal(twice.body.status, 'archived');
    });

    t.test('delete: 204, then 404, and every row of the agent is gone', async (t) => {
      const { jwt, reg } = await registerAndLogin(s);
      const a = await createAgent(s, jwt, { display_name: 'Doomed' });
      await s.call('POST', `${A}/${a.agent_id}/reset`, { headers: jwt });
      t.same(await agentRows(s, a.agent_id), { agents: 1, balances: 1, sessions: 2, journal: 2 }, 'rows exist before');
      const kept = await agentRows(s, reg.agent_id);
      t.equal((await s.call('GET', INFO, { headers: key(a.api_key) })).status, 200);

      const r = await s.call('DELETE', `${A}/${a.agent_id}`, { headers: jwt });
      t.equal(r.status, 204);
      t.equal(r.body, '');
      const get = await s.call('GET', `${A}/${a.agent_id}`, { headers: jwt });
      t.equal(get.status, 404);
      t.equal(get.body.error.code, 'AGENT_NOT_FOUND');
      t.same(await agentRows(s, a.agent_id), { agents: 0, balances: 0, sessions: 0, journal: 0 });
      t.same(await agentRows(s, reg.agent_id), kept, 'the sibling agent is untouched');
      t.equal((await s.call('GET', INFO, { headers: key(a.api_key) })).status, 401, 'its key is refused');
      t.equal((await s.call('GET', A, { headers: jwt })).body.total, 1);
      t.equal((await s.call('DELETE', `${A}/${a.agent_id}`, { headers: jwt })).status, 404, 'deleting again is 404');
    });

    t.test('api-key returns the full key; regenerate-key swaps it at once', async (t) => {
      const { jwt } = await registerAndLogin(s);
      const a = await createAgent(s, jwt, { display_name: 'Keyed' });
      const got = await s.call('GET', `${A}/${a.agent_id}/api-key`, { headers: jwt });
      t.equal(got.status, 200);
      t.same(got.body, { agent_id: a.agent_id, api_key: a.api_key, message: 'Current API key for this agent.' });

      t.equal((await s.call('GET', INFO, { headers: key(a.api_key) })).status, 200, 'old key works (and is cached) before');
      const regen = await s.call('POST', `${A}/${a.agent_id}/regenerate-key`, { headers: jwt });
      t.equal(regen.status, 200);
      t.equal(regen.body.agent_id, a.agent_id);
      t.match(regen.body.api_key, KEY_RE);
      t.not(regen.body.api_key, a.api_key);
      const fresh = await s.call('GET', INFO, { headers: key(regen.body.api_key) });
      t.equal(fresh.status, 200);
      t.equal(fresh.body.agent_id, a.agent_id);
      const old = await s.call('GET', INFO, { headers: key(a.api_key) });
      t.equal(old.status, 401);
      t.equal(old.body.error.code, 'INVALID_API_KEY');
      t.equal((await s.call('GET', `${A}/${a.agent_id}/api-key`, { headers: jwt })).body.api_key, regen.body.api_key);
      t.equal((await s.call('GET', `${A}/${a.agent_id}`, { headers: jwt })).body.api_key_preview, regen.body.api_key.slice(0, 12) + '...');
    });

    t.test('risk-profile: defaults 25/20/50; PUT needs all three within bounds', async (t) => {
      const { jwt } = await registerAndLogin(s);
      const a = await createAgent(s, jwt, { display_name: 'Risky' });
      const path = `${A}/${a.agent_id}/risk-profile`;
      const def = await s.call('GET', path, { headers: jwt });
      t.equal(def.status, 200);
      t.same(def.body, { max_position_size_pct: 25, daily_loss_limit_pct: 20, max_open_orders: 50, max_order_size_pct: 50, min_order_size_usd: 1, order_rate_limit: 100 });

      const put = await s.call('PUT', path, { body: { max_position_size_pct: 10, daily_loss_limit_pct: 5, max_open_orders: 5 }, headers: jwt });
      t.equal(put.status, 200);
      t.match(put.body, { max_position_size_pct: 10, daily_loss_limit_pct: 5, max_open_orders: 5 });
      t.same((await s.call('GET', path, { headers: jwt })).body, { ...def.body, max_position_size_pct: 10, daily_loss_limit_pct: 5, max_open_orders: 5 });
      t.match((await s.call('GET', INFO, { headers: key(a.api_key) })).body.risk_profile, { max_position_size_pct: 10, daily_loss_limit_pct: 5, max_open_orders: 5 });

      const ok = { max_position_size_pct: 10, daily_loss_limit_pct: 5, max_open_orders: 5 };
      const cases: Array<[Body, string]> = [
        [{ daily_loss_limit_pct: 5, max_open_orders: 5 }, 'max_position_size_pct'],
        [{ max_position_size_pct: 10, max_open_orders: 5 }, 'daily_loss_limit_pct'],
        [{ max_position_size_pct: 10, daily_loss_limit_pct: 5 }, 'max_open_orders'],
        [{ ...ok, max_open_orders: 201 }, 'max_open_orders'],
        [{ ...ok, max_open_orders: 0 }, 'max_open_orders'],
        [{ ...ok, max_position_size_pct: 0 }, 'max_position_size_pct'],
        [{ ...ok, max_position_size_pct: 101 }, 'max_position_size_pct'],
        [{ ...ok, daily_loss_limit_pct: 0 }, 'daily_loss_limit_pct'],
        [{ ...ok, daily_loss_limit_pct: 101 }, 'daily_loss_limit_pct'],
        [{ ...ok, max_open_orders: 7.5 }, 'max_open_orders'],
      ];
      for (const [body, field] of cases) {
        const r = await s.call('PUT', path, { body, headers: jwt });
        t.equal(r.status, 422, JSON.stringify(body));
        t.equal(r.body.error.code, 'VALIDATION_ERROR');
        t.equal(r.body.error.details.field, field, JSON.stringify(body));
      }
      t.match((await s.call('GET', path, { headers: jwt })).body, ok, 'rejected PUTs changed nothing');
      const edges = { max_position_size_pct: 100, daily_loss_limit_pct: 1, max_open_orders: 200 };
      t.match((await s.call('PUT', path, { body: edges, headers: jwt })).body, edges, 'bounds are inclusive');
    });

    t.test('skill.md: markdown with the agent header, its key and the API reference', async (t) => {
      const { jwt } = await registerAndLogin(s);
      const a = await createAgent(s, jwt, { display_name: 'RSI Scalper', authorized_instruments: ['btcusdt'] });
      const r = await s.call('GET', `${A}/${a.agent_id}/skill.md`, { headers: jwt });
      t.equal(r.status, 200);
      t.match(r.headers.get('content-type'), /^text\/markdown/);
      t.equal(typeof r.body, 'string');
      t.ok(r.body.startsWith('# Agent: RSI Scalper\n'), 'starts with the agent header');
      t.ok(r.body.includes(`# Agent ID: ${a.agent_id}`));
      t.ok(r.body.includes(`# API Key: ${a.api_key}`), 'contains the full key');
      for (const line of ['POST /api/v1/agents', 'GET /api/v1/account/info', 'POST /api/v1/auth/login']) t.ok(r.body.includes(line), line);
      t.ok(r.body.includes('BTCUSDT'), 'lists the authorized instruments');
      const regen = (await s.call('POST', `${A}/${a.agent_id}/regenerate-key`, { headers: jwt })).body.api_key;
      const after = (await s.call('GET', `${A}/${a.agent_id}/skill.md`, { headers: jwt })).body;
      t.ok(after.includes(`# API Key: ${regen}`) && !after.includes(a.api_key), 'follows a regenerated key');
    });

    t.test('agent management is JWT-only: an agent or account key alone gets 401', async (t) => {
      const { jwt, reg, agentKey, accountKey } = await registerAndLogin(s);
      const id = reg.agent_id;
      const routes: Array<[string, string, Body?]> = [
        ['POST', A, { display_name: 'Nope' }], ['GET', A], ['GET', `${A}/overview`], ['GET', `${A}/${id}`],
        ['PUT', `${A}/${id}`, { display_name: 'Nope' }], ['DELETE', `${A}/${id}`], ['POST', `${A}/${id}/clone`],
        ['POST', `${A}/${id}/reset`], ['POST', `${A}/${id}/archive`], ['GET', `${A}/${id}/api-key`],
        ['POST', `${A}/${id}/regenerate-key`], ['GET', `${A}/${id}/risk-profile`],
        ['PUT', `${A}/${id}/risk-profile`, { max_position_size_pct: 1, daily_loss_limit_pct: 1, max_open_orders: 1 }],
        ['GET', `${A}/${id}/skill.md`],
      ];
      const before = await footprint(s, reg.account_id);
      for (const [method, path, body] of routes) {
        for (const [who, headers] of [['agent key', agentKey], ['account key', accountKey]] as const) {
          const r = await s.call(method, path, { body, headers });
          t.equal(r.status, 401, `${method} ${path} with ${who}`);
          t.equal(r.body.error.code, 'INVALID_TOKEN', `${method} ${path} with ${who}`);
        }
      }
      t.same(await footprint(s, reg.account_id), before, 'nothing changed');
      const agent = (await s.call('GET', `${A}/${id}`, { headers: jwt })).body;
      t.match(agent, { status: 'active', display_name: "Tester's Agent" });
      t.equal((await s.call('GET', `${A}/${id}/api-key`, { headers: jwt })).body.api_key, reg.agent_api_key, 'key not regenerated');
    });

    t.test('onboarding (seed 003): register without credentials creates an owner account', async (t) => {
      const owner = ownerId();
      const body = {
        owner_id: owner, agent_name: 'RiskBot', agent_type: 'trading', description: 'Momentum with strict risk controls',
        authorized_instruments: ['btcusdt', 'ETHUSDT'], max_position_size_pct: '5.0', max_daily_loss_pct: '2.0',
      };
      const r = await s.call('POST', `${A}/register`, { body });
      t.equal(r.status, 201);
      t.match(r.body, { agent_name: 'RiskBot', agent_type: 'trading', mode: 'sandbox' });
      t.match(r.body.agent_id, UUID_RE);
      t.match(r.body.api_key, KEY_RE);
      t.match(r.body.account, { account_id: r.body.account_id });
      t.match(r.body.account.api_key, KEY_RE);
      t.match(r.body.account.api_secret, /^sk_live_/);
      t.not(r.body.account.api_key, r.body.api_key, 'agent key and account key differ');

      const login = await s.call('POST', '/api/v1/auth/login', { body: { api_key: r.body.account.api_key, api_secret: r.body.account.api_secret } });
      t.equal(login.status, 200);
      const ownerJwt = { authorization: `Bearer ${login.body.token}` };
      const risk = await s.call('GET', `${A}/${r.body.agent_id}/risk-profile`, { headers: ownerJwt });
      t.equal(risk.status, 200);
      t.equal(risk.body.max_position_size_pct, 5);
      t.equal(risk.body.daily_loss_limit_pct, 2);
      t.equal(risk.body.max_open_orders, 50);
      const agent = (await s.call('GET', `${A}/${r.body.agent_id}`, { headers: ownerJwt })).body;
      t.match(agent, { display_name: 'RiskBot', description: 'Momentum with strict risk controls', agent_type: 'trading', mode: 'sandbox', account_id: r.body.account_id });
      t.same(agent.authorized_instruments, ['BTCUSDT', 'ETHUSDT']);
      t.same(await usdt(s, r.body.agent_id), [{ available: '10000.00000000', locked: '0.00000000' }]);
      t.equal((await s.call('GET', INFO, { headers: key(r.body.api_key) })).body.agent_id, r.body.agent_id, 'agent key works');

      // the same owner_id again: only its owner may add agents
      const again = { ...body, agent_name: 'Second' };
      const anon = await s.call('POST', `${A}/register`, { body: again });
      t.equal(anon.status, 401);
      t.equal(anon.body.error.code, 'INVALID_API_KEY');
      const stranger = await registerAndLogin(s);
      const foreign = await s.call('POST', `${A}/register`, { body: again, headers: stranger.jwt });
      t.equal(foreign.status, 403);
      t.equal(foreign.body.error.code, 'PERMISSION_DENIED');
      t.equal((await s.call('GET', A, { headers: ownerJwt })).body.total, 1, 'refused attempts added nothing');
      const mine = await s.call('POST', `${A}/register`, { body: again, headers: ownerJwt });
      t.equal(mine.status, 201);
      t.equal(mine.body.account_id, r.body.account_id);
      t.notOk('account' in mine.body, 'no new account credentials for an existing owner');
      const list = await s.call('GET', A, { headers: ownerJwt });
      t.same(list.body.agents.map((x: { display_name: string }) => x.display_name), ['RiskBot', 'Second']);

      // GET /agents/list works with an agent key and lists the owner's agents
      const byKey = await s.call('GET', `${A}/list`, { headers: key(r.body.api_key) });
      t.equal(byKey.status, 200);
      t.equal(byKey.body.owner_id, owner);
      t.equal(byKey.body.total, 2);
      t.same(byKey.body.agents.map((x: { agent_name: string }) => x.agent_name), ['RiskBot', 'Second']);
      t.same(byKey.body.agents.map((x: { agent_id: string }) => x.agent_id), [r.body.agent_id, mine.body.agent_id]);
    });

    t.test('onboarding rejects bad input with 422 naming the field, and writes nothing', async (t) => {
      const valid = { owner_id: 'placeholder', agent_name: 'Bot', agent_type: 'analysis' };
      const cases: Array<[Body, string]> = [
        [{ agent_type: 'bogus' }, 'agent_type'],
        [{ agent_type: undefined }, 'agent_type'],
        [{ owner_id: undefined }, 'owner_id'],
        [{ owner_id: '' }, 'owner_id'],
        [{ agent_name: '' }, 'agent_name'],
        [{ agent_name: '   ' }, 'agent_name'],
        [{ agent_name: 'x'.repeat(101) }, 'agent_name'],
        [{ max_position_size_pct: '0' }, 'max_position_size_pct'],
        [{ max_position_size_pct: 'big' }, 'max_position_size_pct'],
        [{ max_daily_loss_pct: '101' }, 'max_daily_loss_pct'],
        [{ starting_balance: '-1' }, 'starting_balance'],
        [{ authorized_actions: ['size'] }, 'authorized_actions.0'],
      ];
      const accounts = async () => (await s.engine.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM accounts`))[0].n;
      const before = await accounts();
      for (const [patch, field] of cases) {
        const body = { ...valid, owner_id: ownerId(), ...patch };
        const r = await s.call('POST', `${A}/register`, { body });
        t.equal(r.status, 422, JSON.stringify(patch));
        t.equal(r.body.error?.code, 'VALIDATION_ERROR', JSON.stringify(patch));
        t.equal(r.body.error?.details?.field, field, JSON.stringify(patch));
      }
      t.equal(await accounts(), before, 'no account was created');
      for (const type of ['trading', 'analysis', 'risk', 'composite']) {
        const r = await s.call('POST', `${A}/register`, { body: { ...valid, owner_id: ownerId(), agent_type: type } });
        t.equal(r.status, 201, type);
        t.equal(r.body.agent_type, type);
      }
    });

    t.test('PUT /agents/mode: live refused, suspended blocks the key, terminated is final', async (t) => {
      const owner = ownerId();
      const r = (await s.call('POST', `${A}/register`, { body: { owner_id: owner, agent_name: 'Moody', agent_type: 'trading' } })).body;
      const login = await s.call('POST', '/api/v1/auth/login', { body: { api_key: r.account.api_key, api_secret: r.account.api_secret } });
      const ownerJwt = { authorization: `Bearer ${login.body.token}` };
      const agentKey = key(r.api_key);
      const mode = async () => (await s.call('GET', `${A}/${r.agent_id}`, { headers: ownerJwt })).body.mode;
      const setMode = (body: Body, headers: H) => s.call('PUT', `${A}/mode`, { body, headers });

      const live = await setMode({ mode: 'live' }, agentKey);
      t.equal(live.status, 400);
      t.equal(live.body.error.code, 'LIVE_TRADING_UNAVAILABLE');
      t.equal(await mode(), 'sandbox');
      t.equal((await setMode({ mode: 'paper' }, agentKey)).body.error.details.field, 'mode');

      const sus = await setMode({ mode: 'suspended' }, agentKey);
      t.equal(sus.status, 200);
      t.same(sus.body, { agent_id: r.agent_id, mode: 'suspended', previous_mode: 'sandbox' });
      for (const [method, path, body] of [['GET', INFO], ['GET', `${A}/list`], ['PUT', `${A}/mode`, { mode: 'sandbox' }]] as const) {
        const blocked = await s.call(method, path, { body, headers: agentKey });
        t.equal(blocked.status, 403, `${method} ${path} while suspended`);
        t.equal(blocked.body.error.code, 'AGENT_SUSPENDED');
      }
      t.equal(await mode(), 'suspended', 'a suspended key cannot lift its own suspension');

      // the owner names the agent with agent_id; a JWT without it, or another owner, is refused
      const noId = await setMode({ mode: 'sandbox' }, ownerJwt);
      t.equal(noId.status, 422);
      t.equal(noId.body.error.details.field, 'agent_id');
      const stranger = await registerAndLogin(s);
      const foreign = await setMode({ mode: 'sandbox', agent_id: r.agent_id }, stranger.jwt);
      t.equal(foreign.status, 403);
      t.equal(foreign.body.error.code, 'PERMISSION_DENIED');
      t.equal(await mode(), 'suspended');
      const back = await setMode({ mode: 'sandbox', agent_id: r.agent_id }, ownerJwt);
      t.equal(back.status, 200);
      t.same(back.body, { agent_id: r.agent_id, mode: 'sandbox', previous_mode: 'suspended' });
      const works = await s.call('GET', INFO, { headers: agentKey });
      t.equal(works.status, 200);
      t.equal(works.body.status, 'active');

      // an agent key can only change its own mode, even a sibling's
      const sib = (await s.call('POST', `${A}/register`, { body: { owner_id: owner, agent_name: 'Sibling', agent_type: 'risk' }, headers: ownerJwt })).body;
      t.equal(sib.account_id, r.account_id);
      const cross = await setMode({ mode: 'suspended', agent_id: sib.agent_id }, agentKey);
      t.equal(cross.status, 403);
      t.equal(cross.body.error.code, 'PERMISSION_DENIED');
      t.equal((await s.call('GET', `${A}/${sib.agent_id}`, { headers: ownerJwt })).body.mode, 'sandbox', 'sibling untouched');

      const term = await setMode({ mode: 'terminated' }, agentKey);
      t.equal(term.status, 200);
      t.equal(term.body.mode, 'terminated');
      const dead = await s.call('GET', INFO, { headers: agentKey });
      t.equal(dead.status, 403);
      t.equal(dead.body.error.code, 'AGENT_SUSPENDED');
      for (const next of ['sandbox', 'suspended', 'terminated']) {
        const later = await setMode({ mode: next, agent_id: r.agent_id }, ownerJwt);
        t.equal(later.status, 409, `terminated → ${next}`);
        t.equal(later.body.error.code, 'AGENT_INVALID_STATE');
      }
      t.equal(await mode(), 'terminated');
    });

    t.test('authorized_actions limits what an agent key may call', async (t) => {
      const { jwt } = await registerAndLogin(s);
      const cases: Array<[string[] | null, number, number]> = [
        // authorized_actions, GET /account/info (group account), GET /agents/list (group agent)
        [['market'], 403, 403],
        [['account'], 200, 403],
        [['agent', 'account'], 200, 200],
        [null, 200, 200],
      ];
      for (const [actions, infoStatus, listStatus] of cases) {
        const a = await createAgent(s, jwt, { display_name: `Actions ${actions}`, authorized_actions: actions });
        const info = await s.call('GET', INFO, { headers: key(a.api_key) });
        t.equal(info.status, infoStatus, `${JSON.stringify(actions)} on account/info`);
        if (infoStatus === 403) {
          t.equal(info.body.error.code, 'PERMISSION_DENIED');
          t.equal(info.body.error.details.action, 'account');
        }
        t.equal((await s.call('GET', `${A}/list`, { headers: key(a.api_key) })).status, listStatus, `${JSON.stringify(actions)} on agents/list`);
        // the owner (JWT scoped with X-Agent-Id) is not limited by the agent's whitelist
        t.equal((await s.call('GET', INFO, { headers: { ...jwt, 'x-agent-id': a.agent_id } })).status, 200);
      }
      const onboarded = (await s.call('POST', `${A}/register`, {
        body: { owner_id: ownerId(), agent_name: 'Market only', agent_type: 'analysis', authorized_actions: ['market'] },
      })).body;
      const denied = await s.call('GET', INFO, { headers: key(onboarded.api_key) });
      t.equal(denied.status, 403);
      t.equal(denied.body.error.code, 'PERMISSION_DENIED');
    });
  });
}
