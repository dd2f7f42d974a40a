import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { BUILTIN_PAIRS } from '../engine/market/pairs.js';
import { candlesUpTo, fromScaled, layoutOf, toScaled, type CandleIn, type Series } from '../engine/core/series.js';
import { BACKTEST_RISK_BASE, initialState, placeAt, priceOf, step, type SimConfig, type SimState, type StepTask } from '../engine/core/sim.js';
import { upsertCandles } from '../engine/store/candles-repo.js';
import { loadConfig } from '../engine/config.js';
import { createLogger } from '../engine/log.js';
import { createEngine } from '../engine/system.js';
import { startServer } from '../gateway/server.js';
import { createStepPool } from '../workers/pool.js';
import { CELLS, MIN, monthOfCandles, seriesOf, START, STEPS, SYMBOLS, WARMUP } from './month.js';
import { must } from './lib.js';

/**
 * Backtest benchmark (not a test): one month of 1-minute candles × 5 symbols.
 *   npx tsc -p . && node dist/bench/backtest.js
 * (a) stepping with no orders, in process; (b) the same with a moving-average strategy trading every few hundred
 * steps; (c) the same month driven over REST (step/batch, candles, orders) by a client; (d) 8 backtests at once
 * through the worker pool against the same 8 on one worker. Each prints candle-steps/s (steps × symbols / s),
 * wall time, and the ratio to a plain loop over the same typed arrays measured in this run (the ceiling).
 * Candles: ADA, DOGE, DOT are real Bybit 1-minute files from ../shared/data; BTC and ETH are seeded random walks
 * over the same minutes (the shared data has no month of 1-minute BTC/ETH).
 */
const MA_EVERY = 240;


const cfgOf = (id: string): SimConfig => ({
  session_id: id, fee_rate: '0.001', start_ms: START, total_steps: STEPS, warmup: WARMUP, snapshot_every: 60,
  pairs: SYMBOLS.map((s) => BUILTIN_PAIRS.find((p) => p.symbol === s)!),
});

/** The ceiling: the comparisons the step loop makes for every candle, and nothing else. */
function plainLoop(s: Series): number {
  const { low, high } = s;
  let hits = 0;
  for (let j = WARMUP; j < WARMUP + STEPS; j++) for (let k = 0, i = j; k < SYMBOLS.length; k++, i += s.length) if (low[i] <= -1 || high[i] >= Infinity) hits++;
  return hits;
}

function timed<T>(fn: () => T): { ms: number; value: T } {
  const t0 = performance.now();
  const value = fn();
  return { ms: performance.now() - t0, value };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rate = (cells: number, ms: number) => `${(cells / (ms / 1000) / 1e6).toFixed(2)}M candle-steps/s`;

/**
 * The strategy, the same for the in-process run and the REST client: on the newest 200 closes known at the
 * clock, buy 15 % of cash when SMA50 is above SMA200 and nothing is held, sell everything when it is below.
 * Floats are fine here: this is the agent's signal, not the engine's money.
 */
function maDecision(closes: number[], held: string | null, cash: number, symbol: string): { side: 'buy' | 'sell'; quantity: string } | null {
  if (closes.length < 200) return null;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const fast = mean(closes.slice(-50));
  const slow = mean(closes);
  if (fast > slow && !held) {
    const stepSize = Number(BUILTIN_PAIRS.find((p) => p.symbol === symbol)!.step_size);
    const qty = Math.floor((cash * 0.15) / closes[closes.length - 1] / stepSize) * stepSize;
    return qty > 0 ? { side: 'buy', quantity: qty.toFixed(8) } : null;
  }
  return fast < slow && held ? { side: 'sell', quantity: held } : null;
}

function inProcessStrategy(s: Series): { orders: number; trades: number; equity: string } {
  const cfg = cfgOf('bench-b');
  const state = initialState('bench', '100000', cfg.session_id);
  let orders = 0;
  let trades = 0;
  let n = 0;
  while (!state.finished) {
    trades += step(state, s, cfg, MA_EVERY).trades.length;
    if (state.finished) break;
    const cash = Number(state.wallet.balances.USDT.available); // as the client sees it: from the step's answer
    for (let k = 0; k < SYMBOLS.length; k++) {
      const closes = candlesUpTo(s, k, WARMUP + state.step - 1, MIN, 200).map((c) => Number(c.close));
      const d = maDecision(closes, state.wallet.positions[SYMBOLS[k]]?.quantity ?? null, cash, SYMBOLS[k]);
      if (!d) continue;
      const r = placeAt(state, s, cfg, { order_id: `b-${++n}`, trade_id: `bt-${n}`, client_order_id: null, symbol: SYMBOLS[k], type: 'market', price: null, ...d }, BACKTEST_RISK_BASE);
      if (r.ok) (orders += 1), (trades += 1);
    }
  }
  return { orders, trades, equity: state.wallet.balances.USDT.available }; // everything is sold at the end: cash is the final equity
}

/** Positions in every symbol and a ladder of resting orders around the first price: real fills for the workers. */
function ladderState(s: Series, id: string): SimState {
  const cfg = cfgOf(id);
  const state = initialState('bench', '1000000', id);
  // Until every symbol has a closed candle to trade at (the files do not all start on the same minute).
  while (SYMBOLS.some((sym) => priceOf(s, cfg, state)(sym) === undefined)) step(state, s, cfg, 1);
  let n = 0;
  SYMBOLS.forEach((sym, k) => {
    const last = toScaled(priceOf(s, cfg, state)(sym)!);
    const pair = BUILTIN_PAIRS.find((p) => p.symbol === sym)!;
    const qty = (Math.ceil(2000 / (last / 1e8) / Number(pair.step_size)) * Number(pair.step_size)).toFixed(8);
    const put = (side: 'buy' | 'sell', type: 'market' | 'limit' | 'take_profit', price: string | null) => {
      const d = placeAt(state, s, cfg, { order_id: `${id}-${++n}`, trade_id: `${id}-t${n}`, client_order_id: null, symbol: sym, side, type, quantity: qty, price }, BACKTEST_RISK_BASE);
      if (!d.ok) throw new Error(`${sym} ${side} ${type}: ${d.message}`);
    };
    for (let i = 0; i < 20; i++) put('buy', 'market', null);
    for (let i = 1; i <= 20; i++) {
      put('buy', 'limit', fromScaled(Math.round(last * (1 - i / 200))));
      put('sell', i % 2 ? 'take_profit' : 'limit', fromScaled(Math.round(last * (1 + i / 200))));
    }
  });
  return state;
}

async function rest(candles: Record<string, CandleIn[]>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-bt-'));
  const config = { ...loadConfig({}), port: 0, dataDir, logLevel: 'silent' as const, feed: 'none' as const, kdfCost: 1024, jwtSecret: randomBytes(32).toString('hex'), serverKey: randomBytes(32).toString('hex') };
  const engine = await createEngine(config, createLogger('silent'));
  const server = await startServer(engine, { port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${server.port}/api/v1`;
  try {
    const imp = performance.now();
    for (const sym of SYMBOLS) await upsertCandles(engine.db, sym, '1m', candles[sym]);
    console.log(`(c) import of ${CELLS} candles into embedded PostgreSQL: ${((performance.now() - imp) / 1000).toFixed(1)} s (not counted)`);
    let h: Record<string, string> = {};
    const call = (method: string, path: string, body?: unknown) => must(base, method, path, h, body);
    const reg = await call('POST', '/auth/register', { display_name: 'bench', starting_balance: '100000' });
    h = { ...h, 'x-api-key': reg.agent_api_key };
    const t0 = performance.now();
    let requests = 0;
    const { session_id: id } = await call('POST', '/backtest/create', { start_time: new Date(START).toISOString(), end_time: new Date(START + STEPS * MIN).toISOString(), candle_interval: 60, pairs: SYMBOLS, starting_balance: '100000' });
    await call('POST', `/backtest/${id}/start`);
    const tStart = performance.now() - t0;
    let done = false;
    let orders = 0;
    while (!done) {
      const st = await call('POST', `/backtest/${id}/step/batch`, { steps: MA_EVERY });
      requests += 1;
      done = st.is_complete;
      if (done) break;
      for (const sym of SYMBOLS) {
        const { candles: cs } = await call('GET', `/backtest/${id}/market/candles/${sym}?limit=200`);
        requests += 1;
        const closes = cs.map((c: { close: string }) => Number(c.close));
        const pos = st.portfolio.positions.find((p: { symbol: string }) => p.symbol === sym);
        const body = maDecision(closes, pos?.quantity ?? null, Number(st.portfolio.available_cash), sym);
        if (!body) continue;
        await call('POST', `/backtest/${id}/trade/order`, { symbol: sym, type: 'market', ...body });
        requests += 1;
        orders += 1;
      }
    }
    const results = await call('GET', `/backtest/${id}/results`);
    const ms = performance.now() - t0;
    console.log(`(c) REST, MA strategy every ${MA_EVERY} steps: ${(ms / 1000).toFixed(2)} s wall (target ≤ 30 s), ${rate(CELLS, ms)}, ${requests + 4} requests, ${orders} orders, start (candles from the DB) ${(tStart / 1000).toFixed(2)} s; final equity ${results.summary.final_equity}, sharpe ${results.metrics.sharpe_ratio}`);
  } finally {
    await server.close();
    await engine.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Wall ms for `n` threads each counting to the same number: how much parallel CPU the machine really gives. */
async function spin(n: number): Promise<number> {
  const code = `const { parentPort } = require('node:worker_threads'); let x = 0; for (let i = 0; i < 2e8; i++) x += i % 7; parentPort.postMessage(x);`;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: n }, () => new Promise((done) => {
    const w = new Worker(code, { eval: true });
    w.once('message', () => w.terminate().then(done));
  })));
  return performance.now() - t0;
}

async function pools(s: Series): Promise<void> {
  const tasks = (tag: string): StepTask[] => Array.from({ length: 8 }, (_, i) => ({ buffer: s.buffer, layout: layoutOf(s), cfg: cfgOf(`${tag}-${i}`), state: ladderState(s, `${tag}-${i}`), n: STEPS }));
  const threads = Math.max(2, availableParallelism());
  const runOn = async (n: number) => {
    const pool = createStepPool({ threads: n, min_threads: n })!;
    // Every thread started and warmed up (modules loaded, code optimised) before the clock starts.
    await Promise.all(tasks('warm').map((t) => pool.run(t)));
    const batch = tasks(`p${n}`);
    const t0 = performance.now();
    const outs = await Promise.all(batch.map((t) => pool.run(t)));
    const ms = performance.now() - t0;
    await pool.close();
    return { ms, fills: outs.reduce((a, o) => a + o.trades.length, 0) };
  };
  const one = await runOn(1);
  const many = await runOn(threads);
  const hw = (await spin(1)) / (await spin(threads)) * threads;
  console.log(`(d) 8 backtests, 1 worker: ${(one.ms / 1000).toFixed(2)} s, ${rate(8 * CELLS, one.ms)}; ${threads} workers: ${(many.ms / 1000).toFixed(2)} s, ${rate(8 * CELLS, many.ms)} → ${(one.ms / many.ms).toFixed(2)}× one worker (target ≥ 1.6×; ${many.fills / 8} fills per backtest)`);
  console.log(`    this machine right now: ${availableParallelism()} cores reported, ${threads} threads spinning do ${hw.toFixed(2)}× the work of one (the ceiling for that speedup)`);
}

/** `node dist/bench/backtest.js [a] [b] [c] [d]` runs only those parts (default: all). */
async function main(): Promise<void> {
  const want = (part: string) => process.argv.length <= 2 || process.argv.includes(part);
  const candles = monthOfCandles();
  const s = seriesOf(candles);
  const ceiling = median(Array.from({ length: 7 }, () => timed(() => plainLoop(s)).ms));
  console.log(`one month: ${STEPS} steps × ${SYMBOLS.length} symbols = ${CELLS} candle-steps; ceiling (plain loop over the typed arrays) ${ceiling.toFixed(2)} ms, ${rate(CELLS, ceiling)}`);
  if (want('a')) {
    const a = median(Array.from({ length: 7 }, (_, i) => timed(() => step(initialState('bench', '100000', `a${i}`), s, cfgOf(`a${i}`), STEPS)).ms));
    console.log(`(a) no orders, in process: ${a.toFixed(2)} ms (target ≤ 500 ms), ${rate(CELLS, a)} (target ≥ 1M), ${(ceiling / a).toFixed(3)} of the ceiling`);
  }
  if (want('b')) {
    const runs = Array.from({ length: 3 }, () => timed(() => inProcessStrategy(s)));
    const b = median(runs.map((r) => r.ms));
    const v = runs[0].value;
    console.log(`(b) MA strategy every ${MA_EVERY} steps, in process: ${b.toFixed(2)} ms, ${rate(CELLS, b)}, ${(ceiling / b).toFixed(3)} of the ceiling; ${v.orders} orders, ${v.trades} fills, final equity ${v.equity}`);
  }
  if (want('c')) await rest(candles);
  if (want('d')) await pools(s);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
