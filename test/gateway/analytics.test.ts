import t from 'tap';
import { randomUUID } from 'node:crypto';
import { battleStream } from '../../engine/store/streams.js';
import { backends, registerAndLogin, startTestServer, type TestServer } from '../helpers/server.js';

const AN = '/api/v1/analytics';
const H = 3_600_000;
type Hdr = Record<string, string>;

/** A first large-volume tick keeps slippage at its 0.01 % floor for these small orders. */
const tick = (s: TestServer, price: string, quantity = '1') => s.engine.market.ingest({ symbol: 'BTCUSDT', price, quantity, time: Date.now() });
const order = async (s: TestServer, h: Hdr, side: 'buy' | 'sell') => {
  const r = await s.call('POST', '/api/v1/trade/order', { headers: h, body: { symbol: 'BTCUSDT', side, type: 'market', quantity: '0.05' } });
  if (r.status !== 201) throw new Error(`order failed: ${r.status} ${JSON.stringify(r.body)}`);
};
/** Snapshot times are set by the test: hours after the next UTC midnight, so all four fall on one UTC day after the session began. */
const nextMidnight = () => Math.ceil(Date.now() / (24 * H)) * 24 * H;

for (const backend of backends()) {
  t.test(`analytics on ${backend.name}`, async (t) => {
    // No fee and no timer: every equity value below is exact, and snapshots happen only when the test takes them.
    const s = await startTestServer(backend, { feeRate: '0', snapshot_interval_ms: 0 });
    t.teardown(() => s.stop());
    tick(s, '50000', '1000000');

    t.test('performance, history and leaderboard from a known equity path and two round trips', async (t) => {
      const { agentKey: a, accountKey, jwt, reg } = await registerAndLogin(s, { starting_balance: '10000' });
      await s.call('PUT', '/api/v1/account/risk-profile', { headers: a, body: { max_position_size_pct: 100, daily_loss_limit_pct: 100, max_open_orders: 50 } });
      const idle = [];
      for (const name of ['Idle one', 'Idle two']) {
        const r = await s.call('POST', '/api/v1/agents', { headers: jwt, body: { display_name: name, starting_balance: '5000' } });
        t.equal(r.status, 201, JSON.stringify(r.body));
        idle.push(r.body.agent_id as string);
      }
      const ids = [reg.agent_id as string, ...idle];
      const base = nextMidnight() + H;
      // Buy 0.05 at 50000 × 1.0001 = 50005 → cost 2500.25, cash 7499.75; equity = 7499.75 + 0.05 × price.
      await order(s, a, 'buy');
      // Prices 50005, 70005, 59005, 79905 → equity 10000, 11000, 10450, 11495 (the idle agents stay at 5000).
      for (const [i, price] of ['50005', '70005', '59005', '79905'].entries()) {
        tick(s, price);
        t.equal(await s.engine.snapshots.takeNow({ at: new Date(base + i * H), agentIds: ids }), 3);
      }
      // Sell at 79905 × 0.9999 = 79897.0095 → 3994.850475 − 2500.25 = +1494.600475.
      await order(s, a, 'sell');
      // Buy at 79905 × 1.0001 = 79912.9905 → cost 3995.649525; sell at 70000 × 0.9999 = 69993 → 3499.65 − 3995.649525 = −495.999525.
      await order(s, a, 'buy');
      tick(s, '70000');
      await order(s, a, 'sell');
      await s.engine.journal.flush();

      // Equity 10000, 11000, 10450, 11495 hourly: r = [0.1, −0.05, 0.1], 8760 periods a year →
      // Sharpe √2920 = 54.03702434, Sortino √26280 = 162.11107303 (worked out in test/engine/core/metrics.test.ts).
      // Drawdown 11000 → 10450 = 5 %, regained an hour later: 7200 s = 0 days. ROI (11495 − 10000)/10000 = 14.95 %.
      // Trades +1494.600475, −495.999525: win rate 50 %, profit factor 1494.600475 / 495.999525 = 3.01331030;
      // last one a loss → streak −1. Two trades since the session began (< 1 day, counted as 1) → 2 per day.
      const expected = {
        agent_id: reg.agent_id, sharpe_ratio: '54.03702434', sortino_ratio: '162.11107303', max_drawdown_pct: '5.00000000', max_drawdown_duration_days: 0,
        win_rate: '50.00000000', profit_factor: '3.01331030', avg_win: '1494.60047500', avg_loss: '-495.99952500',
        best_trade: '1494.60047500', worst_trade: '-495.99952500', total_trades: 2, avg_trades_per_day: '2.00000000', current_streak: -1,
        starting_equity: '10000.00000000', final_equity: '11495.00000000', total_pnl: '1495.00000000', roi_pct: '14.95000000', snapshot_count: 4,
      };
      for (const period of ['all', '1d', '90d']) {
        const r = await s.call('GET', `${AN}/performance?period=${period}`, { headers: a });
        t.equal(r.status, 200, JSON.stringify(r.body));
        t.strictSame({ ...r.body, period_start: undefined, period_end: undefined, metrics: undefined }, { period, ...expected, period_start: undefined, period_end: undefined, metrics: undefined }, period);
        t.strictSame(r.body.metrics, {
          roi_pct: '14.95000000', total_pnl: '1495.00000000', sharpe_ratio: '54.03702434', sortino_ratio: '162.11107303',
          max_drawdown_pct: '5.00000000', max_drawdown_duration_s: 7200, win_rate: '50.00000000', profit_factor: '3.01331030',
          avg_win: '1494.60047500', avg_loss: '-495.99952500', best_trade: '1494.60047500', worst_trade: '-495.99952500',
          total_trades: 2, winning_trades: 1, losing_trades: 1, breakeven_trades: 0, max_win_streak: 1, max_loss_streak: 1, current_streak: -1,
          trades_per_day: '2.00000000', final_equity: '11495.00000000',
        }, `${period}: the shared metrics, nulls included`);
      }

      // History of agent A, 1h buckets, latest two: snapshots 3 and 4 with their parts.
      let h = await s.call('GET', `${AN}/portfolio/history?interval=1h&limit=2`, { headers: a });
      t.equal(h.status, 200, JSON.stringify(h.body));
      t.strictSame(h.body, {
        account_id: reg.account_id, agent_id: reg.agent_id, interval: '1h',
        snapshots: [
          // 7499.75 + 0.05 × 59005 = 7499.75 + 2950.25; unrealized 2950.25 − 2500.25 = 450.
          { time: new Date(base + 2 * H).toISOString(), total_equity: '10450.00000000', available_cash: '7499.75000000', position_value: '2950.25000000', unrealized_pnl: '450.00000000', realized_pnl: '0.00000000' },
          // 0.05 × 79905 = 3995.25; unrealized 1495.
          { time: new Date(base + 3 * H).toISOString(), total_equity: '11495.00000000', available_cash: '7499.75000000', position_value: '3995.25000000', unrealized_pnl: '1495.00000000', realized_pnl: '0.00000000' },
        ],
      });
      // One day bucket: its last snapshot.
      h = await s.call('GET', `${AN}/portfolio/history?interval=1d`, { headers: a });
      t.strictSame(h.body.snapshots.map((x: { time: string; total_equity: string }) => [x.time, x.total_equity]), [[new Date(base + 3 * H).toISOString(), '11495.00000000']]);
      // Account-wide (account key): the three agents summed per hour: 10000 + 2 × 5000, …
      h = await s.call('GET', `${AN}/portfolio/history?interval=1h`, { headers: accountKey });
      t.equal(h.body.agent_id, null);
      t.strictSame(h.body.snapshots.map((x: { total_equity: string }) => x.total_equity), ['20000.00000000', '21000.00000000', '20450.00000000', '21495.00000000']);

      // Account-wide performance: start 20000, final 21495 → 1495/20000 = 7.475 %.
      const acc = await s.call('GET', `${AN}/performance`, { headers: accountKey });
      t.strictSame([acc.body.agent_id, acc.body.starting_equity, acc.body.final_equity, acc.body.roi_pct, acc.body.total_trades],
        [null, '20000.00000000', '21495.00000000', '7.47500000', 2]);

      // Leaderboard by ROI: A (14.95 %), then the two idle agents, tied at 0 ROI and 0 PnL, by agent id.
      const lb = await s.call('GET', `${AN}/leaderboard?period=all`, { headers: a });
      t.equal(lb.status, 200, JSON.stringify(lb.body));
      t.equal(lb.body.metric, 'roi_pct');
      const [i1, i2] = [...idle].sort();
      t.strictSame(lb.body.rankings.map((r: Record<string, unknown>) => [r.rank, r.agent_id, r.account_id, r.roi_pct, r.value, r.sharpe_ratio, r.win_rate, r.total_trades]), [
        [1, reg.agent_id, reg.account_id, '14.95000000', '14.95000000', '54.03702434', '50.00000000', 2],
        [2, i1, reg.account_id, '0.00000000', '0.00000000', '0.00000000', '0.00000000', 0],
        [3, i2, reg.account_id, '0.00000000', '0.00000000', '0.00000000', '0.00000000', 0],
      ]);
      // By Sharpe: the idle agents' null Sharpe ranks last; `limit` cuts the list.
      const bySharpe = await s.call('GET', `${AN}/leaderboard?metric=sharpe_ratio&limit=2`, { headers: accountKey });
      t.strictSame(bySharpe.body.rankings.map((r: Record<string, unknown>) => [r.rank, r.agent_id, r.value]), [[1, reg.agent_id, '54.03702434'], [2, i1, null]]);
    });

    t.test('a fresh agent: zeros for the client, nulls in metrics, one snapshot taken on demand', async (t) => {
      const { agentKey: a, reg } = await registerAndLogin(s, { starting_balance: '5000' });
      const p = await s.call('GET', `${AN}/performance`, { headers: a });
      t.equal(p.status, 200, JSON.stringify(p.body));
      t.strictSame([p.body.sharpe_ratio, p.body.profit_factor, p.body.win_rate, p.body.total_trades, p.body.roi_pct, p.body.final_equity, p.body.snapshot_count],
        ['0.00000000', '0.00000000', '0.00000000', 0, '0.00000000', '5000.00000000', 0]);
      t.strictSame([p.body.metrics.sharpe_ratio, p.body.metrics.profit_factor, p.body.metrics.win_rate], [null, null, null]);
      const h = await s.call('GET', `${AN}/portfolio/history`, { headers: a });
      t.equal(h.body.interval, '1h');
      t.strictSame(h.body.snapshots.map((x: { total_equity: string; available_cash: string }) => [x.total_equity, x.available_cash]), [['5000.00000000', '5000.00000000']]);
      const rows = await s.engine.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM snapshots WHERE agent_id = $1 AND kind = 'periodic'`, [reg.agent_id]);
      t.equal(rows[0].n, 1);
    });

    t.test('bad query values are 422 VALIDATION_ERROR naming the field', async (t) => {
      const { agentKey: a } = await registerAndLogin(s);
      const cases: Array<[string, string]> = [
        [`${AN}/performance?period=2d`, 'period'],
        [`${AN}/portfolio/history?interval=2h`, 'interval'],
        [`${AN}/portfolio/history?limit=0`, 'limit'],
        [`${AN}/portfolio/history?limit=1001`, 'limit'],
        [`${AN}/leaderboard?metric=luck`, 'metric'],
      ];
      for (const [path, field] of cases) {
        const r = await s.call('GET', path, { headers: a });
        t.equal(r.status, 422, path);
        t.equal(r.body.error?.code, 'VALIDATION_ERROR', path);
        t.equal(r.body.error?.details?.field, field, path);
      }
      t.equal((await s.call('GET', `${AN}/performance`)).status, 401, 'credentials required');
    });
  });

  t.test(`the snapshot timer on ${backend.name} writes rows for loaded wallets and stops with the engine`, async (t) => {
    const s = await startTestServer(backend, { snapshot_interval_ms: 20 });
    const { agentKey: a, reg } = await registerAndLogin(s, { starting_balance: '1000' });
    await s.call('GET', '/api/v1/account/balance', { headers: a }); // loads the wallet
    t.ok(s.engine.trading.loadedAgents().includes(reg.agent_id), 'the wallet is loaded');
    let n = 0;
    for (let i = 0; i < 100 && n < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      n = (await s.engine.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM snapshots WHERE agent_id = $1`, [reg.agent_id]))[0].n;
    }
    t.ok(n >= 2, `periodic rows written (${n})`);
    // A battle wallet (`<battle>:<agent>`) in memory is left to its battle: one row, the agent's own wallet.
    await s.engine.trading.openWallet(battleStream(randomUUID(), reg.agent_id), '100', randomUUID());
    t.equal(await s.engine.snapshots.takeNow(), 1, 'only the own wallet');
    await s.stop();
  });
}
