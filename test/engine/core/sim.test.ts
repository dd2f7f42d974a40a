import t from 'tap';
import { Money } from '../../../engine/core/money.js';
import { BACKTEST_RISK_BASE, initialState, placeAt, cancelAt, priceOf, step, type SimConfig, type SimState } from '../../../engine/core/sim.js';
import { allocSeries, candlesUpTo, closedSlot, fromScaled, setCandle, toScaled, type Series } from '../../../engine/core/series.js';
import type { PlaceInput } from '../../../engine/core/orders.js';
import { mulberry32 } from '../../../engine/market/prng.js';

const T0 = Date.UTC(2025, 0, 1);
const MIN = 60_000;
const PAIR = { symbol: 'BTCUSDT', base_asset: 'BTC', quote_asset: 'USDT', status: 'active' as const, min_qty: '0.00001', step_size: '0.00001', min_notional: '5' };

/**
 * Seven one-minute candles; the session starts at 00:02 (two candles of history) and runs 5 steps.
 * Slot 5 is missing. Volume is large, so slippage sits at its 0.01 % floor.
 */
const CANDLES: Array<[o: string, h: string, l: string, c: string] | null> = [
  ['100', '101', '99', '100'],
  ['100', '102', '99.5', '101'],
  ['101', '101.5', '95', '96'],
  ['96', '110', '96', '109'],
  ['112', '113', '111', '112.5'],
  null,
  ['112', '112', '90', '91'],
];

function fixture(): { series: Series; cfg: SimConfig; state: SimState } {
  const series = allocSeries({ symbols: ['BTCUSDT'], interval_ms: MIN, t0: T0, length: CANDLES.length });
  CANDLES.forEach((c, j) => c && setCandle(series, 0, { time: T0 + j * MIN, open: c[0], high: c[1], low: c[2], close: c[3], volume: '1000000' }));
  const cfg: SimConfig = { session_id: 's1', fee_rate: '0.001', start_ms: T0 + 2 * MIN, total_steps: 5, warmup: 2, snapshot_every: 60, pairs: [PAIR] };
  return { series, cfg, state: initialState('agent', '10000', 's1') };
}

let n = 0;
const order = (side: 'buy' | 'sell', type: PlaceInput['type'], price: string | null, quantity = '1'): PlaceInput => ({
  order_id: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`, trade_id: `t-${n}`, client_order_id: null, symbol: 'BTCUSDT', side, type, quantity, price,
});

function place(f: ReturnType<typeof fixture>, input: PlaceInput) {
  const d = placeAt(f.state, f.series, f.cfg, input, BACKTEST_RISK_BASE);
  if (!d.ok) throw new Error(`${d.code}: ${d.message}`);
  return d.order;
}
const usdt = (s: SimState) => s.wallet.balances.USDT;

t.test('a market order at T fills at the close of the last candle closed by T, never a later one', async (t) => {
  const f = fixture();
  const o = place(f, order('buy', 'market', null));
  // Last candle closed at 00:02 is slot 1 (close 101): 101 × 1.0001 slippage; not slot 2's open 101 or close 96.
  t.match(o, { status: 'filled', executed_price: '101.01010000', fee: '0.10101010', total_cost: '101.11111010', filled_at: '2025-01-01T00:02:00.000Z' });
  t.same(usdt(f.state), { available: '9898.88888990', locked: '0.00000000' });
  t.equal(f.state.wallet.positions.BTCUSDT.avg_entry_price, '101.11111010', 'average entry includes the buy fee');
});

t.test('resting orders fire on the next candle\'s range; each fill computed by hand', async (t) => {
  type Case = { name: string; setup?: Array<PlaceInput>; order: PlaceInput; steps_before_fill: number; fill: Record<string, string>; usdt: string };
  const cases: Case[] = [
    {
      name: 'limit buy 97: slot 2 (low 95) reaches it; opened above it, so it fills at its level',
      order: order('buy', 'limit', '97'), steps_before_fill: 1,
      fill: { executed_price: '97.00000000', fee: '0.09700000', filled_at: '2025-01-01T00:03:00.000Z' }, usdt: '9902.90300000',
    },
    {
      name: 'limit sell 101.8: reached by slot 1 (before the order) and slot 3, not slot 2; fires at step 2 at its price, never worse',
      setup: [order('buy', 'market', null)], order: order('sell', 'limit', '101.8'), steps_before_fill: 2,
      fill: { executed_price: '101.80000000', fee: '0.10180000', realized_pnl: '0.58708990' }, usdt: '10000.58708990',
    },
    {
      name: 'stop_loss buy 110.5 (waits for a rise): slot 3 tops at 110, slot 4 gaps open at 112 and fills there plus slippage',
      order: order('buy', 'stop_loss', '110.5'), steps_before_fill: 3,
      fill: { executed_price: '112.01120000', fee: '0.11201120', filled_at: '2025-01-01T00:05:00.000Z' }, usdt: '9887.87678880',
    },
    {
      name: 'take_profit sell 105: slot 3 (high 110) reaches it from an open of 96: at the level minus slippage',
      setup: [order('buy', 'market', null)], order: order('sell', 'take_profit', '105'), steps_before_fill: 2,
      fill: { executed_price: '104.98950000', fee: '0.10498950', realized_pnl: '3.77340040' }, usdt: '10003.77340040',
    },
    {
      name: 'stop_loss sell 96.5 (waits for a fall): slot 2 (low 95) fires it at the level minus slippage',
      setup: [order('buy', 'market', null)], order: order('sell', 'stop_loss', '96.5'), steps_before_fill: 1,
      fill: { executed_price: '96.49035000', fee: '0.09649035', realized_pnl: '-4.71725045' }, usdt: '9995.28274955',
    },
  ];
  for (const c of cases) {
    const f = fixture();
    for (const s of c.setup ?? []) place(f, s);
    const placed = place(f, c.order);
    t.equal(placed.status, 'pending', `${c.name}: rests`);
    for (let k = 1; k < c.steps_before_fill; k++) {
      const out = step(f.state, f.series, f.cfg, 1);
      t.same(out.closed, [], `${c.name}: nothing at step ${k}`);
    }
    const out = step(f.state, f.series, f.cfg, 1);
    t.equal(out.closed.length, 1, `${c.name}: fires at step ${c.steps_before_fill}`);
    t.match(out.closed[0], { order_id: placed.order_id, status: 'filled', ...c.fill }, c.name);
    t.same(usdt(f.state), { available: c.usdt, locked: '0.00000000' }, `${c.name}: cash`);
    t.equal(out.trades.length, 1);
  }
});

t.test('a gap keeps the last close; the end sells every position at the last close', async (t) => {
  const f = fixture();
  step(f.state, f.series, f.cfg, 4); // T = 00:06; slot 5 is missing, so the last close is still slot 4's 112.5
  t.equal(priceOf(f.series, f.cfg, f.state)('BTCUSDT'), '112.50000000');
  t.match(place(f, order('buy', 'market', null)), { executed_price: '112.51125000', fee: '0.11251125' });
  const limit = place(f, order('buy', 'limit', '113'));
  const out = step(f.state, f.series, f.cfg, 10);
  t.equal(out.steps_executed, 1, 'stops at total_steps');
  t.ok(f.state.finished);
  // Slot 6 opens at 112, below the limit: filled at the open plus slippage, better than the limit.
  t.match(out.closed[0], { order_id: limit.order_id, executed_price: '112.01120000', fee: '0.11201120' });
  // Then 2 BTC are sold at the last close 91 (minus slippage) against the average entry 112.37348623.
  t.match(out.closed[1], { side: 'sell', type: 'market', executed_qty: '2.00000000', executed_price: '90.99090000', fee: '0.18198180', realized_pnl: '-42.94715426' });
  t.same(usdt(f.state), { available: '9957.05284575', locked: '0.00000000' });
  t.same(f.state.wallet.positions, {});
  const last = out.snapshots[out.snapshots.length - 1];
  t.match(last, { t: T0 + 7 * MIN, total_equity: '9957.05284575', position_value: '0.00000000' });
  t.equal(step(f.state, f.series, f.cfg, 1).steps_executed, 0, 'a finished session does not step');
});

t.test('cancel releases the hold; the end cancels what is still open', async (t) => {
  const f = fixture();
  const a = place(f, order('buy', 'limit', '50'));
  const b = place(f, order('buy', 'limit', '60'));
  t.same(usdt(f.state), { available: '9889.89000000', locked: '110.11000000' });
  const c = cancelAt(f.state, f.series, f.cfg, a.order_id);
  t.ok(c.ok);
  t.same(usdt(f.state), { available: '9939.94000000', locked: '60.06000000' });
  t.equal(cancelAt(f.state, f.series, f.cfg, a.order_id).ok, false, 'not twice');
  const out = step(f.state, f.series, f.cfg, 5);
  t.match(out.closed, [{ order_id: b.order_id, status: 'cancelled', reject_reason: 'backtest_completed' }]);
  t.same(usdt(f.state), { available: '10000.00000000', locked: '0.00000000' });
});

t.test('insufficient funds and unknown symbols are refused; no price before the first close', async (t) => {
  const f = fixture();
  const big = placeAt(f.state, f.series, f.cfg, order('buy', 'market', null, '99'), BACKTEST_RISK_BASE);
  t.match(big, { ok: false, code: 'INSUFFICIENT_BALANCE' });
  const other = placeAt(f.state, f.series, f.cfg, { ...order('buy', 'market', null), symbol: 'ETHUSDT' }, BACKTEST_RISK_BASE);
  t.match(other, { ok: false, code: 'INVALID_SYMBOL' });
  const early = fixture();
  early.cfg.warmup = 0;
  early.cfg.start_ms = T0;
  t.match(placeAt(early.state, early.series, early.cfg, order('buy', 'market', null), BACKTEST_RISK_BASE), { ok: false, code: 'PRICE_NOT_AVAILABLE' });
});

t.test('candles at T: only candles closed by T, folded to coarser buckets aligned to the epoch', async (t) => {
  const { series } = fixture();
  const at = (T: number, interval = MIN) => candlesUpTo(series, 0, closedSlot(series, T), interval, 100);
  t.same(at(T0 + 2 * MIN).map((c) => c.close), ['100.00000000', '101.00000000'], 'at 00:02: slots 0 and 1');
  t.same(at(T0 + 2 * MIN + 59_999).length, 2, 'slot 2 is still forming at 00:02:59.999');
  t.same(at(T0 + 7 * MIN).length, 6, 'the missing slot gives no candle');
  t.same(at(T0 + 5 * MIN, 2 * MIN), [
    { time: T0, open: '100.00000000', high: '102.00000000', low: '99.00000000', close: '101.00000000', volume: '2000000.00000000' },
    { time: T0 + 2 * MIN, open: '101.00000000', high: '110.00000000', low: '95.00000000', close: '109.00000000', volume: '2000000.00000000' },
  ], '2-minute buckets; 00:04–00:06 has not closed at 00:05');
  t.same(candlesUpTo(series, 0, closedSlot(series, T0 + 7 * MIN), MIN, 2).map((c) => c.time), [T0 + 4 * MIN, T0 + 6 * MIN], 'limit keeps the newest');
});

t.test('scaled prices are exact: round trip and order agree with Decimal', async (t) => {
  const cases = ['0.00000001', '1', '23140.48', '90071992.54740991', '12345678.12345678', '0.1', '0.2', '0.3'];
  for (const c of cases) t.equal(fromScaled(toScaled(c)), new Money(c).toFixed(8), c);
  t.throws(() => toScaled('90071993'), RangeError, 'beyond 2^53 units refused');
  t.throws(() => toScaled('1.123456789'), RangeError, 'nine decimals refused');
  const draw = mulberry32(7);
  const units = () => (draw() % 2 ** 22) * 2 ** 30 + (draw() % 2 ** 30); // up to 2^52 units of 1e-8
  const wrong: string[] = [];
  for (let i = 0; i < 5000; i++) {
    const a = fromScaled(units());
    const b = i % 3 === 0 ? a : fromScaled(units());
    if ((toScaled(a) <= toScaled(b)) !== new Money(a).lte(b) || (toScaled(a) < toScaled(b)) !== new Money(a).lt(b)) wrong.push(`${a} ? ${b}`);
  }
  t.same(wrong, [], '5000 random pairs compare as their decimals do');
});

/** Seeded random candles for `symbols` × `length` slots (prices around 100, 2 decimals). */
function randomSeries(seed: number, symbols: string[], length: number, from = 0, into?: Series): Series {
  const s = into ?? allocSeries({ symbols, interval_ms: MIN, t0: T0, length });
  const draw = mulberry32(seed);
  symbols.forEach((_, k) => {
    let p = 10_000;
    for (let j = 0; j < length; j++) {
      const o = p;
      p = Math.max(5_000, p + (draw() % 201) - 100);
      const hi = Math.max(o, p) + (draw() % 50);
      const lo = Math.min(o, p) - (draw() % 50);
      if (j < from) continue;
      const f = (x: number) => (x / 100).toFixed(2);
      setCandle(s, k, { time: T0 + j * MIN, open: f(o), high: f(hi), low: f(lo), close: f(p), volume: String(1 + (draw() % 1000)) });
    }
  });
  return s;
}

t.test('no look-ahead: rewriting every candle after T changes nothing up to T', async (t) => {
  const symbols = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
  const pairs = symbols.map((symbol) => ({ ...PAIR, symbol, base_asset: symbol.slice(0, 3), min_notional: '0' }));
  for (const k of [1, 17, 120, 250]) {
    const run = (series: Series) => {
      const cfg: SimConfig = { session_id: 'p', fee_rate: '0.001', start_ms: T0 + 10 * MIN, total_steps: 280, warmup: 10, snapshot_every: 7, pairs };
      const state = initialState('a', '100000', 'p');
      const draw = mulberry32(99);
      const log: unknown[] = [];
      let id = 0;
      while (state.step < k) {
        const sym = symbols[draw() % 3];
        const last = Number(priceOf(series, cfg, state)(sym));
        const kind = draw() % 4;
        const input: PlaceInput = {
          order_id: `00000000-0000-4000-8000-${String(++id).padStart(12, '0')}`, trade_id: `t${id}`, client_order_id: null, symbol: sym,
          side: kind === 1 ? 'buy' : draw() % 2 ? 'buy' : 'sell', type: (['market', 'limit', 'stop_loss', 'take_profit'] as const)[kind],
          quantity: '1', price: kind === 0 ? null : (last * (0.97 + (draw() % 60) / 1000)).toFixed(2),
        };
        log.push(placeAt(state, series, cfg, input, BACKTEST_RISK_BASE));
        const out = step(state, series, cfg, Math.min(1 + (draw() % 5), k - state.step));
        log.push(out.closed, out.trades, out.snapshots);
      }
      return { state: JSON.stringify(state), log: JSON.stringify(log) };
    };
    const base = randomSeries(5, symbols, 300);
    const future = randomSeries(5, symbols, 300);
    randomSeries(6, symbols, 300, 10 + k, future); // every slot from the one step k+1 would reveal onwards is different
    const a = run(base);
    const b = run(future);
    t.equal(b.state, a.state, `state at step ${k}`);
    t.equal(b.log, a.log, `fills and snapshots up to step ${k}`);
    t.ok(a.log.includes('"filled"'), 'the scenario does fill orders');
  }
});
