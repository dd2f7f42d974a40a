import t from 'tap';
import { backends, registerAndLogin, startTestServer } from '../helpers/server.js';
import { BT, loadData, scenario, WINDOW } from '../helpers/backtest.js';

/**
 * A backtest over real Bybit 1-minute candles (ADAUSDT, DOGEUSDT, 2025-06-01 00:00–02:00) driven through the
 * API: every fill, balance and metric below was computed by hand from the CSV rows with the documented rules
 * (an independent Decimal script, not this code). Slippage sits at its 0.01 % floor: the orders are tiny
 * against the 24 h volume.
 */
for (const backend of backends()) {
  t.test(`backtests on ${backend.name}`, async (t) => {
    const s = await startTestServer(backend);
    t.teardown(() => s.stop());
    await loadData(s);
    const { agentKey: h } = await registerAndLogin(s, { starting_balance: '10000' });

    t.test('a full session over real candles: each fill, balance and metric', async (t) => {
      const { id, created, started, a, b, c, d, f, ok } = await scenario(s, h);
      t.match(created, { status: 'created', total_steps: 120, estimated_pairs: 2, pairs: ['ADAUSDT', 'DOGEUSDT'], starting_balance: '10000.00000000', strategy_label: 'e2e' });
      // At 00:00 the last closed candles are 23:59's.
      t.match(started, { status: 'running', virtual_time: '2025-06-01T00:00:00.000Z', prices: { ADAUSDT: '0.68540000', DOGEUSDT: '0.19238000' } });
      t.match(a, { status: 'filled', executed_price: '0.68546854', executed_qty: '1000.00000000', fee: '0.68546854', total_cost: '686.15400854', filled_at: '2025-06-01T00:00:00.000Z' });
      t.match(b, { status: 'pending', locked_amount: '960.96000000' });
      t.match(c, { status: 'pending', type: 'stop_loss', locked_amount: '1000.00000000' });
      t.match(d, { status: 'pending', locked_amount: '675.67500000' });
      t.match(f, { status: 'pending', locked_amount: '150.15000000' });
      const again = await ok('POST', `${BT}/${id}/trade/order`, { symbol: 'DOGEUSDT', side: 'buy', type: 'limit', quantity: '1000', price: '0.15', client_order_id: 'far-1' });
      t.equal(again.order_id, f.order_id, 'a repeated client_order_id returns the first order');
      t.match(await ok('DELETE', `${BT}/${id}/trade/order/${f.order_id}`), { cancelled: true, status: 'cancelled', unlocked_amount: '150.15000000' });
      t.match(await ok('DELETE', `${BT}/${id}/trade/order/${f.order_id}`), { cancelled: false, status: 'cancelled' }, 'cancelling twice answers the order as it is');
      t.same((await ok('GET', `${BT}/${id}/account/balance`)).balances, [
        { asset: 'USDT', available: '7677.21099146', locked: '1636.63500000', total: '9313.84599146' },
        { asset: 'ADA', available: '0.00000000', locked: '1000.00000000', total: '1000.00000000' },
      ]);
      t.equal((await ok('GET', `${BT}/${id}/trade/orders/open`)).count, 3);

      const one = await ok('POST', `${BT}/${id}/step`);
      t.match(one, { step: 1, virtual_time: '2025-06-01T00:01:00.000Z', progress_pct: '0.83', orders_filled: [], remaining_steps: 119, is_complete: false, prices: { ADAUSDT: '0.68550000', DOGEUSDT: '0.19240000' } });
      // 00:01's DOGE low 0.19197 reaches the limit (fills at 0.192, never worse); 00:04's ADA low 0.6833 fires the stop, which opened at 0.6842: at the level minus slippage.
      const batch = await ok('POST', `${BT}/${id}/step/batch`, { steps: 4 });
      t.match(batch, { step: 5, virtual_time: '2025-06-01T00:05:00.000Z', steps_executed: 4 });
      t.match(batch.orders_filled, [
        { order_id: b.order_id, status: 'filled', executed_price: '0.19200000', executed_qty: '5000.00000000', fee: '0.96000000', filled_at: '2025-06-01T00:02:00.000Z' },
        { order_id: c.order_id, status: 'filled', executed_price: '0.68343165', fee: '0.68343165', realized_pnl: '-3.40579165', filled_at: '2025-06-01T00:05:00.000Z' },
      ]);
      t.match(batch.portfolio, { total_equity: '9995.03420981', available_cash: '8359.95920981', locked_cash: '675.67500000', positions: [{ symbol: 'DOGEUSDT', quantity: '5000.00000000', current_price: '0.19188000' }] });

      // No look-ahead at the API: at 00:05 the newest visible candle is 00:04's.
      const candles = await ok('GET', `${BT}/${id}/market/candles/adausdt?limit=50`);
      t.equal(candles.count, 50);
      t.ok(candles.candles.every((x: { bucket: string }) => Date.parse(x.bucket) + 60_000 <= Date.parse('2025-06-01T00:05:00Z')), 'every candle closed by the virtual time');
      t.match(candles.candles.at(-1), { bucket: '2025-06-01T00:04:00.000Z', open: '0.68420000', high: '0.68430000', low: '0.68330000', close: '0.68370000', volume: '154946.00000000' });
      t.match(await ok('GET', `${BT}/${id}/market/price/ADAUSDT`), { price: '0.68370000', virtual_time: '2025-06-01T00:05:00.000Z' });
      t.match(await ok('GET', `${BT}/${id}/market/ticker/ADAUSDT`), { open: '0.68360000', high: '0.69490000', low: '0.65400000', close: '0.68370000', volume: '262800438.00000000' });

      // The rest in a worker: 01:54's ADA candle opened at 0.6764 and fell to 0.6745, filling the limit at 0.675;
      // the end sells 1000 ADA at 01:59's close 0.6767 and 5000 DOGE at 0.1893, minus slippage and fee.
      const fast = await ok('POST', `${BT}/${id}/step/batch/fast`, { steps: 500, include_intermediate_trades: true });
      t.match(fast, { step: 120, steps_executed: 115, remaining_steps: 0, is_complete: true, status: 'completed', virtual_time: '2025-06-01T02:00:00.000Z' });
      t.match(fast.orders_filled, [
        { order_id: d.order_id, executed_price: '0.67500000', fee: '0.67500000', filled_at: '2025-06-01T01:55:00.000Z' },
        { symbol: 'ADAUSDT', side: 'sell', executed_price: '0.67663233', fee: '0.67663233', realized_pnl: '0.28069767' },
        { symbol: 'DOGEUSDT', side: 'sell', executed_price: '0.18928107', fee: '0.94640535', realized_pnl: '-15.50105535' },
      ]);
      t.equal(s.engine.backtests.stats.worker_batches, 1, 'fast ran in a worker (npx tsc -p . builds it)');
      t.match(fast.portfolio, { total_equity: '9981.37385213', available_cash: '9981.37385213', locked_cash: '0.00000000', positions: [] });

      const r = await ok('GET', `${BT}/${id}/results`);
      t.match(r.summary, { final_equity: '9981.37385213', total_pnl: '-18.62614787', roi_pct: '-0.18626148', total_trades: 6, closed_trades: 3, total_fees: '4.62693787' });
      t.match(r.metrics, {
        win_rate: '33.33333333', profit_factor: '0.01484635', total_trades: 3, winning_trades: 1, losing_trades: 2,
        // Equity points: 00:00 9999.24599146, 00:02 9997.88599146, 00:05 9995.03420981, 01:00 9992.63420981, 01:55 9979.00920981, 02:00 9981.37385213.
        max_drawdown_pct: '0.20238308', sharpe_ratio: '-88.39566824', sortino_ratio: '-83.32329001',
      });
      t.same(r.by_pair.map((p: { symbol: string; trades: number; net_pnl: string }) => [p.symbol, p.trades, p.net_pnl]), [['ADAUSDT', 4, '-3.12509398'], ['DOGEUSDT', 2, '-15.50105535']]);
      const curve = await ok('GET', `${BT}/${id}/results/equity-curve`);
      t.same(curve.snapshots.map((x: { total_equity: string }) => x.total_equity), ['9999.24599146', '9997.88599146', '9995.03420981', '9992.63420981', '9979.00920981', '9981.37385213']);
      const trades = await ok('GET', `${BT}/${id}/results/trades?limit=2&offset=1`);
      t.match(trades, { total: 6, trades: [{ symbol: 'DOGEUSDT', side: 'buy', type: 'limit' }, { symbol: 'ADAUSDT', side: 'sell', type: 'stop_loss', stop_price: '0.68350000' }] });
      t.equal((await ok('GET', `${BT}/${id}/trade/history`)).count, 6);
      t.match(await ok('GET', `${BT}/${id}/status`), { status: 'completed', current_step: 120, progress_pct: 100, final_equity: '9981.37385213', sharpe_ratio: '-88.39566824' });

      const stepAfter = await s.call('POST', `${BT}/${id}/step`, { headers: h });
      t.equal(stepAfter.status, 409);
      t.match(stepAfter.body.error, { code: 'BACKTEST_INVALID_STATE', details: { current_status: 'completed' } });
      t.match(await ok('POST', `${BT}/${id}/cancel`), { status: 'completed' }, 'cancelling a completed session answers it as it is');
    });

    t.test('idle sessions leave memory and come back exactly as they were', async (t) => {
      const bt = s.engine.backtests;
      const hour = 60 * 60_000;
      bt.sweep(Date.now() + hour); // the sessions of earlier tests
      t.equal(bt.loaded, 0);
      // Session A is evicted mid-run (with resting orders), B runs the same orders without leaving memory.
      const A = await scenario(s, h, 'idle-a');
      await A.ok('POST', `${BT}/${A.id}/step/batch`, { steps: 5 });
      t.equal(bt.sweep(Date.now() + 61_000), 0, 'a running session stays a while');
      t.equal(bt.sweep(Date.now() + 11 * 60_000), 1, 'an unused running session leaves after its idle time');
      t.equal(bt.loaded, 0);
      const B = await scenario(s, h, 'idle-b');
      await B.ok('POST', `${BT}/${B.id}/step/batch`, { steps: 5 });
      const view = (x: typeof A) => x.ok('GET', `${BT}/${x.id}/account/portfolio`);
      t.same(await view(A), await view(B), 'restored: the same portfolio at the same virtual time');
      const [fa, fb] = [await A.ok('POST', `${BT}/${A.id}/step/batch/fast`, { steps: 500 }), await B.ok('POST', `${BT}/${B.id}/step/batch/fast`, { steps: 500 })];
      t.match(fa, { status: 'completed', portfolio: { total_equity: '9981.37385213' } });
      t.same(fa.portfolio, fb.portfolio);

      const results = await A.ok('GET', `${BT}/${A.id}/results`);
      t.equal(bt.sweep(Date.now() + 30_000), 0, 'a finished session stays a minute for the reads that follow');
      t.equal(bt.sweep(Date.now() + 61_000), 2, 'then both finished sessions leave');
      t.equal(bt.loaded, 0);
      t.same(await A.ok('GET', `${BT}/${A.id}/results`), results, 'results read after eviction are the same');
      t.same((await A.ok('GET', `${BT}/${A.id}/results/equity-curve`)).snapshots.map((x: { total_equity: string }) => x.total_equity).at(-1), '9981.37385213');
      t.equal((await A.ok('GET', `${BT}/${A.id}/trade/history`)).count, 6);
      t.equal(bt.loaded, 1, 'the read brought A back');
      t.equal(bt.sweep(Date.now() + hour), 1);
    });

    t.test('create refuses what cannot run', async (t) => {
      const cases: Array<[Record<string, unknown>, number, string]> = [
        [{ ...WINDOW, pairs: ['BTCUSDT'] }, 400, 'BACKTEST_NO_DATA'],
        [{ ...WINDOW, start_time: '2024-01-01T00:00:00Z', end_time: '2024-01-02T00:00:00Z' }, 400, 'BACKTEST_NO_DATA'],
        [{ ...WINDOW, end_time: WINDOW.start_time }, 422, 'VALIDATION_ERROR'],
        [{ ...WINDOW, candle_interval: '7x' }, 422, 'VALIDATION_ERROR'],
        [{ ...WINDOW, starting_balance: '0.5' }, 422, 'VALIDATION_ERROR'],
        [{ ...WINDOW, fee_rate: '0.5' }, 422, 'VALIDATION_ERROR'],
      ];
      for (const [body, status, code] of cases) {
        const r = await s.call('POST', `${BT}/create`, { headers: h, body });
        t.equal(r.status, status, JSON.stringify(body));
        t.equal(r.body.error?.code, code);
      }
    });

    t.test('5-minute candles are folded from 1-minute rows when none are stored', async (t) => {
      const c = await s.call('POST', `${BT}/create`, { headers: h, body: { ...WINDOW, candle_interval: '5m', pairs: ['ADAUSDT'] } });
      t.equal(c.body.total_steps, 24);
      const id = c.body.session_id;
      await s.call('POST', `${BT}/${id}/start`, { headers: h });
      const st = (await s.call('POST', `${BT}/${id}/step`, { headers: h })).body;
      t.match(st, { virtual_time: '2025-06-01T00:05:00.000Z', prices: { ADAUSDT: '0.68370000' } });
      const k = (await s.call('GET', `${BT}/${id}/market/candles/ADAUSDT?limit=1`, { headers: h })).body;
      t.same(k.candles[0], { bucket: '2025-06-01T00:00:00.000Z', time: '2025-06-01T00:00:00.000Z', open: '0.68540000', high: '0.68570000', low: '0.68330000', close: '0.68370000', volume: '389163.00000000', trade_count: 0 });
    });
  });
}
