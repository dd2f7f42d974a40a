import t from 'tap';
import WebSocket from 'ws';
import { backends, registerAndLogin, startTestServer, type TestServer } from '../helpers/server.js';
import { B, caller, restartableServer } from '../helpers/battles.js';

/**
 * Live battles: two agents trade through their own keys on fresh battle wallets at injected prices; the
 * battle completes by itself when its duration has passed and ranks them; their own wallets are the same
 * before and after. One battle minute lasts 1 s here (config.battle.minute_ms) and snapshots come every
 * 250 ms. Fills as in trading.test.ts: fee 0.1 %, slippage at its 0.01 % floor (ticks of volume 1,000,000).
 */
type Row = Record<string, any>;
const BATTLE_CLOCK = { battle: { snapshot_interval_ms: 250, minute_ms: 1000 } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tick = (s: TestServer, symbol: string, price: string) => s.engine.market.ingest({ symbol, price, quantity: '1000000', time: Date.now() });

/** A socket that keeps every frame it receives. */
async function listen(s: TestServer, apiKey: string): Promise<{ frames: Row[]; send: (f: unknown) => void; close: () => void }> {
  const ws = new WebSocket(`${s.url.replace('http', 'ws')}/ws/v1?api_key=${apiKey}`);
  const frames: Row[] = [];
  ws.on('message', (d: Buffer) => frames.push(JSON.parse(d.toString('utf8'))));
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { frames, send: (f) => ws.send(JSON.stringify(f)), close: () => ws.close() };
}

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** What an agent's own key shows: balances, positions (without their valuation at the moving price) and its trade history. */
async function ownView(s: TestServer, key: Record<string, string>) {
  const get = async (p: string) => (await s.call('GET', p, { headers: key })).body;
  const positions = (await get('/api/v1/account/positions')).positions.map(({ current_price, market_value, unrealized_pnl, unrealized_pnl_pct, ...held }: Row) => held);
  return { balance: (await get('/api/v1/account/balance')).balances, positions, history: (await get('/api/v1/trade/history')).trades };
}

for (const backend of backends()) {
  t.test(`live battles on ${backend.name}`, async (t) => {
    const s = await startTestServer(backend, BATTLE_CLOCK);
    t.teardown(() => s.stop());
    tick(s, 'BTCUSDT', '50000.00');
    tick(s, 'ETHUSDT', '3000.00');
    const owner = await registerAndLogin(s, { starting_balance: '10000' });
    const { call, ok } = caller(s, owner.jwt);
    const a1: string = owner.reg.agent_id;
    const k1 = owner.agentKey;
    const second = await ok('POST', '/api/v1/agents', { display_name: 'RSIScalper', starting_balance: '10000' });
    const a2: string = second.agent_id;
    const k2 = { 'x-api-key': second.api_key as string };

    t.test('two agents trade through their own keys; the battle completes by itself with correct rankings; own wallets untouched; WebSocket gets all three events', async (t) => {
      // Agent 1's own wallet is not empty, so "untouched" means something: 0.01 BTC at 50005 (fee 0.50005).
      t.match(await s.call('POST', '/api/v1/trade/order', { headers: k1, body: { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.01' } }), { status: 201 });
      const before = [await ownView(s, k1), await ownView(s, k2)];
      t.same(before[0].balance, [
        { asset: 'USDT', available: '9499.44995000', locked: '0.00000000', total: '9499.44995000' },
        { asset: 'BTC', available: '0.01000000', locked: '0.00000000', total: '0.01000000' },
      ]);

      const bid: string = (await ok('POST', B, { name: 'BTC Scalper Duel', battle_mode: 'live', starting_balance: '5000.00', duration_minutes: 5, ranking_metric: 'roi_pct' })).battle_id;
      for (const id of [a1, a2]) await ok('POST', `${B}/${bid}/participants`, { agent_id: id });
      const seed = await listen(s, owner.accountKey['x-api-key']);
      const sdk = await listen(s, owner.reg.agent_api_key);
      const stranger = await listen(s, (await registerAndLogin(s, {})).accountKey['x-api-key']);
      t.teardown(() => [seed, sdk, stranger].forEach((c) => c.close()));
      seed.send({ action: 'subscribe', channel: 'battle', battle_id: bid });
      sdk.send({ action: 'subscribe', channel: `battle:${bid}` });
      stranger.send({ action: 'subscribe', channel: 'battle', battle_id: bid });
      stranger.send({ action: 'subscribe', channel: 'battle:00000000-0000-4000-8000-000000000000' });
      await until('subscriptions', () => seed.frames.some((f) => f.type === 'subscribed') && sdk.frames.some((f) => f.type === 'subscribed') && stranger.frames.length >= 2);
      t.same(seed.frames.find((f) => f.type === 'subscribed'), { type: 'subscribed', channel: `battle:${bid}` });
      t.same(stranger.frames.map((f) => [f.type, f.code]).sort(), [['error', 'BATTLE_NOT_FOUND'], ['error', 'PERMISSION_DENIED']], 'only the owner account may watch');

      const started = await ok('POST', `${B}/${bid}/start`);
      t.match(started, { status: 'active', participants: [{ agent_id: a1, snapshot_balance: '5000.00000000' }, { agent_id: a2, snapshot_balance: '5000.00000000' }] });
      const order = (key: Row, body: Row) => s.call('POST', '/api/v1/trade/order', { headers: key, body });
      // 0.02 BTC at 50005: 1000.1 + fee 1.0001; 0.4 ETH at 3000.3: 1200.12 + fee 1.20012 (both within the live 25 % position limit).
      t.match(await order(k1, { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.02' }), { status: 201, body: { status: 'filled', executed_price: '50005.00000000' } });
      t.match(await order(k2, { symbol: 'ETHUSDT', side: 'buy', type: 'market', quantity: '0.4' }), { status: 201, body: { status: 'filled', executed_price: '3000.30000000' } });
      t.same((await ownView(s, k1)).balance, [
        { asset: 'USDT', available: '3998.89990000', locked: '0.00000000', total: '3998.89990000' },
        { asset: 'BTC', available: '0.02000000', locked: '0.00000000', total: '0.02000000' },
      ], 'the agent\'s own key acts on its battle wallet');
      tick(s, 'BTCUSDT', '51000.00');
      tick(s, 'ETHUSDT', '2900.00');
      // 51000 × 0.9999 = 50994.9; realized (50994.9 − 50055.005) × 0.02 − 1.019898 = 17.778002.
      t.match(await order(k1, { symbol: 'BTCUSDT', side: 'sell', type: 'market', quantity: '0.02' }), { status: 201, body: { executed_price: '50994.90000000', realized_pnl: '17.77800200' } });
      t.match(await ok('POST', `${B}/${bid}/pause/${a2}`), { status: 'paused', battle_status: 'paused' });
      t.match(await order(k2, { symbol: 'ETHUSDT', side: 'sell', type: 'market', quantity: '0.4' }), { status: 409, body: { error: { code: 'BATTLE_INVALID_STATE' } } }, 'a paused agent\'s orders are refused');
      await ok('POST', `${B}/${bid}/resume/${a2}`);
      t.match(await order(k2, { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.001', price: '40000' }), { status: 201, body: { status: 'pending', locked_amount: '40.04000000' } });
      const other = (await ok('POST', B, { name: 'Other', battle_mode: 'live', duration_minutes: 5 })).battle_id;
      for (const id of [a1, a2]) await ok('POST', `${B}/${other}/participants`, { agent_id: id });
      t.match(await call('POST', `${B}/${other}/start`), { status: 409, body: { error: { code: 'BATTLE_INVALID_STATE' } } }, 'one active live battle per agent');
      t.equal((await ok('GET', `${B}/${other}`)).status, 'draft');

      const live = await ok('GET', `${B}/${bid}/live`);
      t.match(live, { battle_id: bid, status: 'active', battle_mode: 'live', remaining_minutes: Number });
      t.match(live.rankings, [{ rank: 1, agent_id: a1, equity: '5017.77800200', trade_count: 2 }, { rank: 2, agent_id: a2, equity: '4958.67988000', trade_count: 1 }]);

      const done = await until('automatic completion', async () => {
        const b = await ok('GET', `${B}/${bid}`);
        return b.status === 'completed' ? b : undefined;
      });
      const lasted = Date.parse(done.ended_at) - Date.parse(done.started_at);
      t.ok(lasted >= 5000 && lasted < 6500, `ended by its clock after 5 battle minutes (${lasted} ms)`);
      const results = await ok('GET', `${B}/${bid}/results`);
      t.match(results.rankings, [
        { rank: 1, agent_id: a1, final_equity: '5017.77800200', roi_pct: '0.35556004', total_pnl: '17.77800200', trade_count: 2, closed_trades: 1, win_rate: '100.00000000' },
        { rank: 2, agent_id: a2, final_equity: '4958.67988000', roi_pct: '-0.82640240', total_pnl: '-41.32012000', trade_count: 1, closed_trades: 0, win_rate: null },
      ]);
      t.same([await ownView(s, k1), await ownView(s, k2)], before, 'each agent\'s own wallet and history are exactly as before the battle');
      t.match(await order(k2, { symbol: 'ETHUSDT', side: 'buy', type: 'market', quantity: '0.01' }), { status: 201 }, 'after the battle the agent trades its own wallet again');
      const rows = await s.engine.db.query<{ status: string }>(`SELECT status FROM orders WHERE battle_id = $1 AND type = 'limit'`, [bid]);
      t.same(rows, [{ status: 'cancelled' }], 'resting battle orders are cancelled at the end');
      const replay = await ok('GET', `${B}/${bid}/replay`);
      t.ok(replay.total >= 15, `equity points every 250 ms (${replay.total})`);
      t.match(replay.snapshots[0].participants, [{ agent_id: a1, equity: '5000.00000000' }, { agent_id: a2, equity: '5000.00000000' }]);
      t.match(replay.snapshots.at(-1).participants, [{ equity: '5017.77800200' }, { equity: '4958.67988000' }]);

      await until('the completion push', () => seed.frames.some((f) => f.type === 'battle:status' && f.data.status === 'completed') && sdk.frames.some((f) => f.data?.status === 'completed'));
      for (const [name, c] of [['seed spelling', seed], ['client spelling', sdk]] as const) {
        const pushes = c.frames.filter((f) => f.channel === 'battle');
        t.ok(pushes.every((f) => f.battle_id === bid), `${name}: every push names the battle`);
        t.same(pushes.filter((f) => f.type === 'battle:status').map((f) => [f.data.event, f.data.status, f.data.agent_id ?? null]), [
          ['started', 'active', null], ['agent_paused', 'paused', a2], ['agent_resumed', 'active', a2], ['completed', 'completed', null],
        ], `${name}: battle:status on each transition`);
        t.same(pushes.filter((f) => f.type === 'battle:trade').map((f) => [f.data.agent_id, f.data.symbol, f.data.side, f.data.quantity, f.data.price]), [
          [a1, 'BTCUSDT', 'buy', '0.02000000', '50005.00000000'], [a2, 'ETHUSDT', 'buy', '0.40000000', '3000.30000000'], [a1, 'BTCUSDT', 'sell', '0.02000000', '50994.90000000'],
        ], `${name}: battle:trade for each fill`);
        const updates = pushes.filter((f) => f.type === 'battle:update');
        t.ok(updates.length >= 10, `${name}: battle:update at every snapshot (${updates.length})`);
        t.match(updates.at(-1)!.data, { battle_id: bid, timestamp: String, participants: [{ agent_id: a1, equity: String, roi_pct: String }, { agent_id: a2 }] });
      }
    });

    t.test('stop before the end ranks at once; stopping again answers the completed battle', async (t) => {
      const bid: string = (await ok('POST', B, { name: 'Short', battle_mode: 'live', ranking_metric: 'total_pnl' })).battle_id;
      for (const id of [a1, a2]) await ok('POST', `${B}/${bid}/participants`, { agent_id: id });
      await ok('POST', `${B}/${bid}/start`);
      const first = await ok('POST', `${B}/${bid}/stop`);
      t.match(first, { status: 'completed', ranking_metric: 'total_pnl', final_rankings: [{ rank: 1, agent_id: a1, total_pnl: '0.00000000' }, { rank: 2, agent_id: a2 }] });
      t.same(await ok('POST', `${B}/${bid}/stop`), first);
    });

    t.test('client_order_id is per wallet: an id the agent used on its own wallet places a new order in the battle, and repeats answer each wallet\'s own order', async (t) => {
      const order = (key: Row, cid: string) => s.call('POST', '/api/v1/trade/order', { headers: key, body: { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.001', price: '30000', client_order_id: cid } });
      const own = await order(k1, 'shared-cid-1');
      t.equal(own.status, 201);
      const bid: string = (await ok('POST', B, { name: 'Ids', battle_mode: 'live', starting_balance: '5000', duration_minutes: 600 })).battle_id;
      for (const id of [a1, a2]) await ok('POST', `${B}/${bid}/participants`, { agent_id: id });
      await ok('POST', `${B}/${bid}/start`);
      // Both agents at once, so they share a group commit: one wallet's row must not fail the other's.
      const [inBattle, other] = await Promise.all([order(k1, 'shared-cid-1'), order(k2, 'shared-cid-1')]);
      t.match(inBattle, { status: 201, body: { status: 'pending', locked_amount: '30.03000000' } });
      t.match(other, { status: 201 });
      t.not(inBattle.body.order_id, own.body.order_id, 'a new order on the battle wallet');
      t.equal((await order(k1, 'shared-cid-1')).body.order_id, inBattle.body.order_id, 'a repeat in the battle answers the battle order');
      t.match((await s.call('GET', '/api/v1/account/balance', { headers: k1 })).body.balances, [{ asset: 'USDT', available: '4969.97000000', locked: '30.03000000' }], 'locked once');
      await ok('POST', `${B}/${bid}/stop`);
      t.equal((await order(k1, 'shared-cid-1')).body.order_id, own.body.order_id, 'back on the own wallet, a repeat answers the own order');
      const rows = await s.engine.db.query<{ battle_id: string | null }>(`SELECT battle_id FROM orders WHERE agent_id = $1 AND client_order_id = 'shared-cid-1' ORDER BY created_at`, [a1]);
      t.same(rows.map((r) => r.battle_id), [null, bid], 'one stored order per wallet');
    });
  });

  t.test(`a running live battle survives a restart on ${backend.name}`, async (t) => {
    const srv = await restartableServer(backend, BATTLE_CLOCK);
    t.teardown(() => srv.stop());
    let s = srv.s();
    tick(s, 'BTCUSDT', '50000.00');
    const owner = await registerAndLogin(s, { starting_balance: '10000' });
    let { ok } = caller(s, owner.jwt);
    const a2: string = (await ok('POST', '/api/v1/agents', { display_name: 'Two' })).agent_id;
    const bid: string = (await ok('POST', B, { name: 'Restart', battle_mode: 'live', starting_balance: '5000', duration_minutes: 600 })).battle_id;
    for (const id of [owner.reg.agent_id, a2]) await ok('POST', `${B}/${bid}/participants`, { agent_id: id });
    await ok('POST', `${B}/${bid}/start`);
    await s.call('POST', '/api/v1/trade/order', { headers: owner.agentKey, body: { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.02' } });
    await sleep(600);
    const points = (await ok('GET', `${B}/${bid}/replay`)).total;

    s = await srv.restart();
    ({ ok } = caller(s, owner.jwt));
    tick(s, 'BTCUSDT', '51000.00');
    t.match(await ok('GET', `${B}/${bid}`), { status: 'active' });
    t.same((await s.call('GET', '/api/v1/account/balance', { headers: owner.agentKey })).body.balances, [
      { asset: 'USDT', available: '3998.89990000', locked: '0.00000000', total: '3998.89990000' },
      { asset: 'BTC', available: '0.02000000', locked: '0.00000000', total: '0.02000000' },
    ], 'the agent\'s key still acts on its battle wallet');
    await until('snapshots after the restart', async () => ((await ok('GET', `${B}/${bid}/replay`)).total > points + 1 ? true : undefined));
    t.match(await s.call('POST', '/api/v1/trade/order', { headers: owner.agentKey, body: { symbol: 'BTCUSDT', side: 'sell', type: 'market', quantity: '0.02' } }), { status: 201, body: { realized_pnl: '17.77800200' } });
    const stopped = await ok('POST', `${B}/${bid}/stop`);
    t.match(stopped.final_rankings, [{ rank: 1, agent_id: owner.reg.agent_id, final_equity: '5017.77800200' }, { rank: 2, agent_id: a2, final_equity: '5000.00000000' }]);
    t.same((await s.call('GET', '/api/v1/account/balance', { headers: owner.agentKey })).body.balances, [
      { asset: 'USDT', available: '10000.00000000', locked: '0.00000000', total: '10000.00000000' },
    ], 'back on its own wallet');
  });
}
