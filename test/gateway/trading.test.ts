import t from 'tap';
import { backends, registerAndLogin, startTestServer, type TestServer } from '../helpers/server.js';

/** Prices are injected as ticks; a first large-volume tick keeps slippage at its 0.01 % floor. */
const tick = (s: TestServer, symbol: string, price: string, quantity = '1') =>
  s.engine.market.ingest({ symbol, price, quantity, time: Date.now() });

const settle = async (s: TestServer) => {
  await new Promise((r) => setImmediate(r));
  await s.engine.journal.flush();
};

for (const backend of backends()) {
  t.test(`trading on ${backend.name}`, async (t) => {
    const s = await startTestServer(backend);
    t.teardown(() => s.stop());
    tick(s, 'BTCUSDT', '50000.00', '1000000');

    t.test('market buy, limit buy filled by a tick, stop-loss sell: every balance, fee and PnL to the decimal', async (t) => {
      const { agentKey: h } = await registerAndLogin(s, { starting_balance: '10000' });
      const buy = await s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'btcusdt', side: 'buy', type: 'market', quantity: '0.03' } });
      t.equal(buy.status, 201, JSON.stringify(buy.body));
      t.match(buy.body, { status: 'filled', symbol: 'BTCUSDT', executed_price: '50005.00000000', executed_qty: '0.03000000', fee: '1.50015000', total_cost: '1501.65015000', slippage_pct: '0.010000' });
      let bal = (await s.call('GET', '/api/v1/account/balance', { headers: h })).body;
      t.same(bal.balances, [
        { asset: 'USDT', available: '8498.34985000', locked: '0.00000000', total: '8498.34985000' },
        { asset: 'BTC', available: '0.03000000', locked: '0.00000000', total: '0.03000000' },
      ]);
      t.equal(bal.total_equity_usdt, '9998.34985000');

      const limit = await s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.01', price: '49000' } });
      t.equal(limit.status, 201, JSON.stringify(limit.body));
      t.match(limit.body, { status: 'pending', price: '49000.00000000', locked_amount: '490.49000000' });
      bal = (await s.call('GET', '/api/v1/account/balance', { headers: h })).body;
      t.same(bal.balances[0], { asset: 'USDT', available: '8007.85985000', locked: '490.49000000', total: '8498.34985000' });
      const open = await s.call('GET', '/api/v1/trade/orders/open', { headers: h });
      t.equal(open.body.total, 1);

      tick(s, 'BTCUSDT', '49500.00');
      await settle(s);
      t.equal((await s.call('GET', `/api/v1/trade/order/${limit.body.order_id}`, { headers: h })).body.status, 'pending', 'not crossed yet');
      tick(s, 'BTCUSDT', '48500.00');
      await settle(s);
      const filled = (await s.call('GET', `/api/v1/trade/order/${limit.body.order_id}`, { headers: h })).body;
      t.match(filled, { status: 'filled', executed_price: '48504.85000000', fee: '0.48504850' });
      bal = (await s.call('GET', '/api/v1/account/balance', { headers: h })).body;
      t.same(bal.balances[0], { asset: 'USDT', available: '8012.81630150', locked: '0.00000000', total: '8012.81630150' }, 'unused hold released');
      let pos = (await s.call('GET', '/api/v1/account/positions', { headers: h })).body.positions;
      t.match(pos, [{ symbol: 'BTCUSDT', asset: 'BTC', quantity: '0.04000000', avg_entry_price: '49679.59246250', current_price: '48500.00000000' }]);

      const stop = await s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'BTCUSDT', side: 'sell', type: 'stop_loss', quantity: '0.04', trigger_price: '48000' } });
      t.equal(stop.status, 201, JSON.stringify(stop.body));
      t.match(stop.body, { status: 'pending', locked_amount: '0.04000000' });
      tick(s, 'BTCUSDT', '48100.00');
      await settle(s);
      t.equal((await s.call('GET', `/api/v1/trade/order/${stop.body.order_id}`, { headers: h })).body.status, 'pending', 'a stop-loss sell waits for a fall');
      tick(s, 'BTCUSDT', '47900.00');
      await settle(s);
      const stopped = (await s.call('GET', `/api/v1/trade/order/${stop.body.order_id}`, { headers: h })).body;
      t.match(stopped, { status: 'filled', executed_price: '47895.21000000', fee: '1.91580840' });
      const pf = (await s.call('GET', '/api/v1/account/portfolio', { headers: h })).body;
      t.match(pf, { total_equity: '9926.70889310', available_cash: '9926.70889310', realized_pnl: '-73.29110690', unrealized_pnl: '0.00000000', total_pnl: '-73.29110690', roi_pct: '-0.73291107', positions: [] });
      const hist = (await s.call('GET', '/api/v1/trade/history', { headers: h })).body;
      t.equal(hist.total, 3);
      t.match(hist.trades[0], { side: 'sell', quantity: '0.04000000', price: '47895.21000000', fee: '1.91580840', realized_pnl: '-73.29110690', total: '1913.89259160' });
      const pnl = (await s.call('GET', '/api/v1/account/pnl?period=1d', { headers: h })).body;
      t.match(pnl, { period: '1d', realized_pnl: '-73.29110690', fees_paid: '3.90100690', net_pnl: '-73.29110690', winning_trades: 0, losing_trades: 1, win_rate: '0.00000000' });
    });

    t.test('rejected orders change nothing', async (t) => {
      const { agentKey: h } = await registerAndLogin(s, { starting_balance: '1000' });
      const before = (await s.call('GET', '/api/v1/account/balance', { headers: h })).body;
      const cases: Array<[Record<string, unknown>, number, string]> = [
        [{ symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '1' }, 400, 'ORDER_REJECTED'],
        [{ symbol: 'NOPEUSDT', side: 'buy', type: 'market', quantity: '1' }, 400, 'INVALID_SYMBOL'],
        [{ symbol: 'BTCUSDT', side: 'sell', type: 'market', quantity: '0.001' }, 400, 'INSUFFICIENT_BALANCE'],
        [{ symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.001' }, 422, 'VALIDATION_ERROR'],
        [{ symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.001', price: '5' }, 422, 'VALIDATION_ERROR'],
        [{ symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '-1' }, 422, 'VALIDATION_ERROR'],
        [{ symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '1e-3' }, 422, 'VALIDATION_ERROR'],
        [{ symbol: 'BTCUSDT', side: 'hold', type: 'market', quantity: '0.001' }, 422, 'VALIDATION_ERROR'],
        [{ symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.0000001' }, 400, 'INVALID_QUANTITY'],
      ];
      for (const [body, status, code] of cases) {
        const r = await s.call('POST', '/api/v1/trade/order', { headers: h, body });
        t.equal(r.status, status, JSON.stringify(body));
        t.equal(r.body.error?.code, code, JSON.stringify(r.body));
      }
      t.same((await s.call('GET', '/api/v1/account/balance', { headers: h })).body, before);
      t.equal((await s.call('GET', '/api/v1/trade/orders', { headers: h })).body.total, 0);
    });

    t.test('client_order_id is idempotent; cancel releases the hold; cancelling twice is 400', async (t) => {
      const { agentKey: h } = await registerAndLogin(s, { starting_balance: '10000' });
      const body = { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.01', price: '40000', client_order_id: 'my-1' };
      const a = await s.call('POST', '/api/v1/trade/order', { headers: h, body });
      const b = await s.call('POST', '/api/v1/trade/order', { headers: h, body });
      t.equal(a.body.order_id, b.body.order_id);
      t.equal((await s.call('GET', '/api/v1/trade/orders/open', { headers: h })).body.total, 1);
      const c = await s.call('DELETE', `/api/v1/trade/order/${a.body.order_id}`, { headers: h });
      t.match(c.body, { status: 'cancelled', unlocked_amount: '400.40000000' });
      const bal = (await s.call('GET', '/api/v1/account/balance', { headers: h })).body;
      t.same(bal.balances[0], { asset: 'USDT', available: '10000.00000000', locked: '0.00000000', total: '10000.00000000' });
      const again = await s.call('DELETE', `/api/v1/trade/order/${a.body.order_id}`, { headers: h });
      t.equal(again.status, 400);
      t.equal(again.body.error.code, 'ORDER_NOT_CANCELLABLE');
      const other = await registerAndLogin(s);
      const peek = await s.call('GET', `/api/v1/trade/order/${a.body.order_id}`, { headers: other.agentKey });
      t.equal(peek.status, 404);
    });

    t.test('the daily loss limit halts trading with 403 DAILY_LOSS_LIMIT', async (t) => {
      const { agentKey: h } = await registerAndLogin(s, { starting_balance: '5000' });
      await s.call('PUT', '/api/v1/account/risk-profile', { headers: h, body: { max_position_size_pct: 25, daily_loss_limit_pct: 1, max_open_orders: 10 } });
      tick(s, 'ETHUSDT', '3000.00', '1000000');
      t.equal((await s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'ETHUSDT', side: 'buy', type: 'market', quantity: '0.3' } })).status, 201);
      tick(s, 'ETHUSDT', '2500.00');
      t.equal((await s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'ETHUSDT', side: 'sell', type: 'market', quantity: '0.3' } })).status, 201);
      const r = await s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'ETHUSDT', side: 'buy', type: 'market', quantity: '0.1' } });
      t.equal(r.status, 403);
      t.equal(r.body.error.code, 'DAILY_LOSS_LIMIT');
    });

    t.test('account reset needs confirm, cancels orders and restores the balance', async (t) => {
      const { agentKey: h } = await registerAndLogin(s, { starting_balance: '10000' });
      await s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.01', price: '40000' } });
      t.equal((await s.call('POST', '/api/v1/account/reset', { headers: h, body: {} })).status, 422);
      const r = await s.call('POST', '/api/v1/account/reset', { headers: h, body: { confirm: true, new_starting_balance: '2000' } });
      t.equal(r.status, 200);
      t.equal(r.body.new_session.starting_balance, '2000.00000000');
      t.equal(r.body.previous_session.ending_equity, '10000.00000000');
      const bal = (await s.call('GET', '/api/v1/account/balance', { headers: h })).body;
      t.same(bal.balances, [{ asset: 'USDT', available: '2000.00000000', locked: '0.00000000', total: '2000.00000000' }]);
      t.equal((await s.call('GET', '/api/v1/trade/orders/open', { headers: h })).body.total, 0);
      t.equal((await s.call('GET', '/api/v1/trade/orders?status=cancelled', { headers: h })).body.total, 1);
    });

    t.test('account reset sells open positions at market first, recorded as a trade with its realized PnL', async (t) => {
      const { agentKey: h } = await registerAndLogin(s, { starting_balance: '10000' });
      tick(s, 'SOLUSDT', '100.00', '1000000');
      // buy 10 at 100 × 1.0001 = 100.01: gross 1000.1, fee 1.0001, cost 1001.1001, avg entry 100.11001
      t.equal((await s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'SOLUSDT', side: 'buy', type: 'market', quantity: '10' } })).status, 201);
      tick(s, 'SOLUSDT', '110.00');
      const r = await s.call('POST', '/api/v1/account/reset', { headers: h, body: { confirm: true } });
      t.equal(r.status, 200, JSON.stringify(r.body));
      // sell 10 at 110 × 0.9999 = 109.989: gross 1099.89, fee 1.09989, realized (109.989 − 100.11001) × 10 − 1.09989 = 97.69001
      t.same(r.body.closed_positions, [{ symbol: 'SOLUSDT', quantity: '10.00000000', price: '109.98900000', realized_pnl: '97.69001000' }]);
      t.equal(r.body.previous_session.ending_equity, '10098.89990000', 'cash 8998.8999 + 10 × 110');
      const hist = (await s.call('GET', '/api/v1/trade/history?symbol=SOLUSDT&side=sell', { headers: h })).body;
      t.match(hist.trades, [{ side: 'sell', quantity: '10.00000000', price: '109.98900000', fee: '1.09989000', realized_pnl: '97.69001000' }]);
      t.same((await s.call('GET', '/api/v1/account/positions', { headers: h })).body.positions, []);
      t.same((await s.call('GET', '/api/v1/account/balance', { headers: h })).body.balances, [{ asset: 'USDT', available: '10000.00000000', locked: '0.00000000', total: '10000.00000000' }]);
    });

    t.test('a restart replays the journal: balances, positions and resting orders come back', async (t) => {
      const { agentKey: h, reg } = await registerAndLogin(s, { starting_balance: '10000' });
      await s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.02' } });
      const rest = await s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'BTCUSDT', side: 'sell', type: 'take_profit', quantity: '0.01', price: '60000' } });
      const before = (await s.call('GET', '/api/v1/account/portfolio', { headers: h })).body;
      s.engine.trading.evict(reg.agent_id);
      await s.engine.trading.start();
      const after = (await s.call('GET', '/api/v1/account/portfolio', { headers: h })).body;
      t.same({ ...after, timestamp: 0 }, { ...before, timestamp: 0 });
      const rows = await s.engine.db.query<{ available: string; locked: string }>(`SELECT available, locked FROM balances WHERE agent_id = $1 AND asset = 'BTC'`, [reg.agent_id]);
      t.same(rows, [{ available: '0.01000000', locked: '0.01000000' }], 'projection matches the wallet');
      tick(s, 'BTCUSDT', '60001.00');
      await settle(s);
      t.equal((await s.call('GET', `/api/v1/trade/order/${rest.body.order_id}`, { headers: h })).body.status, 'filled', 'restored order still fires');
    });
  });

  t.test(`client_order_ids older than the in-memory window stay idempotent on ${backend.name}`, async (t) => {
    // A wallet keeps 4 ids in its map here (1024 by default); older ones are in its Bloom filter and the orders table.
    const s = await startTestServer(backend, { clientIdsRecent_max: 4 });
    t.teardown(() => s.stop());
    tick(s, 'BTCUSDT', '50000.00', '1000000');
    const { agentKey: h, reg } = await registerAndLogin(s, { starting_balance: '10000' });
    const place = (cid: string, type = 'market') =>
      s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'BTCUSDT', side: 'buy', type, quantity: '0.001', ...(type === 'limit' ? { price: '30000' } : {}), client_order_id: cid } });
    const first: Record<string, string> = {};
    // c0 rests (a limit far below), the others fill at once: 0.001 at 50005 + fee 0.050005 = 50.055005 each.
    first.c0 = (await place('c0', 'limit')).body.order_id;
    for (let i = 1; i < 12; i++) first[`c${i}`] = (await place(`c${i}`)).body.order_id;
    const mapSize = async () => Object.keys((await s.engine.trading.walletOf(reg.agent_id)).client_ids).length;
    t.ok((await mapSize()) <= 8, `the map holds the newest ids only (${await mapSize()})`);
    const balance = async () => (await s.call('GET', '/api/v1/account/balance', { headers: h })).body.balances;
    const before = await balance();
    t.same(before[0], { asset: 'USDT', available: '9419.36494500', locked: '30.03000000', total: '9449.39494500' });

    const repeats = await Promise.all(['c0', 'c1', 'c2', 'c1', 'c11'].map((cid) => place(cid, cid === 'c0' ? 'limit' : 'market')));
    t.same(repeats.map((r) => [r.status, r.body.order_id]), [[201, first.c0], [201, first.c1], [201, first.c2], [201, first.c1], [201, first.c11]], 'old and recent ids answer their first order');
    t.match(repeats[0].body, { status: 'pending' }, 'a resting order is answered as it is now');
    t.same(await balance(), before, 'repeats change nothing');

    // A false positive of the filter: the orders table says "not there", and one order is placed, once.
    const e = (s.engine.trading as unknown as { wallets: Map<string, { older: { add(id: string): void } }> }).wallets.get(reg.agent_id)!;
    e.older.add('phantom');
    const [p1, p2] = await Promise.all([place('phantom'), place('phantom')]);
    t.equal(p1.status, 201);
    t.equal(p1.body.order_id, p2.body.order_id, 'two requests at once make one order');
    t.equal((await s.call('GET', '/api/v1/trade/history', { headers: h })).body.trades.length, 12, 'eleven fills before, one now');

    s.engine.trading.evict(reg.agent_id);
    t.equal((await place('c3')).body.order_id, first.c3, 'after a reload from the journal, an old id still answers its order');
    t.ok((await mapSize()) <= 4, 'the reload keeps only the newest ids in the map');
    const fresh = await place('c12');
    t.equal(fresh.status, 201);
    t.notOk(Object.values(first).includes(fresh.body.order_id), 'a new id makes a new order');
  });
}
