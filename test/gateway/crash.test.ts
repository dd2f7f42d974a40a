import t from 'tap';
import type { Decimal } from 'decimal.js';
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fmt, money } from '../../engine/core/money.js';
import type { OrderRec } from '../../engine/core/wallet.js';
import { intIn, mulberry32 } from '../../engine/market/prng.js';
import { backends } from '../helpers/server.js';
import { call, checkApiAgainstJournal, checkTables, eq, iso, must, problems, readStored, viewOf, type Answer, type Problems, type View } from '../helpers/durability.js';
import { baseEnv, ensureBuilt, FakeBinance, freshStorage, reap, startGateway, type GatewayProcess, type Storage } from '../helpers/gateway-process.js';

/**
 * Acked means durable, under SIGKILL. The real server process (dist/gateway/main.js) takes sustained order flow
 * from concurrent clients (market, resting and marketable limit, stop-loss, take-profit orders, cancels, doubled
 * client_order_ids) while the test's own Binance-format stream moves prices, and is killed at a random moment,
 * several times in a row; in even rounds the kill lands on the first answer to an order sent twice at once. After
 * each crash it restarts on the same storage, and then: every acknowledged order is there in its acknowledged
 * state or a legal later one; nothing the clients did not send exists, and nothing they were refused; fills, holds
 * and balances add up exactly from the trade history; and each wallet, as the API shows it and as the projection
 * tables hold it, equals a replay of its journal stream from the first event. Requests that got no answer may or
 * may not have happened; either way the state is whole. CRASH_SEED=<n> replays a run's choices.
 */

const ROUNDS = 3;
const AGENTS = 4;
const CLIENTS_PER_AGENT = 2;
const STARTING_BALANCE = '100000';
const SEED = process.env.CRASH_SEED ? Number(process.env.CRASH_SEED) : randomInt(2 ** 31);

/** Quantities are whole steps of the pair; mid prices are where the test's feed oscillates (±0.2 %). */
const MARKETS = {
  BTCUSDT: { base: 'BTC', mid: 50000, step: '0.00001', steps: [20, 400], dp: 2 },
  ETHUSDT: { base: 'ETH', mid: 3000, step: '0.0001', steps: [20, 600], dp: 2 },
} as const;
type Symbol = keyof typeof MARKETS;
const SYMBOLS = Object.keys(MARKETS) as Symbol[];
const baseOf = (symbol: string) => MARKETS[symbol as Symbol].base;

type Rand = () => number;
const uniform = (r: Rand, lo: number, hi: number) => lo + (r() / 2 ** 32) * (hi - lo);

interface OrderBody {
  symbol: Symbol;
  side: 'buy' | 'sell';
  type: OrderRec['type'];
  quantity: string;
  price?: string;
  client_order_id: string;
}

/** Everything the clients sent for one client_order_id, and every answer they got. */
interface Attempt {
  body: OrderBody;
  acks: any[];
  unanswered: number;
  refusals: string[];
}

interface Agent {
  id: string;
  key: Record<string, string>;
  attempts: Map<string, Attempt>;
  /** order_id → the order as its placement was acknowledged. */
  placed: Map<string, any>;
  /** order_id → the order as its cancel was acknowledged. */
  cancelled: Map<string, any>;
  /** Acknowledged-pending orders a client may try to cancel. */
  cancellable: string[];
}

interface Counts {
  requests: number;
  acked_orders: number;
  unanswered: number;
  refused: number;
  acked_cancels: number;
  duplicates: number;
}

const price = (symbol: Symbol, factor: number) => money(MARKETS[symbol].mid).times(factor).toDecimalPlaces(MARKETS[symbol].dp).toFixed(MARKETS[symbol].dp);

function randomOrder(r: Rand, cid: string): OrderBody {
  const symbol = SYMBOLS[intIn(r(), 0, SYMBOLS.length - 1)];
  const m = MARKETS[symbol];
  const quantity = fmt(money(m.step).times(intIn(r(), m.steps[0], m.steps[1])));
  const roll = intIn(r(), 0, 99);
  const o = (side: 'buy' | 'sell', type: OrderRec['type'], lo?: number, hi?: number): OrderBody => ({
    symbol, side, type, quantity, client_order_id: cid, ...(lo !== undefined && { price: price(symbol, uniform(r, lo, hi!)) }),
  });
  if (roll < 25) return o('buy', 'market');
  if (roll < 37) return o('sell', 'market');
  if (roll < 55) return o('buy', 'limit', 0.8, 0.95); // rests
  if (roll < 63) return o('sell', 'limit', 1.05, 1.2); // rests
  if (roll < 78) return o('buy', 'limit', 1.0005, 1.002); // fills on a coming tick
  if (roll < 86) return o('sell', 'limit', 0.998, 0.9995); // fills on a coming tick
  if (roll < 93) return o('sell', 'stop_loss', 0.9985, 0.9995); // may fire
  return o('sell', 'take_profit', 1.1, 1.3); // rests
}

function record(a: Agent, attempt: Attempt, ans: Answer | null, counts: Counts): void {
  counts.requests++;
  if (!ans) {
    attempt.unanswered++;
    counts.unanswered++;
  } else if (ans.status === 201 && ans.body?.order_id) {
    attempt.acks.push(ans.body);
    counts.acked_orders++;
    if (!a.placed.has(ans.body.order_id)) {
      a.placed.set(ans.body.order_id, ans.body);
      if (ans.body.status === 'pending') a.cancellable.push(ans.body.order_id);
    }
  } else {
    attempt.refusals.push(`${ans.status} ${ans.body?.error?.code}`);
    counts.refused++;
  }
}

function newAttempt(a: Agent, body: OrderBody): Attempt {
  const attempt: Attempt = { body, acks: [], unanswered: 0, refusals: [] };
  a.attempts.set(body.client_order_id, attempt);
  return attempt;
}

/** Places one order (sometimes twice at once, same client_order_id) or cancels an acknowledged one. */
async function oneAction(base: string, a: Agent, r: Rand, nextCid: () => string, counts: Counts): Promise<void> {
  const roll = intIn(r(), 0, 99);
  if (roll < 15 && a.cancellable.length > 0) {
    const id = a.cancellable.splice(intIn(r(), 0, a.cancellable.length - 1), 1)[0];
    counts.requests++;
    const ans = await call(base, 'DELETE', `/api/v1/trade/order/${id}`, a.key);
    if (!ans) counts.unanswered++;
    else if (ans.status === 200) {
      a.cancelled.set(id, ans.body);
      counts.acked_cancels++;
    }
    return;
  }
  const body = randomOrder(r, nextCid());
  const attempt = newAttempt(a, body);
  const copies = roll >= 94 ? 2 : 1;
  if (copies === 2) counts.duplicates++;
  const answers = await Promise.all(Array.from({ length: copies }, () => call(base, 'POST', '/api/v1/trade/order', a.key, body)));
  for (const ans of answers) record(a, attempt, ans, counts);
}

/**
 * A resting order sent twice at once with one client_order_id; the process is killed the moment the first
 * answer arrives. Whichever request it answers, the order must then be durable.
 */
async function killOnFirstAnswer(gw: GatewayProcess, a: Agent, cid: string, counts: Counts): Promise<void> {
  const body: OrderBody = { symbol: 'BTCUSDT', side: 'buy', type: 'limit', quantity: '0.001', price: price('BTCUSDT', 0.9), client_order_id: cid };
  const attempt = newAttempt(a, body);
  counts.duplicates++;
  const both = [0, 1].map(() => call(gw.url, 'POST', '/api/v1/trade/order', a.key, body));
  await Promise.race(both);
  gw.child.kill('SIGKILL');
  for (const ans of await Promise.all(both)) record(a, attempt, ans, counts);
}

/** A restarted server has no prices until the feed sends some: one big print per symbol keeps slippage at its floor. */
async function primePrices(gw: GatewayProcess, feed: FakeBinance, seen: number): Promise<void> {
  await feed.connectionAfter(seen);
  // A feed that could not connect in time falls back to synthetic prices, which would move orders unseen.
  if (gw.output().includes('feed.fallback')) throw new Error(`the server fell back to synthetic prices:\n${gw.output()}`);
  for (const until = Date.now() + 10_000; Date.now() < until; await sleep(20)) {
    for (const s of SYMBOLS) feed.tick(s, price(s, 1), '100000000');
    const p = await call(gw.url, 'GET', '/api/v1/market/price/ETHUSDT', {});
    if (p?.status === 200) return;
  }
  throw new Error('the server never showed the prices the feed sent');
}

/**
 * Order flow until SIGKILL lands `kill_ms` after the first acknowledged order (blind, or on the first answer to
 * a doubled request); returns when every client has seen its last answer.
 */
async function crashUnderLoad(gw: GatewayProcess, feed: FakeBinance, agents: Agent[], r: Rand, kill: { ms: number; onAnswer: boolean }, round: number, counts: Counts) {
  let running = true;
  let n = 0;
  const nextCid = () => `r${round}-${++n}`;
  const ticker = setInterval(() => {
    for (const s of SYMBOLS) feed.tick(s, price(s, uniform(r, 0.998, 1.002)), '0.5');
  }, 15);
  const clients = agents.flatMap((a) =>
    Array.from({ length: CLIENTS_PER_AGENT }, async () => {
      while (running) await oneAction(gw.url, a, r, nextCid, counts);
    }),
  );
  // A loaded machine can take a while to answer the first order after a start; the flow counts from there.
  const until = Date.now() + 30_000;
  while (counts.acked_orders === 0 && gw.child.exitCode === null && Date.now() < until) await sleep(5);
  await sleep(kill.ms);
  if (kill.onAnswer) await killOnFirstAnswer(gw, agents[0], `r${round}-tripwire`, counts);
  else gw.child.kill('SIGKILL');
  // The flow goes on until the process is gone: answers already on their way when the signal landed are not the
  // last thing the clients see, requests sent into the dying server are.
  const exited = await gw.exited;
  running = false;
  clearInterval(ticker);
  await Promise.all(clients);
  return exited;
}

const IMMUTABLE = ['order_id', 'client_order_id', 'symbol', 'side', 'type', 'quantity', 'price', 'locked_amount', 'created_at'] as const;
const NUMERIC = new Set<string>(['quantity', 'price', 'locked_amount']);
const FILL = ['status', 'executed_price', 'executed_qty', 'fee', 'filled_at'] as const;
const LATER: Record<string, string[]> = { pending: ['pending', 'filled', 'cancelled', 'rejected'], filled: ['filled'], cancelled: ['cancelled'], rejected: ['rejected'] };

/** Orders after the restart, against what the clients sent and were told. */
function checkOrders(a: Agent, v: View): Problems {
  const p: Problems = { lost: [], changed: [], phantom: [], refused_but_exists: [], duplicates: [] };
  const byId = new Map(v.orders.map((o) => [o.order_id, o]));
  const byCid = new Map(v.orders.map((o) => [o.client_order_id, o]));
  for (const [cid, at] of a.attempts) {
    const ids = new Set(at.acks.map((x) => x.order_id));
    if (ids.size > 1) p.duplicates.push(`${cid}: one client_order_id acknowledged as ${[...ids].join(', ')}`);
    const now = byCid.get(cid);
    if (!now) continue;
    if (at.acks.length === 0 && at.unanswered === 0) p.refused_but_exists.push(`${cid} (${at.refusals.join('; ')}) exists as ${now.order_id} ${now.status}`);
    const sent = at.body;
    if (now.symbol !== sent.symbol || now.side !== sent.side || now.type !== sent.type || !eq(now.quantity, sent.quantity) || !eq(now.price, sent.price ?? null)) {
      p.phantom.push(`${cid}: stored ${JSON.stringify(now)} differs from what was sent ${JSON.stringify(sent)}`);
    }
  }
  for (const o of v.orders) if (!a.attempts.has(o.client_order_id)) p.phantom.push(`${o.order_id}: client_order_id ${o.client_order_id} was never sent`);
  for (const [id, acked] of a.placed) {
    const now = byId.get(id);
    if (!now) {
      const at = a.attempts.get(acked.client_order_id)!;
      p.lost.push(`acked ${acked.status} ${acked.type} ${acked.side} ${acked.client_order_id} ${id} is gone (sent ${at.acks.length + at.unanswered + at.refusals.length}×: ${at.acks.length} acked, ${at.unanswered} unanswered)`);
      continue;
    }
    const diff: string[] = IMMUTABLE.filter((k) => (k === 'created_at' ? iso(now[k]) !== iso(acked[k]) : NUMERIC.has(k) ? !eq(now[k], acked[k]) : now[k] !== acked[k]));
    if (acked.status === 'filled') diff.push(...FILL.filter((k) => (k === 'filled_at' ? iso(now[k]) !== iso(acked[k]) : k === 'status' ? now[k] !== acked[k] : !eq(now[k], acked[k]))));
    if (!LATER[acked.status].includes(now.status)) diff.push(`status ${acked.status} → ${now.status}`);
    const cancel = a.cancelled.get(id);
    if (cancel && (now.status !== 'cancelled' || iso(now.cancelled_at) !== iso(cancel.cancelled_at))) diff.push(`acked cancel, now ${now.status}`);
    if (diff.length) p.changed.push(`${id} (${acked.client_order_id}): ${diff.join(', ')}`);
  }
  return p;
}

/** Exactly one trade per filled order, matching it, and none for anything else. */
function checkFills(v: View): Problems {
  const p: Problems = { trades: [] };
  const tradesOf = new Map<string, any[]>();
  for (const tr of v.trades) tradesOf.set(tr.order_id, [...(tradesOf.get(tr.order_id) ?? []), tr]);
  for (const o of v.orders) {
    const ts = tradesOf.get(o.order_id) ?? [];
    if (o.status === 'filled') {
      if (ts.length !== 1) p.trades.push(`filled ${o.order_id} has ${ts.length} trades`);
      else if (!eq(ts[0].quantity, o.executed_qty) || !eq(ts[0].price, o.executed_price) || !eq(ts[0].fee, o.fee) || ts[0].side !== o.side) p.trades.push(`trade of ${o.order_id} differs from its order`);
    } else if (ts.length) p.trades.push(`${o.status} ${o.order_id} has ${ts.length} trades`);
    tradesOf.delete(o.order_id);
  }
  for (const id of tradesOf.keys()) p.trades.push(`trade for unknown order ${id}`);
  return p;
}

const ASSETS = ['USDT', ...SYMBOLS.map(baseOf)];
const NO_BALANCE = { available: '0', locked: '0', total: '0' };

/** The open list is exactly the pending orders, and their holds are exactly what is locked. */
function checkHolds(v: View): Problems {
  const p: Problems = { open: [], holds: [] };
  const pending = v.orders.filter((o) => o.status === 'pending');
  const openIds = new Set(v.open.map((o) => o.order_id));
  if (pending.length !== v.open.length || !pending.every((o) => openIds.has(o.order_id))) {
    p.open.push(`pending in history: ${pending.map((o) => o.order_id).sort().join(',')}; open: ${[...openIds].sort().join(',')}`);
  }
  const locked = new Map<string, Decimal>();
  for (const o of v.open) {
    const asset = o.side === 'buy' ? 'USDT' : baseOf(o.symbol);
    locked.set(asset, (locked.get(asset) ?? money(0)).plus(o.locked_amount));
  }
  for (const asset of ASSETS) {
    const b = v.balances.find((x) => x.asset === asset) ?? NO_BALANCE;
    if (!money(b.locked).eq(locked.get(asset) ?? 0)) p.holds.push(`${asset} locked ${b.locked}, open orders hold ${fmt(locked.get(asset) ?? 0)}`);
    if (money(b.available).lt(0) || money(b.locked).lt(0)) p.holds.push(`${asset} negative: ${JSON.stringify(b)}`);
  }
  return p;
}

/** Exact to 8 decimals: each asset's available + locked is the starting balance plus the signed trades. */
function checkConservation(v: View): Problems {
  const p: Problems = { conservation: [] };
  const expected = new Map<string, Decimal>([['USDT', money(STARTING_BALANCE)]]);
  const add = (asset: string, d: Decimal) => expected.set(asset, (expected.get(asset) ?? money(0)).plus(d));
  for (const tr of v.trades) {
    add(baseOf(tr.symbol), tr.side === 'buy' ? money(tr.quantity) : money(tr.quantity).neg());
    add('USDT', tr.side === 'buy' ? money(tr.quote_amount).plus(tr.fee).neg() : money(tr.quote_amount).minus(tr.fee));
  }
  for (const asset of ASSETS) {
    const b = v.balances.find((x) => x.asset === asset) ?? NO_BALANCE;
    const want = fmt(expected.get(asset) ?? 0);
    if (fmt(money(b.available).plus(b.locked)) !== want || fmt(b.total) !== want) p.conservation.push(`${asset}: available ${b.available} + locked ${b.locked} (total ${b.total}), trades say ${want}`);
    const pos = v.positions.find((x) => x.asset === asset);
    if (asset !== 'USDT' && fmt(pos?.quantity ?? 0) !== want) p.conservation.push(`${asset} position ${pos?.quantity ?? 'none'}, trades say ${want}`);
  }
  return p;
}

/** What the restarted server answers, against what the clients were told, and adding up by itself. */
const checkAnswers = (a: Agent, v: View): Problems => ({ ...checkOrders(a, v), ...checkFills(v), ...checkHolds(v), ...checkConservation(v) });

/** Registers an account and its trading agents, each with limits that let sustained flow through. */
async function setUp(base: string): Promise<Agent[]> {
  const reg = await must(base, 'POST', '/api/v1/auth/register', {}, { display_name: 'Crash', starting_balance: STARTING_BALANCE });
  const { token } = await must(base, 'POST', '/api/v1/auth/login', {}, { api_key: reg.api_key, api_secret: reg.api_secret });
  const risk = { max_position_size_pct: 100, daily_loss_limit_pct: 100, max_open_orders: 200, max_order_size_pct: 100, min_order_size_usd: 0, order_rate_limit: 1_000_000 };
  const agents: Agent[] = [];
  for (let i = 0; i < AGENTS; i++) {
    const created = await must(base, 'POST', '/api/v1/agents', { authorization: `Bearer ${token}` }, { display_name: `Crash ${i}`, starting_balance: STARTING_BALANCE, risk_profile: risk });
    agents.push({ id: created.agent_id, key: { 'x-api-key': created.api_key }, attempts: new Map(), placed: new Map(), cancelled: new Map(), cancellable: [] });
  }
  return agents;
}

ensureBuilt((m) => t.comment(m));
t.comment(`CRASH_SEED=${SEED}`);

for (const backend of backends()) {
  t.test(`SIGKILL under order flow loses no acked order, on ${backend.name}`, async (t) => {
    const started = Date.now();
    const storage: Storage = await freshStorage(backend.name);
    t.teardown(() => storage.drop());
    const feed = new FakeBinance();
    t.teardown(() => feed.close());
    await feed.ready;
    const env = {
      ...baseEnv(), ...storage.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', KDF_COST: '1024', FEED: 'binance', FEED_URL: feed.url,
      RATE_AGENT_PER_MINUTE: '1000000', RATE_ACCOUNT_PER_MINUTE: '1000000',
    };
    const r = mulberry32(SEED + (backend.name === 'postgres' ? 1 : 0));
    const total: Counts = { requests: 0, acked_orders: 0, unanswered: 0, refused: 0, acked_cancels: 0, duplicates: 0 };

    let gw = await startGateway(env);
    t.teardown(() => reap(gw));
    const agents = await setUp(gw.url);
    t.comment(`first start on fresh storage and set-up in ${Date.now() - started} ms`);

    let seen = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      await primePrices(gw, feed, seen);
      const kill = { ms: intIn(r(), 200, 1500), onAnswer: round % 2 === 0 };
      const counts: Counts = { requests: 0, acked_orders: 0, unanswered: 0, refused: 0, acked_cancels: 0, duplicates: 0 };
      const exit = await crashUnderLoad(gw, feed, agents, r, kill, round, counts);
      t.equal(exit.signal, 'SIGKILL', `round ${round}: killed ${kill.ms} ms into the flow${kill.onAnswer ? ', on the first answer to a doubled order' : ''}`);
      for (const k of Object.keys(total) as Array<keyof Counts>) total[k] += counts[k];
      t.comment(`round ${round}: ${JSON.stringify(counts)}`);
      t.ok(counts.acked_orders > 0 && counts.unanswered > 0, `round ${round}: orders were acked and requests were cut off by the kill`);

      const readDb = async () => {
        const db = await storage.open();
        try {
          return await Promise.all(agents.map((a) => readStored(db, a.id)));
        } finally {
          await db.close();
        }
      };
      // The database is read straight after the crash (the test's own PGlite recovers the embedded store), and the
      // server restarts on what that left; in the last round the restarted server recovers the store itself and
      // the database is read after it stops cleanly. No prices are sent meanwhile, so nothing moves.
      const last = round === ROUNDS;
      let t0 = Date.now();
      const stored = last ? null : await readDb();
      const read_ms = Date.now() - t0;
      seen = feed.connections;
      t0 = Date.now();
      gw = await startGateway(env);
      const restart_ms = Date.now() - t0;
      t0 = Date.now();
      const views: View[] = [];
      for (const a of agents) {
        const v = await viewOf(gw.url, a.key);
        views.push(v);
        t.same(problems(checkAnswers(a, v)), {}, `round ${round}, agent ${a.id.slice(0, 8)}: ${a.placed.size} acked orders intact; ${v.orders.length} orders, ${v.trades.length} fills, ${v.open.length} resting add up`);
      }
      if (last) {
        await feed.connectionAfter(seen);
        gw.child.kill('SIGTERM');
        t.same(await gw.exited, { code: 0, signal: null }, 'clean stop after the last restart');
      }
      t.comment(`round ${round}: database read in ${read_ms} ms, restart in ${restart_ms} ms, API read in ${Date.now() - t0} ms`);
      for (const [i, s] of (stored ?? (await readDb())).entries()) {
        const a = agents[i];
        t.same(problems({ ...checkTables(a.placed, s), ...checkApiAgainstJournal(s, views[i]) }), {}, `round ${round}, agent ${a.id.slice(0, 8)}: journal replay (${s.orders.size} orders) equals the API and the tables`);
      }
    }
    const refusals: Record<string, number> = {};
    for (const a of agents) for (const at of a.attempts.values()) for (const x of at.refusals) refusals[x] = (refusals[x] ?? 0) + 1;
    t.comment(`${backend.name}: ${JSON.stringify(total)}, refusals ${JSON.stringify(refusals)}, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
}
