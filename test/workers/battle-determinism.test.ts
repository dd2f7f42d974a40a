import t from 'tap';
import { loadCandleCsv } from '../../engine/market/csv.js';
import { allocSeries, setCandle } from '../../engine/core/series.js';
import { BACKTEST_RISK_BASE, derivedId } from '../../engine/core/sim.js';
import type { PlaceInput } from '../../engine/core/orders.js';
import { periodSteps, type Battle, type HistState } from '../../engine/core/battle-rules.js';
import { battleHash, emptyRuntime, initialSims, simConfigs, type HistClock } from '../../engine/core/battle-sim.js';
import { startBattle, type BattleCommand, type Outcome } from '../../engine/machines/battle.machine.js';
import { stepInPool } from '../../engine/battles/historical.js';
import { createStepPool } from '../../workers/pool.js';
import type { StepRunner } from '../../engine/backtests.js';
import { dataFile } from '../helpers/candles.js';
import { backends, registerAndLogin, startTestServer } from '../helpers/server.js';
import { B, caller, loadSeedDay, SEED_BODY } from '../helpers/battles.js';

/**
 * Reproducibility: the same historical battle (same candles, configuration, and orders at the same virtual
 * times) gives the same fills, equity curves and ranking, whether its clock steps in the main thread or in the
 * worker pool, and however many times it runs. `battleHash` digests all of that (ids aside: every run has
 * its own battle id). Real Bybit minutes of ADA, DOGE and DOT, 2025-06-01, three agents, a dozen orders.
 */
const MIN = 60_000;
const SYMBOLS = ['ADAUSDT', 'DOGEUSDT', 'DOTUSDT'];
const START = '2025-06-01T00:00:00Z';
const END = '2025-06-02T00:00:00Z';
const AGENTS = ['00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000a2', '00000000-0000-4000-8000-0000000000a3'];
const PAIRS = SYMBOLS.map((symbol) => ({ symbol, base_asset: symbol.slice(0, -4), quote_asset: 'USDT', status: 'active' as const, min_qty: '1', step_size: '1', min_notional: '5' }));

function series() {
  const t0 = Date.parse(START) - 1440 * MIN;
  const s = allocSeries({ symbols: SYMBOLS, interval_ms: MIN, t0, length: 2880 });
  SYMBOLS.forEach((sym, i) => {
    for (const c of loadCandleCsv(dataFile(`bybit-linear/${sym}_1m.csv`)).candles) setCandle(s, i, c);
  });
  return s;
}

/** [step, agent index, order]: what each agent does, by virtual time. */
type Plan = Array<[number, number, Omit<PlaceInput, 'order_id' | 'trade_id' | 'client_order_id'>]>;
const PLAN: Plan = [
  [0, 0, { symbol: 'ADAUSDT', side: 'buy', type: 'market', quantity: '3000', price: null }],
  [0, 1, { symbol: 'DOGEUSDT', side: 'buy', type: 'limit', quantity: '10000', price: '0.188' }],
  [0, 2, { symbol: 'DOTUSDT', side: 'buy', type: 'market', quantity: '200', price: null }],
  [0, 2, { symbol: 'DOTUSDT', side: 'sell', type: 'stop_loss', quantity: '200', price: '3.95' }],
  [60, 0, { symbol: 'ADAUSDT', side: 'sell', type: 'take_profit', quantity: '3000', price: '0.70' }],
  [60, 1, { symbol: 'ADAUSDT', side: 'buy', type: 'market', quantity: '1000', price: null }],
  [300, 0, { symbol: 'DOGEUSDT', side: 'buy', type: 'market', quantity: '5000', price: null }],
  [300, 1, { symbol: 'ADAUSDT', side: 'sell', type: 'market', quantity: '1000', price: null }],
  [720, 2, { symbol: 'ADAUSDT', side: 'buy', type: 'limit', quantity: '2000', price: '0.66' }],
  [900, 0, { symbol: 'DOGEUSDT', side: 'sell', type: 'market', quantity: '5000', price: null }],
  [1000, 1, { symbol: 'DOTUSDT', side: 'buy', type: 'market', quantity: '100', price: null }],
];

/** Runs the battle through its actor; `runner` steps the clock in the worker pool, null in this thread. */
async function run(id: string, runner: StepRunner | null, batch: number): Promise<{ hash: string; b: Battle }> {
  const b: Battle = {
    id, account_id: 'acc', name: 'det', status: 'draft', mode: 'historical', preset: null, ranking_metric: 'sharpe_ratio',
    config: { starting_balance: '10000.00000000', duration_minutes: null, wallet_mode: 'fresh', allowed_pairs: null, extra: {} },
    backtest_config: { start_time: START, end_time: END, candle_interval: 60, pairs: SYMBOLS }, participants: [],
    created_at: START, started_at: null, ended_at: null, rankings: null, hist: null,
  };
  const rt = emptyRuntime();
  const actor = startBattle(b, rt);
  const send = (build: (reply: (r: Outcome) => void) => BattleCommand) => {
    let out: Outcome | undefined;
    actor.send(build((r) => (out = r)));
    if (!out?.ok) throw new Error(JSON.stringify(out));
  };
  AGENTS.forEach((agent_id, i) => send((reply) => ({ type: 'participant.add', participant: { agent_id, agent_name: `a${i}`, status: 'active', joined_at: START, snapshot_balance: null, final_equity: null, final_rank: null }, reply })));
  send((reply) => ({ type: 'battle.start', reply }));
  const { start_ms, total_steps } = periodSteps(b.backtest_config!);
  const hist: HistState = { total_steps, pairs: SYMBOLS, interval_ms: MIN, start_ms, warmup: 1440, fee_rate: '0.001', sims: initialSims(id, AGENTS, '10000.00000000'), placed: {} };
  const clock: HistClock = { series: series(), cfgs: simConfigs(id, hist, PAIRS) };
  send((reply) => ({ type: 'battle.begin', now: new Date(0), hist, clock, reply }));
  let at = 0;
  const advance = async (n: number) => {
    for (let left = n; left > 0; left -= batch) {
      const k = Math.min(batch, left);
      if (runner) {
        const outs = await stepInPool(runner, b.hist!, clock, k);
        send((reply) => ({ type: 'battle.absorb', outs, now: new Date(0), reply }));
      } else send((reply) => ({ type: 'battle.step', n: k, now: new Date(0), reply }));
    }
  };
  for (const [when, who, o] of PLAN) {
    await advance(when - at);
    at = when;
    const agent = AGENTS[who];
    // The registry's ids: derived from the battle, the agent and how many orders it placed.
    const order_id = derivedId(`order:${id}:${agent}:${b.hist!.placed[agent] ?? 0}`);
    send((reply) => ({ type: 'order.place', agent_id: agent, input: { ...o, order_id, trade_id: derivedId(`trade:${order_id}`), client_order_id: null }, risk: BACKTEST_RISK_BASE, reply }));
  }
  await advance(total_steps - at);
  if (b.status !== 'completed') throw new Error(`battle ended ${b.status}`);
  return { hash: battleHash(b, rt.ledgers), b };
}

t.test('main thread and worker pool give the same state hash, run after run', async (t) => {
  const pool = createStepPool({ threads: 2 });
  t.ok(pool, 'the compiled worker exists (npx tsc -p .)');
  t.teardown(() => pool?.close());
  const main = await run('11111111-1111-4111-8111-111111111111', null, 1440);
  const again = await run('22222222-2222-4222-8222-222222222222', null, 97);
  const worker = await run('33333333-3333-4333-8333-333333333333', pool, 500);
  t.equal(again.hash, main.hash, 'another run in the main thread, in other batch sizes');
  t.equal(worker.hash, main.hash, 'the same battle stepped in workers');
  t.same(worker.b.rankings, main.b.rankings, 'same ranking and metrics');
  t.ok(main.b.rankings!.every((r) => r.trade_count > 0), 'every agent traded');
  t.same(main.b.rankings!.map((r) => r.rank), [1, 2, 3]);
  const trades = main.b.rankings!.reduce((n, r) => n + r.trade_count, 0);
  t.ok(trades >= 12, `fills of the plan and the closing sales (${trades})`);
});

t.test('the hash tells different battles apart', async (t) => {
  const base = await run('44444444-4444-4444-8444-444444444444', null, 1440);
  PLAN.push([1200, 2, { symbol: 'DOGEUSDT', side: 'buy', type: 'market', quantity: '1000', price: null }]);
  t.teardown(() => void PLAN.pop());
  const other = await run('55555555-5555-4555-8555-555555555555', null, 1440);
  t.not(other.hash, base.hash);
});

t.test('through the registry: one battle in the main thread, its twin in the worker pool', async (t) => {
  const s = await startTestServer(backends()[0]);
  t.teardown(() => s.stop());
  await loadSeedDay(s.engine.db);
  const owner = await registerAndLogin(s, {});
  const { ok } = caller(s, owner.jwt);
  const a2: string = (await ok('POST', '/api/v1/agents', { display_name: 'Two' })).agent_id;
  const p = { account: await s.engine.identity.accountById(owner.reg.account_id), agent: null, via: 'jwt' as const };
  const play = async (inWorkers: boolean) => {
    s.engine.battles.workerCellsMin = inWorkers ? 1 : Number.MAX_SAFE_INTEGER;
    const bid: string = (await ok('POST', B, SEED_BODY)).battle_id;
    for (const a of [owner.reg.agent_id, a2]) await ok('POST', `${B}/${bid}/participants`, { agent_id: a });
    await ok('POST', `${B}/${bid}/start`);
    await ok('POST', `${B}/${bid}/step/batch`, { steps: 30 });
    await ok('POST', `${B}/${bid}/trade/order`, { agent_id: owner.reg.agent_id, symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: '0.05' });
    await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a2, symbol: 'ETHUSDT', side: 'buy', type: 'market', quantity: '0.5' });
    await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a2, symbol: 'ETHUSDT', side: 'sell', type: 'take_profit', quantity: '0.5', price: '3330' });
    await ok('POST', `${B}/${bid}/trade/order`, { agent_id: a2, symbol: 'ETHUSDT', side: 'buy', type: 'limit', quantity: '1', price: '3280' });
    await ok('POST', `${B}/${bid}/step/batch`, { steps: 700 });
    await ok('POST', `${B}/${bid}/trade/order`, { agent_id: owner.reg.agent_id, symbol: 'BTCUSDT', side: 'sell', type: 'stop_loss', quantity: '0.05', price: '93500' });
    await ok('POST', `${B}/${bid}/step/batch`, { steps: 10000 });
    return s.engine.battles.stateHash(p as never, bid);
  };
  const before = s.engine.battles.stats.worker_batches;
  const main = await play(false);
  t.equal(s.engine.battles.stats.worker_batches, before);
  const worker = await play(true);
  t.equal(s.engine.battles.stats.worker_batches, before + 3);
  t.equal(worker, main);
  s.engine.battles.workerCellsMin = 100_000;
});
