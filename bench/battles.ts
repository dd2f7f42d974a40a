import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { BUILTIN_PAIRS } from '../engine/market/pairs.js';
import { fromScaled, toScaled, type CandleIn, type Series } from '../engine/core/series.js';
import { BACKTEST_RISK_BASE, priceOf } from '../engine/core/sim.js';
import type { Battle, HistState } from '../engine/core/battle-rules.js';
import { emptyRuntime, initialSims, simConfigs, type HistClock } from '../engine/core/battle-sim.js';
import { startBattle, type BattleActor, type BattleCommand, type Outcome } from '../engine/machines/battle.machine.js';
import { stepInPool } from '../engine/battles/historical.js';
import { upsertCandles } from '../engine/store/candles-repo.js';
import { loadConfig } from '../engine/config.js';
import { createLogger } from '../engine/log.js';
import { createEngine } from '../engine/system.js';
import { startServer } from '../gateway/server.js';
import { createStepPool } from '../workers/pool.js';
import { CELLS, MIN, monthOfCandles, seriesOf, START, STEPS, SYMBOLS, WARMUP } from './month.js';
import { must } from './lib.js';

/**
 * Battle benchmark (not a test), over the month bench/backtest.ts uses (1-minute candles × 5 symbols: ADA,
 * DOGE, DOT real Bybit minutes from ../shared/data; BTC and ETH the same seeded random walks).
 *   npx tsc -p . && node dist/bench/battles.js [a] [b]
 * (a) one historical battle of 10 agents driven over REST by a client: step/batch of 50 candles, then an order
 *     from every agent (REST: historical battle orders have no WebSocket method); a WebSocket subscriber
 *     counts the battle:update and battle:trade pushes. Embedded PostgreSQL unless DATABASE_URL is set.
 * (b) 50 historical battles (2 agents each, with resting orders that fill) stepping to the end at once through
 *     the worker pool, against the same 50 stepped one after another in the main thread.
 * Each prints wall time, steps/s and candle-steps/s (steps × symbols × agents), and the ratio to the ceiling
 * measured in this run: bench/backtest.ts's plain loop over the same typed arrays (the comparisons the step
 * loop makes per candle, nothing else).
 */
const AGENTS_A = 10;
const ORDER_EVERY = 50;
const BATTLES_B = 50;


/** bench/backtest.ts's ceiling. */
function plainLoop(s: Series): number {
  const { low, high } = s;
  let hits = 0;
  for (let j = WARMUP; j < WARMUP + STEPS; j++) for (let k = 0, i = j; k < SYMBOLS.length; k++, i += s.length) if (low[i] <= -1 || high[i] >= Infinity) hits++;
  return hits;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const perSec = (n: number, ms: number) => n / (ms / 1000);
const M = (x: number) => `${(x / 1e6).toFixed(2)}M`;

async function overRest(candles: Record<string, CandleIn[]>, ceilingRate: number): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-battle-'));
  const config = { ...loadConfig(process.env), port: 0, dataDir, logLevel: 'silent' as const, feed: 'none' as const, kdfCost: 1024, jwtSecret: randomBytes(32).toString('hex'), serverKey: randomBytes(32).toString('hex') };
  const engine = await createEngine(config, createLogger('silent'));
  const server = await startServer(engine, { port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${server.port}/api/v1`;
  let ws: WebSocket | null = null;
  try {
    const imp = performance.now();
    for (const sym of SYMBOLS) await upsertCandles(engine.db, sym, '1m', candles[sym]);
    console.log(`(a) import of ${CELLS} candles (${engine.db.kind}): ${((performance.now() - imp) / 1000).toFixed(1)} s (not counted)`);
    let h: Record<string, string> = {};
    const call = (method: string, path: string, body?: unknown) => must(base, method, path, h, body);
    const reg = await call('POST', '/auth/register', { display_name: 'bench', starting_balance: '100000' });
    const login = await call('POST', '/auth/login', { api_key: reg.api_key, api_secret: reg.api_secret });
    h = { ...h, authorization: `Bearer ${login.token}` };
    const agents: string[] = [reg.agent_id];
    while (agents.length < AGENTS_A) agents.push((await call('POST', '/agents', { display_name: `agent ${agents.length}`, starting_balance: '100000' })).agent_id);
    const { battle_id: id } = await call('POST', '/battles', {
      name: 'bench month', battle_mode: 'historical', starting_balance: '100000',
      backtest_config: { start_time: new Date(START).toISOString(), end_time: new Date(START + STEPS * MIN).toISOString(), candle_interval: '1m', pairs: SYMBOLS },
    });
    for (const a of agents) await call('POST', `/battles/${id}/participants`, { agent_id: a });
    const pushes = { 'battle:update': 0, 'battle:trade': 0, 'battle:status': 0 } as Record<string, number>;
    ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws/v1?api_key=${reg.api_key}`);
    ws.on('message', (d: Buffer) => {
      const f = JSON.parse(d.toString());
      if (f.channel === 'battle') pushes[f.type] += 1;
    });
    await new Promise((r) => ws!.once('open', r));
    ws.send(JSON.stringify({ action: 'subscribe', channel: 'battle', battle_id: id }));
    const t0 = performance.now();
    await call('POST', `/battles/${id}/start`);
    const tStart = performance.now() - t0;
    let requests = 1;
    let orders = 0;
    let rejected = 0;
    for (let round = 0; ; round++) {
      const st = await call('POST', `/battles/${id}/step/batch`, { steps: ORDER_EVERY });
      requests += 1;
      if (st.is_complete) break;
      // Every agent trades one symbol: buys on even rounds, sells what it bought on odd ones.
      await Promise.all(agents.map(async (agent_id, i) => {
        const symbol = SYMBOLS[i % SYMBOLS.length];
        const pair = BUILTIN_PAIRS.find((p) => p.symbol === symbol)!;
        const qty = (Math.ceil(500 / Number(st.prices[symbol]) / Number(pair.step_size)) * Number(pair.step_size)).toFixed(8);
        const body = { agent_id, symbol, side: round % 2 ? 'sell' : 'buy', type: 'market', quantity: round % 2 ? held.get(agent_id) ?? qty : qty };
        requests += 1;
        try {
          const o = await call('POST', `/battles/${id}/trade/order`, body);
          if (body.side === 'buy') held.set(agent_id, o.executed_qty);
          orders += 1;
        } catch {
          rejected += 1;
        }
      }));
    }
    const results = await call('GET', `/battles/${id}/results`);
    const ms = performance.now() - t0;
    const cells = CELLS * AGENTS_A;
    await new Promise((r) => setTimeout(r, 200));
    console.log(`(a) REST: ${AGENTS_A} agents, an order each every ${ORDER_EVERY} steps: ${(ms / 1000).toFixed(2)} s wall, ${perSec(STEPS, ms).toFixed(0)} steps/s, ${M(perSec(cells, ms))} candle-steps/s `
      + `(${(perSec(cells, ms) / ceilingRate).toFixed(4)} of the ceiling); ${requests} requests (${perSec(requests, ms).toFixed(0)}/s), ${orders} orders filled, ${rejected} refused; start (candles from the DB) ${(tStart / 1000).toFixed(2)} s`);
    console.log(`    WebSocket: ${pushes['battle:update']} battle:update, ${pushes['battle:trade']} battle:trade, ${pushes['battle:status']} battle:status; winner ${results.rankings[0].agent_name} at ${results.rankings[0].roi_pct} % ROI`);
  } finally {
    ws?.close();
    await server.close();
    await engine.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
const held = new Map<string, string>();

/** A started battle actor of two agents over the shared series, each holding positions and a ladder of resting orders. */
function battleOn(s: Series, k: number): { actor: BattleActor; b: Battle; clock: HistClock } {
  const id = `00000000-0000-4000-8000-${String(k).padStart(12, '0')}`;
  const agents = ['a', 'b'].map((x) => `${id.slice(0, -1)}${x}`);
  const b: Battle = {
    id, account_id: 'bench', name: `b${k}`, status: 'draft', mode: 'historical', preset: null, ranking_metric: 'roi_pct',
    config: { starting_balance: '1000000.00000000', duration_minutes: null, wallet_mode: 'fresh', allowed_pairs: null, extra: {} },
    backtest_config: { start_time: new Date(START).toISOString(), end_time: new Date(START + STEPS * MIN).toISOString(), candle_interval: 60, pairs: SYMBOLS },
    participants: [], created_at: '', started_at: null, ended_at: null, rankings: null, hist: null,
  };
  const actor = startBattle(b, emptyRuntime());
  const send = (build: (reply: (r: Outcome) => void) => BattleCommand) => {
    let out: Outcome | undefined;
    actor.send(build((r) => (out = r)));
    if (!out?.ok) throw new Error(JSON.stringify(out));
  };
  for (const a of agents) send((reply) => ({ type: 'participant.add', participant: { agent_id: a, agent_name: a, status: 'active', joined_at: '', snapshot_balance: null, final_equity: null, final_rank: null }, reply }));
  send((reply) => ({ type: 'battle.start', reply }));
  const hist: HistState = { total_steps: STEPS, pairs: SYMBOLS, interval_ms: MIN, start_ms: START, warmup: WARMUP, fee_rate: '0.001', sims: initialSims(id, agents, '1000000'), placed: {} };
  const clock: HistClock = { series: s, cfgs: simConfigs(id, hist, SYMBOLS.map((x) => BUILTIN_PAIRS.find((p) => p.symbol === x)!)) };
  send((reply) => ({ type: 'battle.begin', now: new Date(0), hist, clock, reply }));
  // Until every symbol has a closed candle (the files do not all start on the same minute).
  while (SYMBOLS.some((x) => priceOf(s, clock.cfgs[agents[0]], hist.sims[agents[0]])(x) === undefined)) send((reply) => ({ type: 'battle.step', n: 1, now: new Date(0), reply }));
  let n = 0;
  for (const a of agents) {
    for (const sym of SYMBOLS) {
      const last = toScaled(priceOf(s, clock.cfgs[a], hist.sims[a])(sym)!);
      const pair = BUILTIN_PAIRS.find((p) => p.symbol === sym)!;
      const qty = (Math.ceil(2000 / (last / 1e8) / Number(pair.step_size)) * Number(pair.step_size)).toFixed(8);
      const put = (side: 'buy' | 'sell', type: 'market' | 'limit' | 'take_profit', price: string | null) =>
        send((reply) => ({ type: 'order.place', agent_id: a, input: { order_id: `${a}-${++n}`, trade_id: `${a}-t${n}`, client_order_id: null, symbol: sym, side, type, quantity: qty, price }, risk: BACKTEST_RISK_BASE, reply }));
      for (let i = 0; i < 10; i++) put('buy', 'market', null);
      for (let i = 1; i <= 10; i++) {
        put('buy', 'limit', fromScaled(Math.round(last * (1 - i / 200))));
        put('sell', i % 2 ? 'take_profit' : 'limit', fromScaled(Math.round(last * (1 + i / 200))));
      }
    }
  }
  return { actor, b, clock };
}

async function manyAtOnce(s: Series, ceilingRate: number): Promise<void> {
  const batch = 10_000; // the API's step/batch maximum
  const drive = async (stepper: (x: ReturnType<typeof battleOn>) => Promise<void>) => {
    const battles = Array.from({ length: BATTLES_B }, (_, k) => battleOn(s, k));
    const t0 = performance.now();
    await Promise.all(battles.map(async (x) => {
      while (x.b.status !== 'completed') await stepper(x);
    }));
    const ms = performance.now() - t0;
    const fills = battles.reduce((n, x) => n + x.b.rankings!.reduce((m, r) => m + r.trade_count, 0), 0);
    return { ms, fills };
  };
  const ask = (x: ReturnType<typeof battleOn>, cmd: (reply: (r: Outcome) => void) => BattleCommand) => x.actor.send(cmd(() => {}));
  const main = await drive(async (x) => ask(x, (reply) => ({ type: 'battle.step', n: batch, now: new Date(0), reply })));
  const threads = Math.max(2, availableParallelism());
  const pool = createStepPool({ threads, min_threads: threads, queue_max: 4 * BATTLES_B })!;
  const inPool = await drive(async (x) => {
    const outs = await stepInPool(pool, x.b.hist!, x.clock, batch);
    ask(x, (reply) => ({ type: 'battle.absorb', outs, now: new Date(0), reply }));
  });
  await pool.close();
  const cells = BATTLES_B * 2 * CELLS;
  const line = (what: string, r: { ms: number; fills: number }) =>
    `${what}: ${(r.ms / 1000).toFixed(2)} s, ${perSec(BATTLES_B * STEPS, r.ms).toFixed(0)} battle-steps/s, ${M(perSec(cells, r.ms))} candle-steps/s (${(perSec(cells, r.ms) / ceilingRate).toFixed(3)} of the ceiling)`;
  console.log(`(b) ${BATTLES_B} battles × 2 agents × ${STEPS} steps, ${inPool.fills / BATTLES_B} fills per battle`);
  console.log(`    ${line('main thread, one after another', main)}`);
  console.log(`    ${line(`worker pool, ${threads} threads, all at once`, inPool)} → ${(main.ms / inPool.ms).toFixed(2)}× the main thread`);
}

async function main(): Promise<void> {
  const want = (part: string) => process.argv.length <= 2 || process.argv.includes(part);
  const candles = monthOfCandles();
  const s = seriesOf(candles);
  const ceiling = median(Array.from({ length: 7 }, () => {
    const t0 = performance.now();
    plainLoop(s);
    return performance.now() - t0;
  }));
  const ceilingRate = perSec(CELLS, ceiling);
  console.log(`one month: ${STEPS} steps × ${SYMBOLS.length} symbols; ceiling (bench/backtest's plain loop) ${ceiling.toFixed(2)} ms, ${M(ceilingRate)} candle-steps/s`);
  if (want('a')) await overRest(candles, ceilingRate);
  if (want('b')) await manyAtOnce(s, ceilingRate);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
