import t from 'tap';
import { backends, registerAndLogin, startTestServer } from '../helpers/server.js';
import { B, caller, loadSeedDay, restartableServer, SEED_BODY } from '../helpers/battles.js';

/**
 * The seed's "Historical Battle Full Workflow" run as written (one /step call per candle of the day), and a
 * running historical battle that survives a restart of the engine. Values as in battles.test.ts.
 */
type Row = Record<string, any>;
const byAgent = (list: Row[], id: string) => list.find((x) => x.agent_id === id)!;

for (const backend of backends()) {
  t.test(`the seed workflow on ${backend.name}`, async (t) => {
    const s = await startTestServer(backend);
    t.teardown(() => s.stop());
    await loadSeedDay(s.engine.db);
    const owner = await registerAndLogin(s, { starting_balance: '10000' });
    const { call, ok } = caller(s, owner.jwt);
    const a1: string = owner.reg.agent_id;
    const a2: string = (await ok('POST', '/api/v1/agents', { display_name: 'RSIScalper', starting_balance: '10000' })).agent_id;

    t.test('the seed\'s Historical Battle Full Workflow, as its Python (and its curl loop) sends it, ends with completed rankings', async (t) => {
      const battle = await ok('POST', B, SEED_BODY);
      t.match(battle, { status: 'draft', battle_mode: 'historical', starting_balance: '10000.00000000', ranking_metric: 'roi_pct', participants: [] });
      t.match(battle.backtest_config, { start_time: '2025-01-15T00:00:00.000Z', end_time: '2025-01-16T00:00:00.000Z', candle_interval: '1m', candle_interval_seconds: 60, pairs: ['BTCUSDT', 'ETHUSDT'] });
      const bid: string = battle.battle_id;
      t.equal(battle.id, bid);
      const add1 = await call('POST', `${B}/${bid}/participants`, { agent_id: a1 });
      t.equal(add1.status, 201);
      t.equal((await ok('POST', `${B}/${bid}/participants`, { agent_id: a2 })).participants.length, 2);
      t.match(await ok('POST', `${B}/${bid}/start`), { status: 'active', current_step: 0, total_steps: 1440 });
      let steps = 0;
      let orders = 0;
      let lowest = Infinity;
      let step: Row;
      for (;;) {
        step = await ok('POST', `${B}/${bid}/step`);
        steps += 1;
        const btc = Number(step.prices.BTCUSDT ?? 0); // float(step.prices.get("BTCUSDT", 0))
        lowest = Math.min(lowest, btc);
        if (btc < 42000) {
          await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a1, symbol: 'BTCUSDT', side: 'buy', order_type: 'market', quantity: '0.1' });
          orders += 1;
        }
        if (step.is_complete) break;
      }
      t.equal(steps, 1440, 'one call per candle of the day');
      t.equal(orders, 0, 'BTC never went below 42000 that day');
      t.equal(lowest, 92867.8);
      t.match(step!, { step: 1440, total_steps: 1440, progress_pct: '100.00000000', is_complete: true, status: 'completed', virtual_time: '2025-01-16T00:00:00.000Z' });
      const stopped = await ok('POST', `${B}/${bid}/stop`);
      t.match(stopped, { status: 'completed', battle_id: bid });
      const results = await ok('GET', `${B}/${bid}/results`);
      // Nobody traded: equal ROI, equal PnL, so the tie-break (join order) ranks them.
      t.same(results.rankings.map((r: Row) => [r.rank, r.agent_id, r.agent_name, r.roi_pct, r.final_equity]), [
        [1, a1, "Tester's Agent", '0.00000000', '10000.00000000'], [2, a2, 'RSIScalper', '0.00000000', '10000.00000000'],
      ]);
      t.same(results.participants, results.rankings);
      const again = await call('POST', `${B}/${bid}/step`);
      t.match(again, { status: 409, body: { error: { code: 'BATTLE_INVALID_STATE', details: { current_status: 'completed' } } } });
    });

  });

  t.test(`a running historical battle survives a restart on ${backend.name}`, async (t) => {
    const srv = await restartableServer(backend);
    t.teardown(() => srv.stop());
    let s = srv.s();
    await loadSeedDay(s.engine.db);
    const owner = await registerAndLogin(s, { starting_balance: '10000' });
    const a1: string = owner.reg.agent_id;
    let { ok } = caller(s, owner.jwt);
    const a2: string = (await ok('POST', '/api/v1/agents', { display_name: 'RSIScalper' })).agent_id;
    const bid: string = (await ok('POST', B, SEED_BODY)).battle_id;
    for (const id of [a1, a2]) await ok('POST', `${B}/${bid}/participants`, { agent_id: id });
    await ok('POST', `${B}/${bid}/start`);
    await ok('POST', `${B}/${bid}/step`);
    await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a1, symbol: 'BTCUSDT', side: 'buy', order_type: 'market', quantity: '0.1' });
    await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a2, symbol: 'ETHUSDT', side: 'buy', type: 'limit', quantity: '1', price: '3290' });
    await ok('POST', `${B}/${bid}/step/batch`, { steps: 98 });

    s = await srv.restart();
    ({ ok } = caller(s, owner.jwt));
    t.match(await ok('GET', `${B}/${bid}`), { status: 'active', current_step: 99, virtual_time: '2025-01-15T01:39:00.000Z' }, 'back at its step');
    // The resting limit order came back with the battle and fills on the same candle as without a restart.
    t.match(byAgent((await ok('POST', `${B}/${bid}/step`)).participants, a2), { trade_count: 1, equity: '9993.36260000' });
    await ok('POST', `${B}/${bid}/step/batch`, { steps: 620 });
    await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a1, symbol: 'BTCUSDT', side: 'sell', type: 'market', quantity: '0.1' });
    const end = await ok('POST', `${B}/${bid}/step/batch`, { steps: 10000 });
    t.match(end, { is_complete: true, status: 'completed' });
    t.same(end.participants.map((p: Row) => p.equity), ['9892.67101654', '9986.66089680'], 'the same outcome as the uninterrupted battle');
    const results = await ok('GET', `${B}/${bid}/results`);
    t.same(results.rankings.map((r: Row) => r.agent_id), [a2, a1]);
    t.equal((await ok('GET', `${B}/${bid}/replay`)).total, 27);
  });
}
