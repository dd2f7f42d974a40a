import t from 'tap';
import { computeMetrics, rankBy, sumSeries, type EquityPoint, type Metrics, type RankMetric } from '../../../engine/core/metrics.js';

// Every expected value below is worked out by hand in the comment next to it; closed forms such as √2920 were
// evaluated to 8 decimals (half-up) separately.
const T0 = Date.UTC(2024, 0, 1); // a UTC midnight
const H = 3_600_000;
const D = 86_400_000;
const series = (step: number, values: string[], from = T0): EquityPoint[] => values.map((equity, i) => ({ t: from + i * step, equity }));
const pnls = (values: string[], step = H) => values.map((realized_pnl, i) => ({ realized_pnl, t: T0 + i * step }));
/** The fields of `m` named in `expected`, for an exact comparison (t.match would accept substrings). */
const fields = (m: Metrics, expected: Partial<Metrics>) => Object.fromEntries(Object.keys(expected).map((k) => [k, m[k as keyof Metrics]]));

t.test('a flat series with no trades: zero ROI and drawdown, undefined ratios and trade stats', async (t) => {
  // Daily 1000, 1000, 1000: returns [0, 0], s = 0 and DD = 0 → both ratios null. Span 2 days, 0 trades → 0/day.
  t.strictSame(computeMetrics({ starting_balance: '1000', equity: series(D, ['1000', '1000', '1000']), trades: [] }), {
    roi_pct: '0.00000000', total_pnl: '0.00000000', sharpe_ratio: null, sortino_ratio: null,
    max_drawdown_pct: '0.00000000', max_drawdown_duration_s: 0,
    win_rate: null, profit_factor: null, avg_win: null, avg_loss: null, best_trade: null, worst_trade: null,
    total_trades: 0, winning_trades: 0, losing_trades: 0, breakeven_trades: 0, max_win_streak: 0, max_loss_streak: 0, current_streak: 0,
    trades_per_day: '0.00000000', final_equity: '1000.00000000',
  } satisfies Metrics);
});

t.test('daily returns with a loss and a trade history: every field', async (t) => {
  // Days 0..3: 1000, 1200, 1080, 1188 → r = [0.2, −0.1, 0.1]. mean = 0.2/3 = 1/15.
  // Deviations 2/15, −1/6, 1/30 → squares (4 + 6.25 + 0.25)/225 = 10.5/225; / (n−1 = 2) → 7/300.
  // Sharpe = (1/15) / √(7/300) × √365 = √(109500/7) / 15 = 8.33809388.
  // DD = √(0.1² / 3) = √(1/300); Sortino = (1/15) × √300 × √365 = √109500 / 15 = 22.06052281.
  // ROI = 188/1000 = 18.8 %. Drawdown: peak 1200 (day 1) → 1080 = 10 %, never regained → day 3 − day 1 = 172800 s.
  // Trades (given out of order) sorted by time: +10, +5, −3, 0, −2, −4, +1 → 3 wins, 3 losses, 1 breakeven.
  // win rate 3/7 = 42.857142857… %; profit factor 16/9 = 1.7777…; avg win 16/3; avg loss −9/3 = −3;
  // streaks: wins (10, 5) = 2, losses (−2, −4) = 2 since the 0 breaks −3; last trade +1 → current +1.
  // Period 3.5 days → 7 / 3.5 = 2 trades per day.
  const trades = pnls(['10', '5', '-3', '0', '-2', '-4', '1'], 12 * H);
  const m = computeMetrics({
    starting_balance: '1000', equity: series(D, ['1000', '1200', '1080', '1188']), trades: [trades[3], ...trades.slice(4), ...trades.slice(0, 3)],
    period_start: T0, period_end: T0 + 3.5 * D,
  });
  t.strictSame(m, {
    roi_pct: '18.80000000', total_pnl: '188.00000000', sharpe_ratio: '8.33809388', sortino_ratio: '22.06052281',
    max_drawdown_pct: '10.00000000', max_drawdown_duration_s: 172800,
    win_rate: '42.85714286', profit_factor: '1.77777778', avg_win: '5.33333333', avg_loss: '-3.00000000', best_trade: '10.00000000', worst_trade: '-4.00000000',
    total_trades: 7, winning_trades: 3, losing_trades: 3, breakeven_trades: 1, max_win_streak: 2, max_loss_streak: 2, current_streak: 1,
    trades_per_day: '2.00000000', final_equity: '1188.00000000',
  } satisfies Metrics);
});

t.test('returns, Sharpe and Sortino: daily and per-point conventions', async (t) => {
  const cases: Array<[label: string, equity: EquityPoint[], expected: Partial<Metrics>]> = [
    // Days 0..3: 1000, 1100, 1155, 1270.5 → r = [0.1, 0.05, 0.1]; mean 1/12; deviations 1/60, −1/30, 1/60 →
    // Σ² = 6/3600, /2 = 1/1200, s = 1/√1200; Sharpe = (1/12)·√1200·√365 = 5·√(365/3) = 55.15130703.
    // No negative return → DD = 0 → Sortino null. ROI 270.5/1000 = 27.05 %. Never below a peak.
    ['monotone rise', series(D, ['1000', '1100', '1155', '1270.5']),
      { roi_pct: '27.05000000', sharpe_ratio: '55.15130703', sortino_ratio: null, max_drawdown_pct: '0.00000000', max_drawdown_duration_s: 0 }],
    // Same day, hourly: 1000, 1100, 1045, 1149.5 → r = [0.1, −0.05, 0.1]; point mode, 3 gaps over 3 h → 8760/yr.
    // mean 0.05; deviations 0.05, −0.1, 0.05 → Σ² = 0.015, /2 = 0.0075; Sharpe = 0.05/√0.0075·√8760 = √(8760/3) = √2920 = 54.03702434.
    // DD = √(0.0025/3) = 0.05/√3; Sortino = √3·√8760 = √26280 = 162.11107303.
    // Drawdown: 1100 (h1) → 1045 = 5 %, regained at h3 → 2 h = 7200 s. ROI 14.95 %.
    ['sub-day series, hourly points', series(H, ['1000', '1100', '1045', '1149.5']),
      { roi_pct: '14.95000000', sharpe_ratio: '54.03702434', sortino_ratio: '162.11107303', max_drawdown_pct: '5.00000000', max_drawdown_duration_s: 7200 }],
    // The same points at 22:00, 23:00, 00:00, 01:00 fall on two UTC days: still point mode, same numbers.
    ['two UTC days across midnight use points, not days', series(H, ['1000', '1100', '1045', '1149.5'], T0 + 22 * H),
      { sharpe_ratio: '54.03702434', sortino_ratio: '162.11107303' }],
    // Points at 0 h, 1 h, 3 h: mean spacing 1.5 h → 365·24/1.5 = 5840/yr. r = [0.1, −0.05]; mean 0.025;
    // s = √(2·0.075²/1) = 0.075√2; Sharpe = 0.025/(0.075√2)·√5840 = √(5840/18) = √2920/3 = 18.01234145.
    // DD = √(0.05²/2) = 0.05/√2; Sortino = (0.025√2/0.05)·√5840 = √2920 = 54.03702434.
    ['uneven spacing annualises by the mean spacing', [{ t: T0, equity: '1000' }, { t: T0 + H, equity: '1100' }, { t: T0 + 3 * H, equity: '1045' }],
      { sharpe_ratio: '18.01234145', sortino_ratio: '54.03702434' }],
    // Day 0: 1000 at 00:00, 5000 at 12:00, 1000 at 23:00; day 1: 1100; day 2: 1155. The last point of each day
    // gives 1000, 1100, 1155 → r = [0.1, 0.05]; mean 0.075, s = √(2·0.025²) = 0.025√2;
    // Sharpe = (3/√2)·√365 = √1642.5 = 40.52776826; no negative return → Sortino null.
    // The intraday spike still counts for drawdown: 5000 → 1000 = 80 %, never regained: day 2 12:00 − day 0 12:00 = 172800 s.
    ['several points a day: returns use the last of each day, drawdown uses all',
      [{ t: T0, equity: '1000' }, { t: T0 + 12 * H, equity: '5000' }, { t: T0 + 23 * H, equity: '1000' }, { t: T0 + D + 12 * H, equity: '1100' }, { t: T0 + 2 * D + 12 * H, equity: '1155' }],
      { roi_pct: '15.50000000', sharpe_ratio: '40.52776826', sortino_ratio: null, max_drawdown_pct: '80.00000000', max_drawdown_duration_s: 172800 }],
    // Hourly 1000, 0, 500, 1000: r = [−1, (skipped: previous equity 0), 1] → mean 0 → Sharpe 0 and Sortino 0.
    // Drawdown 1000 → 0 = 100 %, regained at h3 → 10800 s.
    ['a return after zero equity is skipped', series(H, ['1000', '0', '500', '1000']),
      { sharpe_ratio: '0.00000000', sortino_ratio: '0.00000000', max_drawdown_pct: '100.00000000', max_drawdown_duration_s: 10800 }],
    // One return only → undefined ratios.
    ['two points give one return', series(H, ['1000', '1100']), { sharpe_ratio: null, sortino_ratio: null, roi_pct: '10.00000000' }],
    // Three points at one instant: no spacing to annualise by.
    ['points at one instant', series(0, ['1000', '1100', '1000']), { sharpe_ratio: null, sortino_ratio: null }],
    // No points: final equity is the starting balance.
    ['no equity points', [], { roi_pct: '0.00000000', total_pnl: '0.00000000', final_equity: '1000.00000000', sharpe_ratio: null, max_drawdown_pct: '0.00000000' }],
  ];
  for (const [label, equity, expected] of cases) {
    t.strictSame(fields(computeMetrics({ starting_balance: '1000', equity, trades: [] }), expected), expected, label);
  }
});

t.test('max drawdown depth and duration (longest time from a peak until it is regained)', async (t) => {
  const cases: Array<[label: string, values: string[], pct: string, seconds: number]> = [
    // Peak 120 at h1, trough 90 → 30/120 = 25 %; 120 again at h4 → 3 h.
    ['recovers', ['100', '120', '90', '108', '120', '130'], '25.00000000', 10800],
    // Peak 120 at h1, trough 90 → 25 %; never back → to the last point h3 → 2 h.
    ['never recovers', ['100', '120', '90', '96'], '25.00000000', 7200],
    // 100 → 80 (20 %) regained at h2 after 2 h; then 100 (h2) → 95 (5 %) never regained → h6 − h2 = 4 h.
    ['the deepest and the longest drawdown differ', ['100', '80', '100', '95', '96', '97', '99'], '20.00000000', 14400],
    // 100 at h0 and again at h1: the fall starts from the later one → h3 − h1 = 2 h, depth 10 %.
    ['a repeated peak restarts the clock', ['100', '100', '90', '100'], '10.00000000', 7200],
    ['rising only', ['100', '101', '102'], '0.00000000', 0],
  ];
  for (const [label, values, pct, seconds] of cases) {
    const m = computeMetrics({ starting_balance: '100', equity: series(H, values), trades: [] });
    t.equal(m.max_drawdown_pct, pct, `${label}: depth`);
    t.equal(m.max_drawdown_duration_s, seconds, `${label}: duration`);
  }
});

t.test('trade statistics: win rate, profit factor, averages and streaks', async (t) => {
  const cases: Array<[label: string, values: string[], expected: Partial<Metrics>]> = [
    // No losses → profit factor null; 2 wins of 5 and 15 → avg 10.
    ['only wins', ['5', '15'], {
      win_rate: '100.00000000', profit_factor: null, avg_win: '10.00000000', avg_loss: null, best_trade: '15.00000000', worst_trade: '5.00000000',
      winning_trades: 2, losing_trades: 0, max_win_streak: 2, max_loss_streak: 0, current_streak: 2,
    }],
    // 0 wins of 3 (the breakeven counts) → 0 %; gross win 0 / |−15| → profit factor 0; avg loss −15/2 = −7.5;
    // the 0 between the losses breaks the streak → longest 1; last trade −10 → current −1.
    ['only losses (and a breakeven)', ['-5', '0', '-10'], {
      win_rate: '0.00000000', profit_factor: '0.00000000', avg_win: null, avg_loss: '-7.50000000', best_trade: '0.00000000', worst_trade: '-10.00000000',
      total_trades: 3, winning_trades: 0, losing_trades: 2, breakeven_trades: 1, max_win_streak: 0, max_loss_streak: 1, current_streak: -1,
    }],
    // Three losses then a win: longest loss streak 3, current +1; profit factor 1/3.
    ['a loss streak, then a win', ['-1', '-1', '-1', '1'], { max_loss_streak: 3, max_win_streak: 1, current_streak: 1, profit_factor: '0.33333333', win_rate: '25.00000000' }],
    // A trailing breakeven leaves no current streak.
    ['ends on a breakeven', ['2', '3', '0'], { max_win_streak: 2, current_streak: 0, win_rate: '66.66666667' }],
    ['no trades', [], { win_rate: null, profit_factor: null, avg_win: null, avg_loss: null, best_trade: null, worst_trade: null, total_trades: 0, current_streak: 0 }],
  ];
  for (const [label, values, expected] of cases) {
    t.strictSame(fields(computeMetrics({ starting_balance: '100', equity: [], trades: pnls(values) }), expected), expected, label);
  }
});

t.test('trades per day: the period when given, else the data span, at least one day', async (t) => {
  const two = pnls(['1', '-1'], 12 * H); // at 0 h and 12 h
  // Span 12 h < 1 day → counted as 1 day → 2/1.
  t.equal(computeMetrics({ starting_balance: '100', equity: [], trades: two }).trades_per_day, '2.00000000');
  // Period of 4 days → 2/4.
  t.equal(computeMetrics({ starting_balance: '100', equity: [], trades: two, period_start: T0, period_end: T0 + 4 * D }).trades_per_day, '0.50000000');
  // Equity points widen the span: 0 h .. 3 days → 2/3 = 0.666…
  t.equal(computeMetrics({ starting_balance: '100', equity: series(3 * D, ['100', '100']), trades: two }).trades_per_day, '0.66666667');
});

t.test('sumSeries adds series on the union of their times, carrying values forward and back', async (t) => {
  // a: 100 at 0, 110 at 2; b: 50 at 1, 40 at 3. At 0: 100 + 50 (b's first value, back-filled) = 150;
  // at 1: 100 + 50; at 2: 110 + 50; at 3: 110 + 40.
  const a = [{ t: 0, equity: '100' }, { t: 2, equity: '110' }];
  const b = [{ t: 3, equity: '40' }, { t: 1, equity: '50' }];
  t.strictSame(sumSeries([a, b, []], ['equity']), [
    { t: 0, equity: '150.00000000' }, { t: 1, equity: '150.00000000' }, { t: 2, equity: '160.00000000' }, { t: 3, equity: '150.00000000' },
  ]);
  t.strictSame(sumSeries([], ['equity']), []);
});

const base = computeMetrics({ starting_balance: '100', equity: [], trades: [] });
const row = (id: string, m: Partial<Metrics>) => ({ id, metrics: { ...base, ...m } });

t.test('rankBy: higher first, null last, ties by roi, then total pnl, then id', async (t) => {
  const cases: Array<[label: string, metric: RankMetric, rows: ReturnType<typeof row>[], expected: Array<[string, string | null]>]> = [
    // Numeric, not string, order: 10 > 9.5 > −3 > −20.
    ['roi_pct compares as numbers', 'roi_pct',
      [row('p', { roi_pct: '9.50000000' }), row('q', { roi_pct: '10.00000000' }), row('r', { roi_pct: '-20.00000000' }), row('s', { roi_pct: '-3.00000000' })],
      [['q', '10.00000000'], ['p', '9.50000000'], ['s', '-3.00000000'], ['r', '-20.00000000']]],
    // c 2 > d 1.5 (roi 6) > a 1.5 (roi 5) > e −0.5 > b null, whatever b's roi.
    ['sharpe with a tie and a null', 'sharpe_ratio',
      [row('a', { sharpe_ratio: '1.50000000', roi_pct: '5' }), row('b', { sharpe_ratio: null, roi_pct: '50' }), row('c', { sharpe_ratio: '2.00000000', roi_pct: '1' }),
        row('d', { sharpe_ratio: '1.50000000', roi_pct: '6' }), row('e', { sharpe_ratio: '-0.50000000', roi_pct: '0' })],
      [['c', '2.00000000'], ['d', '1.50000000'], ['a', '1.50000000'], ['e', '-0.50000000'], ['b', null]]],
    // Equal win rate and roi: x (pnl 20) first, then y and z (pnl 10) by id; the nulls after, also by id.
    ['ties fall through to total_pnl and id', 'win_rate',
      [row('z', { win_rate: '50', roi_pct: '1', total_pnl: '10' }), row('n2', { win_rate: null, roi_pct: '9', total_pnl: '90' }), row('y', { win_rate: '50', roi_pct: '1', total_pnl: '10' }),
        row('x', { win_rate: '50', roi_pct: '1', total_pnl: '20' }), row('n1', { win_rate: null, roi_pct: '9', total_pnl: '90' })],
      [['x', '50'], ['y', '50'], ['z', '50'], ['n1', null], ['n2', null]]],
    ['profit factor, all null: roi decides', 'profit_factor',
      [row('a', { roi_pct: '1' }), row('b', { roi_pct: '2' })], [['b', null], ['a', null]]],
  ];
  for (const [label, metric, rows, expected] of cases) {
    const ids = rows.map((r) => r.id);
    t.strictSame(rankBy(metric, rows), expected.map(([id, value], i) => ({ id, rank: i + 1, value })), label);
    t.strictSame(rows.map((r) => r.id), ids, `${label}: input untouched`);
  }
  t.strictSame(rankBy('total_pnl', []), []);
});
