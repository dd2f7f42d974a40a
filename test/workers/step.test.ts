import t from 'tap';
import { createHash } from 'node:crypto';
import { loadCandleCsv } from '../../engine/market/csv.js';
import { allocSeries, layoutOf, setCandle, type Series } from '../../engine/core/series.js';
import { BACKTEST_RISK_BASE, initialState, placeAt, step, type SimConfig, type SimState, type StepOut } from '../../engine/core/sim.js';
import { BUILTIN_PAIRS } from '../../engine/market/pairs.js';
import { createStepPool } from '../../workers/pool.js';
import { dataFile } from '../helpers/candles.js';

/**
 * The worker and the main thread run the same step function on the same shared candles: from the same
 * state they must reach the same state, fills and snapshots, byte for byte. (The worker is the compiled
 * dist/workers/step.worker.js: run `npx tsc -p .` first.)
 */
const SYMBOLS = ['ADAUSDT', 'DOGEUSDT', 'DOTUSDT'];
const START = Date.parse('2025-06-01T00:00:00Z');
const MIN = 60_000;
const WARMUP = 1440;
const STEPS = 7 * 1440;

function realSeries(): Series {
  const series = allocSeries({ symbols: SYMBOLS, interval_ms: MIN, t0: START - WARMUP * MIN, length: WARMUP + STEPS });
  SYMBOLS.forEach((sym, k) => {
    for (const c of loadCandleCsv(dataFile(`bybit-linear/${sym}_1m.csv`)).candles) setCandle(series, k, c);
  });
  return series;
}

/** A state holding positions and a ladder of resting orders on every symbol, so the week fills many of them. */
function busyState(series: Series, cfg: SimConfig): SimState {
  const state = initialState('agent', '100000', cfg.session_id);
  let n = 0;
  const put = (symbol: string, side: 'buy' | 'sell', type: 'market' | 'limit' | 'stop_loss' | 'take_profit', quantity: string, price: string | null) => {
    const id = `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
    const d = placeAt(state, series, cfg, { order_id: id, trade_id: `t${id}`, client_order_id: null, symbol, side, type, quantity, price }, BACKTEST_RISK_BASE);
    if (!d.ok) throw new Error(`${symbol} ${side} ${type} ${price}: ${d.code} ${d.message}`);
  };
  const ladder: Record<string, { last: number; qty: string; dp: number }> = {
    ADAUSDT: { last: 0.6854, qty: '1000', dp: 4 }, DOGEUSDT: { last: 0.19238, qty: '5000', dp: 5 }, DOTUSDT: { last: 4.1, qty: '100', dp: 3 },
  };
  for (const [symbol, l] of Object.entries(ladder)) {
    put(symbol, 'buy', 'market', String(Number(l.qty) * 10), null);
    for (let i = 1; i <= 8; i++) {
      const down = (l.last * (1 - i / 100)).toFixed(l.dp);
      const up = (l.last * (1 + i / 100)).toFixed(l.dp);
      put(symbol, 'buy', 'limit', l.qty, down);
      put(symbol, 'sell', i % 2 ? 'take_profit' : 'limit', l.qty, up);
      if (i <= 2) put(symbol, 'sell', 'stop_loss', l.qty, (l.last * (1 - (i + 8) / 100)).toFixed(l.dp));
    }
  }
  return state;
}

const digest = (o: StepOut) => createHash('sha256').update(JSON.stringify([o.state, o.closed, o.trades, o.snapshots])).digest('hex');

t.test('a worker and the main thread give the same final state', async (t) => {
  const pool = createStepPool({ threads: 2 });
  if (!pool) throw new Error('dist/workers/step.worker.js is missing: run `npx tsc -p .` before the tests');
  t.teardown(() => pool.close());
  const series = realSeries();
  t.ok(series.buffer instanceof SharedArrayBuffer, 'candles live in shared memory');
  const cfg: SimConfig = { session_id: 'w', fee_rate: '0.001', start_ms: START, total_steps: STEPS, warmup: WARMUP, snapshot_every: 60, pairs: SYMBOLS.map((s) => BUILTIN_PAIRS.find((p) => p.symbol === s)!) };
  const initial = busyState(series, cfg);

  const main = step(structuredClone(initial), series, cfg, STEPS);
  const viaWorker = await pool.run({ buffer: series.buffer, layout: layoutOf(series), cfg, state: structuredClone(initial), n: STEPS });
  t.ok(main.trades.length > 20, `the week fills orders (${main.trades.length} trades)`);
  t.ok(main.state.finished, 'and completes');
  t.equal(digest(viaWorker), digest(main), 'same state, fills and snapshots');
  t.same(viaWorker.state.wallet.balances, main.state.wallet.balances);

  // Split into uneven batches across both workers, with the main thread continuing in between: same end.
  let state = structuredClone(initial);
  const closed: unknown[] = [];
  for (const [i, n] of [1, 777, 3000, 1, 4000, 99_999].entries()) {
    const out = i % 2 ? step(state, series, cfg, n) : await pool.run({ buffer: series.buffer, layout: layoutOf(series), cfg, state, n });
    state = out.state;
    closed.push(...out.closed);
  }
  t.same(state, main.state, 'batch boundaries and thread changes do not matter');
  t.same(closed, main.closed);
});

t.test('the main thread stays free while a worker steps', async (t) => {
  const pool = createStepPool({ threads: 1 });
  t.teardown(() => pool!.close());
  const series = realSeries();
  const cfg: SimConfig = { session_id: 'x', fee_rate: '0.001', start_ms: START, total_steps: STEPS, warmup: WARMUP, snapshot_every: 1, pairs: SYMBOLS.map((s) => BUILTIN_PAIRS.find((p) => p.symbol === s)!) };
  const task = pool!.run({ buffer: series.buffer, layout: layoutOf(series), cfg, state: busyState(series, cfg), n: STEPS });
  let ticks = 0;
  let done = false;
  task.finally(() => (done = true));
  while (!done) {
    await new Promise((r) => setTimeout(r, 1));
    ticks += 1;
  }
  t.ok(ticks >= 5, `the event loop ran ${ticks} timers while the worker stepped a week with a snapshot every step`);
});
