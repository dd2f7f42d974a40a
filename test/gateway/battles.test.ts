import t from 'tap';
import WebSocket from 'ws';
import { backends, registerAndLogin, startTestServer, type TestServer } from '../helpers/server.js';
import { B, caller, loadSeedDay, SEED_BODY } from '../helpers/battles.js';

/**
 * Historical battles through the API, over the seed's day (see helpers/battles.ts for the candles). Every fill,
 * equity and rank below was computed by hand from the CSV rows with the documented rules (an independent
 * Decimal script, not this code): a market order at T fills at the close of the candle that closed by T,
 * ± 0.01 % slippage (floor: the orders are small against the 24 h volume, except the 1 ETH orders, whose
 * slippage is 0.1 × 1 / 24 h volume), fee 0.1 %; a resting order fires on the next candle's range; the end
 * sells what is left at the last close.
 */
type Row = Record<string, any>;
const byAgent = (list: Row[], id: string) => list.find((x) => x.agent_id === id)!;

/** A WebSocket subscribed to one battle (seed spelling), keeping every frame. */
async function watch(s: TestServer, apiKey: string, battleId: string): Promise<{ frames: Row[]; close: () => void }> {
  const ws = new WebSocket(`${s.url.replace('http', 'ws')}/ws/v1?api_key=${apiKey}`);
  const frames: Row[] = [];
  ws.on('message', (d: Buffer) => frames.push(JSON.parse(d.toString('utf8'))));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(JSON.stringify({ action: 'subscribe', channel: 'battle', battle_id: battleId }));
  for (let i = 0; i < 200 && !frames.some((f) => f.type === 'subscribed'); i++) await new Promise((r) => setTimeout(r, 10));
  return { frames, close: () => ws.close() };
}

for (const backend of backends()) {
  t.test(`historical battles on ${backend.name}`, async (t) => {
    const s = await startTestServer(backend);
    t.teardown(() => s.stop());
    await loadSeedDay(s.engine.db);
    const owner = await registerAndLogin(s, { starting_balance: '10000' });
    const { call, ok } = caller(s, owner.jwt);
    const a1: string = owner.reg.agent_id;
    const a2: string = (await ok('POST', '/api/v1/agents', { display_name: 'RSIScalper', starting_balance: '10000' })).agent_id;

    t.test('GET /battles/presets: the 8 presets with the seed\'s durations, balances and intervals', async (t) => {
      const p = await ok('GET', `${B}/presets`);
      t.same(Object.keys(p), ['quick_1h', 'day_trader', 'marathon', 'scalper_duel', 'survival', 'historical_day', 'historical_week', 'historical_month']);
      t.same(Object.values(p).map((x: any) => [x.name, x.duration_hours, x.starting_balance, x.candle_interval]), [
        ['Quick Sprint', 1, '10000.00000000', null], ['Day Trader', 24, '10000.00000000', null], ['Marathon', 168, '10000.00000000', null],
        ['Scalper Duel', 4, '5000.00000000', null], ['Survival Mode', null, '10000.00000000', null], ['Historical Day', 24, '10000.00000000', '1m'],
        ['Historical Week', 168, '10000.00000000', '5m'], ['Historical Month', 720, '10000.00000000', '1h'],
      ]);
      t.same(p.scalper_duel.allowed_pairs, ['BTCUSDT', 'ETHUSDT']);
    });

    t.test('orders for each agent, batches and the worker pool: every fill, equity and rank by hand; stop after the end; replay', async (t) => {
      const bid: string = (await ok('POST', B, { ...SEED_BODY, name: 'By hand' })).battle_id;
      await ok('POST', `${B}/${bid}/participants`, { agent_id: a1 });
      await ok('POST', `${B}/${bid}/participants`, { agent_id: a2 });
      const ws = await watch(s, owner.accountKey['x-api-key'], bid);
      t.teardown(() => ws.close());
      await ok('POST', `${B}/${bid}/start`);
      // At 00:01 the last closed candles are 00:00's.
      t.match(await ok('POST', `${B}/${bid}/step`), { step: 1, virtual_time: '2025-01-15T00:01:00.000Z', prices: { BTCUSDT: '94528.48000000', ETHUSDT: '3308.27420000' } });
      t.match(await ok('GET', `${B}/${bid}/market/prices`), { battle_id: bid, virtual_time: '2025-01-15T00:01:00.000Z', prices: { BTCUSDT: '94528.48000000', ETHUSDT: '3308.27420000' } });
      // 94528.48 × 1.0001 = 94537.932848; × 0.1 = 9453.7932848 → fee 9.45379328.
      const buy = await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a1, symbol: 'BTCUSDT', side: 'buy', order_type: 'market', quantity: '0.1' });
      t.match(buy, { status: 'filled', battle_id: bid, agent_id: a1, executed_price: '94537.93284800', fee: '9.45379328', total_cost: '9463.24707808', filled_at: '2025-01-15T00:01:00.000Z' });
      const limit = await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a2, symbol: 'ethusdt', side: 'buy', type: 'limit', quantity: '1', price: '3290' });
      t.match(limit, { status: 'pending', locked_amount: '3293.29000000' });
      t.match(byAgent((await ok('POST', `${B}/${bid}/step/batch`, { steps: 98 })).participants, a2), { trade_count: 0 });
      // 01:39's candle (revealed by step 100) opened at 3293.8668 and fell to 3286.6526: the limit fills at 3290.
      const s100 = await ok('POST', `${B}/${bid}/step`);
      t.match(s100, { step: 100, virtual_time: '2025-01-15T01:40:00.000Z' });
      t.match(byAgent(s100.participants, a2), { trade_count: 1, equity: '9993.36260000', pnl: '-6.63740000' });
      t.match(await ok('POST', `${B}/${bid}/step/batch`, { steps: 620 }), { step: 720, virtual_time: '2025-01-15T12:00:00.000Z', prices: { BTCUSDT: '93662.20000000' } });
      const sell = await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a1, symbol: 'BTCUSDT', side: 'sell', type: 'market', quantity: '0.1' });
      // (93652.83378 − 94632.4707808) × 0.1 − 9.36528338 (the average entry includes the buy fee).
      t.match(sell, { status: 'filled', executed_price: '93652.83378000', fee: '9.36528338', realized_pnl: '-107.32898346' });
      s.engine.battles.workerCellsMin = 1;
      t.teardown(() => void (s.engine.battles.workerCellsMin = 100_000));
      const workers = s.engine.battles.stats.worker_batches;
      const end = await ok('POST', `${B}/${bid}/step/batch`, { steps: 10000 });
      t.equal(s.engine.battles.stats.worker_batches, workers + 1, 'the last batch ran in the pool (npx tsc -p . builds the worker)');
      // The end sells a2's 1 ETH at 23:59's close 3285.5186, slippage 0.1 × 1 / 143.8… (24 h volume): 3283.23413093.
      t.match(end, { step: 1440, is_complete: true, status: 'completed', virtual_time: '2025-01-16T00:00:00.000Z' });
      t.match(byAgent(end.participants, a1), { equity: '9892.67101654', pnl: '-107.32898346', trade_count: 2 });
      t.match(byAgent(end.participants, a2), { equity: '9986.66089680', pnl: '-13.33910320', trade_count: 2 });
      t.match(await call('POST', `${B}/${bid}/trade/order`, { agent_id: a1, symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.1' }), { status: 409 });
      const stopped = await ok('POST', `${B}/${bid}/stop`);
      t.match(stopped, { status: 'completed', final_rankings: [{ rank: 1, agent_id: a2 }, { rank: 2, agent_id: a1 }] });
      // Subscribers: battle:update after every step call (5), battle:trade for each fill (4), battle:status at start and end.
      const pushes = ws.frames.filter((f) => f.channel === 'battle');
      t.same(pushes.filter((f) => f.type === 'battle:update').map((f) => f.data.step), [1, 99, 100, 720, 1440]);
      t.same(pushes.filter((f) => f.type === 'battle:trade').map((f) => [f.data.agent_id, f.data.symbol, f.data.side, f.data.price, f.data.timestamp]), [
        [a1, 'BTCUSDT', 'buy', '94537.93284800', '2025-01-15T00:01:00.000Z'], [a2, 'ETHUSDT', 'buy', '3290.00000000', '2025-01-15T01:40:00.000Z'],
        [a1, 'BTCUSDT', 'sell', '93652.83378000', '2025-01-15T12:00:00.000Z'], [a2, 'ETHUSDT', 'sell', '3283.23413093', '2025-01-16T00:00:00.000Z'],
      ]);
      t.same(pushes.filter((f) => f.type === 'battle:status').map((f) => f.data.status), ['active', 'completed']);
      t.match(pushes.find((f) => f.type === 'battle:update' && f.data.step === 100).data, { battle_id: bid, virtual_time: '2025-01-15T01:40:00.000Z', participants: [{ agent_id: a1 }, { agent_id: a2, equity: '9993.36260000' }] });
      t.match(stopped.participants, [{ agent_id: a1, final_rank: 2, final_equity: '9892.67101654', status: 'stopped' }, { agent_id: a2, final_rank: 1, final_equity: '9986.66089680' }]);
      const results = await ok('GET', `${B}/${bid}/results`);
      t.match(results.rankings, [
        { rank: 1, agent_id: a2, final_equity: '9986.66089680', roi_pct: '-0.13339103', total_pnl: '-13.33910320', trade_count: 2, closed_trades: 1, win_rate: '0.00000000', profit_factor: '0.00000000', best_trade: '-13.33910320' },
        { rank: 2, agent_id: a1, final_equity: '9892.67101654', roi_pct: '-1.07328983', total_pnl: '-107.32898346', trade_count: 2, closed_trades: 1, win_rate: '0.00000000' },
      ]);

      // Replay: equity points at the start, after each fill, every hour of data and at the end (27 instants).
      const replay = await ok('GET', `${B}/${bid}/replay`);
      t.equal(replay.total, 27);
      t.same(replay.snapshots[0], {
        timestamp: '2025-01-15T00:00:00.000Z',
        participants: [a1, a2].map((id, i) => ({ agent_id: id, agent_name: i === 0 ? "Tester's Agent" : 'RSIScalper', equity: '10000.00000000', available_cash: '10000.00000000', position_value: '0.00000000', unrealized_pnl: '0.00000000', realized_pnl: '0.00000000', trade_count: 0 })),
      });
      t.match(replay.snapshots.find((x: Row) => x.timestamp === '2025-01-15T01:40:00.000Z'), { participants: [{ agent_id: a2, equity: '9993.36260000', trade_count: 1 }] });
      t.match(replay.snapshots.at(-1), { timestamp: '2025-01-16T00:00:00.000Z', participants: [{ agent_id: a1, equity: '9892.67101654' }, { agent_id: a2, equity: '9986.66089680' }] });
      t.equal((await ok('GET', `${B}/${bid}/replay?limit=2&offset=25`)).snapshots.length, 2);

      const copy = await call('POST', `${B}/${bid}/replay`, { override_config: { starting_balance: '20000.00' }, agent_ids: [a2, a1] });
      t.equal(copy.status, 201);
      t.match(copy.body, { status: 'draft', name: 'Replay: By hand', battle_mode: 'historical', starting_balance: '20000.00000000', ranking_metric: 'roi_pct', backtest_config: { start_time: '2025-01-15T00:00:00.000Z', end_time: '2025-01-16T00:00:00.000Z', candle_interval: '1m' } });
      t.not(copy.body.battle_id, bid);
      t.same(copy.body.participants.map((p: Row) => p.agent_id), [a2, a1]);
      const same = await ok('POST', `${B}/${bid}/replay`, {});
      t.match(same, { starting_balance: '10000.00000000', participants: [{ agent_id: a1 }, { agent_id: a2 }] });
      t.match(await call('POST', `${B}/${copy.body.battle_id}/replay`, {}), { status: 409, body: { error: { code: 'BATTLE_INVALID_STATE' } } }, 'only a completed battle can be replayed');
    });

    t.test('idle battles leave memory and come back where they were: the same fills, equities and ranks', async (t) => {
      const bt = s.engine.battles;
      const hour = 60 * 60_000;
      bt.sweep(Date.now() + hour); // the battles of earlier tests
      t.equal(bt.loaded, 0);
      const draft: string = (await ok('POST', B, { ...SEED_BODY, name: 'Idle draft' })).battle_id;
      await ok('POST', `${B}/${draft}/participants`, { agent_id: a1 });
      const bid: string = (await ok('POST', B, { ...SEED_BODY, name: 'Idle' })).battle_id;
      for (const id of [a1, a2]) await ok('POST', `${B}/${bid}/participants`, { agent_id: id });
      await ok('POST', `${B}/${bid}/start`);
      await ok('POST', `${B}/${bid}/step`);
      await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a1, symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.1' });
      await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a2, symbol: 'ETHUSDT', side: 'buy', type: 'limit', quantity: '1', price: '3290' });
      await ok('POST', `${B}/${bid}/step/batch`, { steps: 98 });
      t.equal(bt.sweep(Date.now() + 5 * 60_000), 0, 'an unfinished battle stays a while');
      t.equal(bt.sweep(Date.now() + 11 * 60_000), 2, 'then the draft and the halfway battle leave');
      t.equal(bt.loaded, 0);
      // The same figures as the battle of the test above, which never left memory.
      const s100 = await ok('POST', `${B}/${bid}/step`);
      t.match(s100, { step: 100, virtual_time: '2025-01-15T01:40:00.000Z' });
      t.match(byAgent(s100.participants, a2), { trade_count: 1, equity: '9993.36260000', pnl: '-6.63740000' }, 'the resting limit came back and filled');
      await ok('POST', `${B}/${bid}/step/batch`, { steps: 620 });
      t.equal(bt.sweep(Date.now() + hour), 1);
      t.match(await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a1, symbol: 'BTCUSDT', side: 'sell', type: 'market', quantity: '0.1' }), { executed_price: '93652.83378000', realized_pnl: '-107.32898346' });
      const end = await ok('POST', `${B}/${bid}/step/batch`, { steps: 10000 });
      t.match(byAgent(end.participants, a1), { equity: '9892.67101654', trade_count: 2 });
      t.match(byAgent(end.participants, a2), { equity: '9986.66089680', trade_count: 2 });
      const results = await ok('GET', `${B}/${bid}/results`);
      t.equal(bt.sweep(Date.now() + 30_000), 0, 'a finished battle stays a minute for the reads that follow');
      t.equal(bt.sweep(Date.now() + 61_000), 1);
      t.same(await ok('GET', `${B}/${bid}/results`), results, 'results read after it left are the same');
      t.match((await ok('GET', `${B}/${draft}`)).participants, [{ agent_id: a1 }], 'the draft is back as it was');
    });

    t.test('a paused agent\'s orders are refused; the battle reads paused until every agent is back', async (t) => {
      const bid: string = (await ok('POST', B, { ...SEED_BODY, name: 'Pause' })).battle_id;
      for (const id of [a1, a2]) await ok('POST', `${B}/${bid}/participants`, { agent_id: id });
      await ok('POST', `${B}/${bid}/start`);
      await ok('POST', `${B}/${bid}/step`);
      t.match(await ok('POST', `${B}/${bid}/pause/${a2}`), { agent_id: a2, status: 'paused', battle_status: 'paused' });
      t.equal((await ok('GET', `${B}/${bid}`)).status, 'paused');
      t.match(await call('POST', `${B}/${bid}/trade/order`, { agent_id: a2, symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.01' }), { status: 409, body: { error: { code: 'BATTLE_INVALID_STATE' } } });
      t.match(await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a1, symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.01' }), { status: 'filled' });
      t.match(await ok('POST', `${B}/${bid}/step`), { step: 2, status: 'paused' }, 'the shared clock keeps going');
      t.match(await ok('POST', `${B}/${bid}/resume/${a2}`), { status: 'active', battle_status: 'active' });
      t.match(await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a2, symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.01' }), { status: 'filled' });
      const live = await ok('GET', `${B}/${bid}/live`);
      t.match(live, { battle_id: bid, status: 'active', elapsed_seconds: 120 });
      t.equal(live.rankings.length, 2);
      // Stopped early: positions are sold at the last close and the battle is ranked.
      const stopped = await ok('POST', `${B}/${bid}/stop`);
      t.match(stopped, { status: 'completed', current_step: 2 });
      t.ok(stopped.final_rankings.every((r: Row) => r.trade_count === 2), 'each bought once and was sold out at the stop');
    });

    t.test('409 BATTLE_INVALID_STATE for every transition the lifecycle does not allow', async (t) => {
      const mk = async (body: Row, agents: string[]) => {
        const id: string = (await ok('POST', B, body)).battle_id;
        for (const a of agents) await ok('POST', `${B}/${id}/participants`, { agent_id: a });
        return id;
      };
      const live = { name: 'L', battle_mode: 'live', duration_minutes: 60 };
      const lone = await mk(SEED_BODY, [a1]);
      const draft = await mk(SEED_BODY, [a1, a2]);
      const active = await mk(SEED_BODY, [a1, a2]);
      await ok('POST', `${B}/${active}/start`);
      const done = await mk(SEED_BODY, [a1, a2]);
      await ok('POST', `${B}/${done}/start`);
      await ok('POST', `${B}/${done}/stop`);
      const cancelled = await mk(SEED_BODY, [a1, a2]);
      await ok('POST', `${B}/${cancelled}/start`);
      t.equal((await call('DELETE', `${B}/${cancelled}`)).status, 204);
      t.match(await ok('GET', `${B}/${cancelled}`), { status: 'cancelled', final_rankings: null });
      const liveDraft = await mk(live, [a1, a2]);
      const cases: Array<[string, string, string, Row?]> = [
        ['start with one participant', 'POST', `${B}/${lone}/start`],
        ['add the same agent twice', 'POST', `${B}/${draft}/participants`, { agent_id: a1 }],
        ['stop a draft', 'POST', `${B}/${draft}/stop`],
        ['step a draft', 'POST', `${B}/${draft}/step`],
        ['order in a draft', 'POST', `${B}/${draft}/trade/order`, { agent_id: a1, symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.1' }],
        ['pause in a draft', 'POST', `${B}/${draft}/pause/${a1}`],
        ['live standings of a draft', 'GET', `${B}/${draft}/live`],
        ['results of a draft', 'GET', `${B}/${draft}/results`],
        ['prices of a draft', 'GET', `${B}/${draft}/market/prices`],
        ['replay a draft', 'POST', `${B}/${draft}/replay`, {}],
        ['start an active battle', 'POST', `${B}/${active}/start`],
        ['edit an active battle', 'PUT', `${B}/${active}`, { name: 'x' }],
        ['add to an active battle', 'POST', `${B}/${active}/participants`, { agent_id: a1 }],
        ['remove from an active battle', 'DELETE', `${B}/${active}/participants/${a1}`],
        ['resume an agent that is not paused', 'POST', `${B}/${active}/resume/${a1}`],
        ['results of an active battle', 'GET', `${B}/${active}/results`],
        ['start a completed battle', 'POST', `${B}/${done}/start`],
        ['step a completed battle', 'POST', `${B}/${done}/step/batch`, { steps: 5 }],
        ['pause in a completed battle', 'POST', `${B}/${done}/pause/${a1}`],
        ['edit a completed battle', 'PUT', `${B}/${done}`, { name: 'x' }],
        ['live standings of a completed battle', 'GET', `${B}/${done}/live`],
        ['start a cancelled battle', 'POST', `${B}/${cancelled}/start`],
        ['stop a cancelled battle', 'POST', `${B}/${cancelled}/stop`],
        ['step a cancelled battle', 'POST', `${B}/${cancelled}/step`],
        ['step a live battle', 'POST', `${B}/${liveDraft}/step`],
        ['historical prices of a live battle', 'GET', `${B}/${liveDraft}/market/prices`],
      ];
      for (const [what, method, path, body] of cases) {
        const r = await call(method, path, body);
        t.equal(r.status, 409, `${what}: ${JSON.stringify(r.body)}`);
        t.equal(r.body.error?.code, 'BATTLE_INVALID_STATE', what);
      }
      t.match(await ok('POST', `${B}/${done}/stop`), { status: 'completed' }, 'a repeated stop answers the completed battle');
      t.match(await call('DELETE', `${B}/${draft}/participants/${a2}`), { status: 204 });
      t.match(await call('DELETE', `${B}/${draft}/participants/${a2}`), { status: 404, body: { error: { code: 'BATTLE_NOT_FOUND' } } });
      t.match(await ok('PUT', `${B}/${draft}`, { name: 'Renamed', starting_balance: '2500', ranking_metric: 'total_pnl' }), { name: 'Renamed', starting_balance: '2500.00000000', ranking_metric: 'total_pnl', status: 'draft' });
      t.equal((await call('DELETE', `${B}/${cancelled}`)).status, 204, 'deleting a cancelled battle removes it');
      t.equal((await call('GET', `${B}/${cancelled}`)).status, 404);
    });

    t.test('isolation: another account\'s battle and agents; JWT only', async (t) => {
      const bid: string = (await ok('POST', B, SEED_BODY)).battle_id;
      await ok('POST', `${B}/${bid}/participants`, { agent_id: a1 });
      const other = await registerAndLogin(s, {});
      const them = caller(s, other.jwt);
      for (const [method, path, body] of [
        ['GET', `${B}/${bid}`], ['PUT', `${B}/${bid}`, { name: 'mine' }], ['DELETE', `${B}/${bid}`], ['POST', `${B}/${bid}/start`],
        ['POST', `${B}/${bid}/participants`, { agent_id: other.reg.agent_id }], ['POST', `${B}/${bid}/step`], ['GET', `${B}/${bid}/replay`],
        ['POST', `${B}/${bid}/trade/order`, { agent_id: other.reg.agent_id, symbol: 'BTCUSDT', side: 'buy', quantity: '1' }],
      ] as Array<[string, string, Row?]>) {
        t.match(await them.call(method, path, body), { status: 403, body: { error: { code: 'PERMISSION_DENIED' } } }, `${method} ${path}`);
      }
      t.same((await them.ok('GET', B)).battles, [], 'the list shows only the caller\'s battles');
      t.match(await call('POST', `${B}/${bid}/participants`, { agent_id: other.reg.agent_id }), { status: 403, body: { error: { code: 'PERMISSION_DENIED' } } }, 'another account\'s agent cannot be added');
      t.match(await call('GET', `${B}/00000000-0000-4000-8000-000000000000`), { status: 404, body: { error: { code: 'BATTLE_NOT_FOUND' } } });
      t.equal((await s.call('GET', `${B}/${bid}`, { headers: owner.agentKey })).status, 401, 'an API key alone is refused');
      t.equal((await s.call('GET', `${B}/${bid}`, { headers: { ...owner.agentKey, ...owner.jwt } })).status, 200, 'the official client\'s key + JWT pair works');
      const list = await ok('GET', `${B}?status=draft&limit=2`);
      t.equal(list.limit, 2);
      t.ok(list.total >= 1 && list.battles.every((b: Row) => b.status === 'draft'));
    });

    t.test('create: presets and validation', async (t) => {
      t.match(await ok('POST', B, { name: 'Day', preset: 'historical_day', backtest_config: { start_time: '2025-01-15T00:00:00Z', pairs: ['BTCUSDT'] } }), {
        battle_mode: 'historical', preset: 'historical_day', backtest_config: { end_time: '2025-01-16T00:00:00.000Z', candle_interval: '1m' },
      });
      t.match(await ok('POST', B, { name: 'Duel', preset: 'scalper_duel' }), { battle_mode: 'live', starting_balance: '5000.00000000', duration_minutes: 240 });
      t.match(await ok('POST', B, { name: 'Secs', battle_mode: 'historical', backtest_config: { ...SEED_BODY.backtest_config, candle_interval: 60 } }), { backtest_config: { candle_interval: '1m' } });
      for (const [body, field] of [
        [{ name: 'x', battle_mode: 'historical' }, 'backtest_config.start_time'],
        [{ name: 'x', preset: 'nope' }, 'preset'],
        [{ name: 'x', ranking_metric: 'luck' }, 'ranking_metric'],
        [{ name: 'x', starting_balance: '0' }, 'starting_balance'],
        [{ name: 'x', battle_mode: 'historical', backtest_config: { ...SEED_BODY.backtest_config, candle_interval: '7m' } }, 'backtest_config.candle_interval'],
        [{ name: 'x', battle_mode: 'historical', backtest_config: { ...SEED_BODY.backtest_config, end_time: '2025-01-15T00:00:30Z' } }, 'backtest_config.end_time'],
      ] as Array<[Row, string]>) {
        t.match(await call('POST', B, body), { status: 422, body: { error: { code: 'VALIDATION_ERROR', details: { field } } } }, field);
      }
      t.match(await call('POST', B, { ...SEED_BODY, backtest_config: { ...SEED_BODY.backtest_config, pairs: ['BTCUSDT', 'SOLUSDT'] } }), { status: 400, body: { error: { code: 'BACKTEST_NO_DATA', details: { missing: ['SOLUSDT'] } } } });
    });
  });
}
