import t from 'tap';
import { backends, registerAndLogin, startTestServer } from '../helpers/server.js';
import { BT, loadData, scenario, WINDOW } from '../helpers/backtest.js';
import { Backtests } from '../../engine/backtests.js';
import { createLogger } from '../../engine/log.js';

type H = Record<string, string>;

for (const backend of backends()) {
  t.test(`backtest ownership, restarts and rankings on ${backend.name}`, async (t) => {
    const s = await startTestServer(backend);
    t.teardown(() => s.stop());
    await loadData(s);
    const owner = await registerAndLogin(s, { starting_balance: '10000' });
    const second = await s.call('POST', '/api/v1/agents', { headers: owner.jwt, body: { display_name: 'Second' } });
    const agent2: H = { 'x-api-key': second.body.api_key };
    const stranger = await registerAndLogin(s);

    t.test('nobody but the owner (and only the session\'s agent) reads or drives a session', async (t) => {
      const { id, b } = await scenario(s, owner.agentKey, 'owned');
      const paths: Array<[string, string, unknown?]> = [
        ['GET', `${BT}/${id}/status`], ['GET', `${BT}/${id}/results`], ['GET', `${BT}/${id}/market/prices`], ['GET', `${BT}/${id}/account/balance`],
        ['GET', `${BT}/${id}/trade/orders`], ['POST', `${BT}/${id}/step`], ['POST', `${BT}/${id}/step/batch`, { steps: 2 }],
        ['POST', `${BT}/${id}/trade/order`, { symbol: 'ADAUSDT', side: 'buy', type: 'market', quantity: '10' }],
        ['DELETE', `${BT}/${id}/trade/order/${b.order_id}`], ['POST', `${BT}/${id}/cancel`],
      ];
      const outsiders: Array<[string, H]> = [
        ['another account\'s agent key', stranger.agentKey], ['another account\'s JWT', stranger.jwt],
        ['another agent of the same account', agent2], ['the account with X-Agent-Id of the other agent', { ...owner.jwt, 'x-agent-id': second.body.agent_id }],
      ];
      for (const [who, h] of outsiders) {
        for (const [method, path, body] of paths) {
          const r = await s.call(method, path, { headers: h, body });
          t.equal(`${r.status} ${r.body.error?.code}`, '404 BACKTEST_NOT_FOUND', `${who}: ${method} ${path.replace(id, ':id')}`);
        }
      }
      const st = await s.call('GET', `${BT}/${id}/status`, { headers: owner.agentKey });
      t.equal(st.body.current_step, 0, 'nothing an outsider sent changed the session');
      t.equal(st.body.status, 'running');
      for (const h of [owner.accountKey, owner.jwt]) t.equal((await s.call('GET', `${BT}/${id}/status`, { headers: h })).status, 200, 'the account itself sees its agents\' sessions');
      const spoof = await s.call('POST', `${BT}/create`, { headers: agent2, body: { ...WINDOW, agent_id: owner.reg.agent_id } });
      t.equal(spoof.status, 403, 'an agent cannot create a session for another agent');
    });

    t.test('lists are scoped to the account and, with an agent, to that agent', async (t) => {
      const mine = await s.call('POST', `${BT}/create`, { headers: agent2, body: { ...WINDOW, strategy_label: 'a2' } });
      t.equal(mine.body.agent_id, second.body.agent_id);
      const ids = (h: H, q = '') => s.call('GET', `${BT}/list${q}`, { headers: h }).then((r) => r.body.backtests.map((x: { session_id: string }) => x.session_id));
      t.same(await ids(agent2), [mine.body.session_id]);
      const all = await ids(owner.accountKey);
      t.ok(all.includes(mine.body.session_id) && all.length >= 2, 'the account sees every agent\'s sessions');
      t.notOk((await ids(owner.accountKey, `?agent_id=${owner.reg.agent_id}`)).includes(mine.body.session_id));
      t.same(await ids(stranger.agentKey), []);
      t.same(await ids(agent2, '?strategy_label=nope'), []);
    });

    t.test('a restarted registry resumes a session from the database and ends where an uninterrupted one does', async (t) => {
      const { id, ok } = await scenario(s, owner.agentKey, 'restart');
      await ok('POST', `${BT}/${id}/step/batch`, { steps: 30 });
      const before = await s.engine.backtests.get((await s.engine.identity.resolveKey(owner.agentKey['x-api-key']))!, id);
      // A new registry over the same database is what the next process starts with: nothing in memory.
      const restarted = new Backtests(s.engine.db, s.engine.market, s.engine.identity, null, '0.001', createLogger('silent'));
      t.teardown(() => restarted.close());
      const p = (await s.engine.identity.resolveKey(owner.agentKey['x-api-key']))!;
      const after = await restarted.get(p, id);
      t.not(after, before, 'a different object, rebuilt from storage');
      t.same(after.sim, before.sim, 'wallet, open orders and clock');
      t.same([...after.orders.values()], [...before.orders.values()]);
      t.same(after.trades, before.trades);
      t.same(after.snapshots, before.snapshots);
      const r = await restarted.step(p, id, 500, false);
      t.equal(r.session.status, 'completed');
      t.match(r.session.results!.summary, { final_equity: '9981.37385213', total_pnl: '-18.62614787', total_trades: 6 }, 'same end as the uninterrupted run in backtest.test.ts');
      const again = new Backtests(s.engine.db, s.engine.market, s.engine.identity, null, '0.001', createLogger('silent'));
      t.teardown(() => again.close());
      t.match((await again.get(p, id)).results!.metrics, { win_rate: '33.33333333', max_drawdown_pct: '0.20238308' }, 'results survive too');
    });

    t.test('compare and best rank completed sessions', async (t) => {
      const h = owner.agentKey;
      const { id: lossy, ok } = await scenario(s, h, 'v1');
      await ok('POST', `${BT}/${lossy}/step/batch/fast`, { steps: 1000 });
      const flat = (await ok('POST', `${BT}/create`, { ...WINDOW, strategy_label: 'v2' })).session_id;
      await ok('POST', `${BT}/${flat}/start`);
      await ok('POST', `${BT}/${flat}/step/batch`, { steps: 1000 });
      const cmp = await ok('GET', `${BT}/compare?sessions=${lossy},${flat}`);
      t.match(cmp.comparisons, [
        { session_id: lossy, roi_pct: '-0.18626148', max_drawdown_pct: '0.20238308', sharpe_ratio: '-88.39566824' },
        { session_id: flat, roi_pct: '0.00000000', max_drawdown_pct: '0.00000000', sharpe_ratio: null },
      ]);
      t.match(cmp, { best_by_roi: flat, best_by_drawdown: flat, best_by_sharpe: lossy });
      const best = (q: string) => s.call('GET', `${BT}/best?${q}`, { headers: h });
      t.match((await best('metric=roi_pct&strategy_label=v1')).body, { session_id: lossy, metric: 'roi_pct', value: '-0.18626148' });
      t.match((await best('metric=max_drawdown_pct')).body, { metric: 'max_drawdown_pct', value: '0.00000000' }, 'the lowest drawdown is the best');
      t.equal((await best('metric=bogus')).status, 422);
      t.equal((await s.call('GET', `${BT}/compare?sessions=${lossy}`, { headers: h })).status, 422, 'at least two');
      const missing = await s.call('GET', `${BT}/compare?sessions=${lossy},00000000-0000-4000-8000-000000000000`, { headers: h });
      t.match(missing, { status: 404, body: { error: { code: 'BACKTEST_NOT_FOUND', details: { missing: ['00000000-0000-4000-8000-000000000000'] } } } });
      t.equal((await best('metric=roi_pct&strategy_label=none')).status, 404);
    });
  });
}
