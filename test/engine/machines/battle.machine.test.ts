import t from 'tap';
import { startBattle, type BattleActor, type BattleCommand, type Outcome } from '../../../engine/machines/battle.machine.js';
import { rankParticipants, type Battle, type HistState, type Participant } from '../../../engine/core/battle-rules.js';
import { emptyRuntime, initialSims, simConfigs, type BattleRuntime, type HistClock } from '../../../engine/core/battle-sim.js';
import { BACKTEST_RISK_BASE } from '../../../engine/core/sim.js';
import { allocSeries, setCandle } from '../../../engine/core/series.js';
import type { PlaceInput } from '../../../engine/core/orders.js';

/**
 * The battle actor over six one-minute candles (two of history, four steps), three participants. Volume is
 * large, so slippage sits at its 0.01 % floor; fee 0.1 %. Every value below is worked out in the comments.
 */
const T0 = Date.UTC(2025, 0, 1);
const MIN = 60_000;
const PAIR = { symbol: 'BTCUSDT', base_asset: 'BTC', quote_asset: 'USDT', status: 'active' as const, min_qty: '0.00001', step_size: '0.00001', min_notional: '5' };
const CANDLES: Array<[string, string, string, string]> = [
  ['100', '101', '99', '100'], ['100', '102', '99.5', '101'], // history: the price at the start is 101
  ['101', '105', '100', '104'], ['104', '104', '96', '97'], ['97', '99', '95', '98'], ['98', '110', '98', '108'],
];
const [A, B, C] = ['00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b', '00000000-0000-4000-8000-00000000000c'];

function participant(id: string, i: number): Participant {
  return { agent_id: id, agent_name: `agent ${i}`, status: 'active', joined_at: new Date(T0 + i).toISOString(), snapshot_balance: null, final_equity: null, final_rank: null };
}

function draft(mode: Battle['mode'] = 'historical', metric: Battle['ranking_metric'] = 'roi_pct'): Battle {
  return {
    id: 'b1', account_id: 'acc', name: 'test', status: 'draft', mode, preset: null, ranking_metric: metric,
    config: { starting_balance: '10000.00000000', duration_minutes: mode === 'live' ? 5 : null, wallet_mode: 'fresh', allowed_pairs: null, extra: {} },
    backtest_config: mode === 'historical' ? { start_time: new Date(T0 + 2 * MIN).toISOString(), end_time: new Date(T0 + 6 * MIN).toISOString(), candle_interval: 60, pairs: ['BTCUSDT'] } : null,
    participants: [], created_at: new Date(T0).toISOString(), started_at: null, ended_at: null, rankings: null, hist: null,
  };
}

function clockFor(b: Battle): { hist: HistState; clock: HistClock } {
  const series = allocSeries({ symbols: ['BTCUSDT'], interval_ms: MIN, t0: T0, length: CANDLES.length });
  CANDLES.forEach((c, j) => setCandle(series, 0, { time: T0 + j * MIN, open: c[0], high: c[1], low: c[2], close: c[3], volume: '1000000' }));
  const hist: HistState = {
    total_steps: 4, pairs: ['BTCUSDT'], interval_ms: MIN, start_ms: T0 + 2 * MIN, warmup: 2, fee_rate: '0.001',
    sims: initialSims(b.id, b.participants.map((p) => p.agent_id), b.config.starting_balance), placed: {},
  };
  return { hist, clock: { series, cfgs: simConfigs(b.id, hist, [PAIR]) } };
}

/** Sends one command and returns its outcome. */
function send(actor: BattleActor, build: (reply: (r: Outcome) => void) => BattleCommand): Outcome {
  let out: Outcome | undefined;
  actor.send(build((r) => (out = r)));
  return out!;
}
const now = new Date(T0 + 3_600_000);
let n = 0;
const order = (side: 'buy' | 'sell', type: PlaceInput['type'], price: string | null): PlaceInput => ({
  order_id: `00000000-0000-4000-9000-${String(++n).padStart(12, '0')}`, trade_id: `t-${n}`, client_order_id: null, symbol: 'BTCUSDT', side, type, quantity: '1', price,
});

function started(metric: Battle['ranking_metric'] = 'roi_pct'): { b: Battle; rt: BattleRuntime; actor: BattleActor } {
  const b = draft('historical', metric);
  const rt = emptyRuntime();
  const actor = startBattle(b, rt);
  [A, B, C].forEach((id, i) => send(actor, (reply) => ({ type: 'participant.add', participant: participant(id, i), reply })));
  send(actor, (reply) => ({ type: 'battle.start', reply }));
  const { hist, clock } = clockFor(b);
  send(actor, (reply) => ({ type: 'battle.begin', now, hist, clock, reply }));
  return { b, rt, actor };
}

t.test('draft: edits and participants; start needs two; starting holds the battle until it begins', async (t) => {
  const b = draft();
  const actor = startBattle(b, emptyRuntime());
  t.match(send(actor, (reply) => ({ type: 'battle.update', patch: { name: 'renamed' }, reply })), { ok: true });
  t.equal(b.name, 'renamed');
  t.match(send(actor, (reply) => ({ type: 'participant.add', participant: participant(A, 0), reply })), { ok: true });
  t.match(send(actor, (reply) => ({ type: 'participant.add', participant: participant(A, 0), reply })), { ok: false, code: 'BATTLE_INVALID_STATE' });
  t.match(send(actor, (reply) => ({ type: 'battle.start', reply })), { ok: false, code: 'BATTLE_INVALID_STATE', message: 'Need at least 2 participants to start a battle.' });
  t.match(send(actor, (reply) => ({ type: 'participant.remove', agent_id: B, reply })), { ok: false, code: 'BATTLE_NOT_FOUND' });
  send(actor, (reply) => ({ type: 'participant.add', participant: participant(B, 1), reply }));
  t.match(send(actor, (reply) => ({ type: 'battle.start', reply })), { ok: true });
  t.equal(b.status, 'draft', 'still draft while the registry loads candles');
  t.match(send(actor, (reply) => ({ type: 'participant.add', participant: participant(C, 2), reply })), { ok: false, code: 'BATTLE_INVALID_STATE' }, 'nothing slips in while starting');
  t.match(send(actor, (reply) => ({ type: 'battle.abort', reply })), { ok: true });
  t.equal(actor.getSnapshot().value, 'draft', 'a failed start goes back to draft');
  t.match(send(actor, (reply) => ({ type: 'battle.stop', now, reply })), { ok: false, code: 'BATTLE_INVALID_STATE', details: { current_status: 'draft', required_status: 'active' } });
  t.match(send(actor, (reply) => ({ type: 'battle.delete', reply })), { ok: true }, 'a draft may be deleted');
});

t.test('a historical battle to its end: each fill, the final equities and the ranking by hand', async (t) => {
  const { b, rt, actor } = started();
  t.equal(b.status, 'active');
  t.same(rt.outbox.map((e) => [e.type, e.data.event]), [['status', 'started']]);
  t.same(b.participants.map((p) => p.snapshot_balance), ['10000.00000000', '10000.00000000', '10000.00000000']);
  // A buys 1 at the start price 101: 101 × 1.0001 = 101.0101, fee 0.1010101.
  const buy = send(actor, (reply) => ({ type: 'order.place', agent_id: A, input: order('buy', 'market', null), risk: BACKTEST_RISK_BASE, reply }));
  t.match(buy, { ok: true, value: { status: 'filled', executed_price: '101.01010000', fee: '0.10101010' } });
  // B rests a limit at 96 (hold 96 × 1.001 = 96.096).
  t.match(send(actor, (reply) => ({ type: 'order.place', agent_id: B, input: order('buy', 'limit', '96'), risk: BACKTEST_RISK_BASE, reply })), { ok: true, value: { status: 'pending', locked_amount: '96.09600000' } });
  t.match(send(actor, (reply) => ({ type: 'participant.pause', agent_id: C, now, reply })), { ok: true });
  t.equal(b.status, 'paused');
  t.match(send(actor, (reply) => ({ type: 'order.place', agent_id: C, input: order('buy', 'market', null), risk: BACKTEST_RISK_BASE, reply })), { ok: false, code: 'BATTLE_INVALID_STATE' });
  t.match(send(actor, (reply) => ({ type: 'participant.pause', agent_id: C, now, reply })), { ok: false, code: 'BATTLE_INVALID_STATE' }, 'already paused');
  t.match(send(actor, (reply) => ({ type: 'battle.step', n: 2, now, reply })), { ok: true });
  // Step 2 reveals the 00:03 candle (opened 104, low 96): the limit fills at its level, 96.
  t.match([...rt.ledgers[B].orders.values()].at(-1), { status: 'filled', executed_price: '96.00000000', fee: '0.09600000', filled_at: new Date(T0 + 4 * MIN).toISOString() });
  t.match(send(actor, (reply) => ({ type: 'participant.resume', agent_id: C, now, reply })), { ok: true });
  t.equal(b.status, 'active');
  t.match(send(actor, (reply) => ({ type: 'battle.step', n: 100, now, reply })), { ok: true });
  t.equal(b.status, 'completed', 'the last step completes the battle');
  // The end sells 1 at the last close 108: 108 × 0.9999 = 107.9892, fee 0.1079892.
  // A: 10000 − 101.1111101 + 107.9892 − 0.1079892 = 10006.7701007; B: 10000 − 96.096 + 107.8812108 = 10011.7852108; C: 10000.
  t.same(b.rankings!.map((r) => [r.rank, r.agent_id, r.final_equity, r.roi_pct, r.trade_count]), [
    [1, B, '10011.78521080', '0.11785211', 2], [2, A, '10006.77010070', '0.06770101', 2], [3, C, '10000.00000000', '0.00000000', 0],
  ]);
  t.same(b.participants.map((p) => [p.agent_id, p.final_rank, p.status]), [[A, 2, 'stopped'], [B, 1, 'stopped'], [C, 3, 'stopped']]);
  t.same(rt.outbox.filter((e) => e.type === 'status').map((e) => e.data.event), ['started', 'agent_paused', 'agent_resumed', 'completed']);
  t.same(rt.outbox.filter((e) => e.type === 'trade').map((e) => [e.data.agent_id, e.data.side, e.data.price]), [
    [A, 'buy', '101.01010000'], [B, 'buy', '96.00000000'], [A, 'sell', '107.98920000'], [B, 'sell', '107.98920000'],
  ]);
  t.match(send(actor, (reply) => ({ type: 'battle.stop', now, reply })), { ok: true }, 'stopping a completed battle answers it as it is');
  t.match(send(actor, (reply) => ({ type: 'battle.step', n: 1, now, reply })), { ok: false, code: 'BATTLE_INVALID_STATE', details: { current_status: 'completed' } });
  t.match(send(actor, (reply) => ({ type: 'battle.cancel', now, reply })), { ok: false, code: 'BATTLE_INVALID_STATE' });
});

t.test('rankings by each metric, with the stated tie-break', async (t) => {
  const equity = (end: string) => [{ t: T0, equity: '10000' }, { t: T0 + MIN, equity: end }];
  const rows = [
    { agent_id: A, agent_name: 'a', starting_balance: '10000', equity: equity('10006.77'), trades: [{ t: T0, realized_pnl: '6.77' }], trade_count: 2 },
    { agent_id: B, agent_name: 'b', starting_balance: '10000', equity: equity('10011.78'), trades: [{ t: T0, realized_pnl: '11.78' }], trade_count: 2 },
    { agent_id: C, agent_name: 'c', starting_balance: '10000', equity: equity('10000'), trades: [], trade_count: 0 },
  ];
  const cases: Array<[Battle['ranking_metric'], string[]]> = [
    ['roi_pct', [B, A, C]],
    ['total_pnl', [B, A, C]],
    // A and B both won 100 %: the tie falls to roi_pct; C has no trades (null) and ranks last.
    ['win_rate', [B, A, C]],
    // No losses anywhere: every profit factor is null, so roi_pct decides.
    ['profit_factor', [B, A, C]],
    // One return per agent: no Sharpe ratio (null) for anyone.
    ['sharpe_ratio', [B, A, C]],
  ];
  for (const [metric, order] of cases) t.same(rankParticipants(metric, rows).map((r) => r.agent_id), order, metric);
  const tied = rankParticipants('roi_pct', [rows[2], { ...rows[2], agent_id: A }, { ...rows[2], agent_id: B }]);
  t.same(tied.map((r) => [r.rank, r.agent_id]), [[1, C], [2, A], [3, B]], 'a full tie keeps the join order');
});

t.test('stop early closes positions; cancel freezes without ranks', async (t) => {
  const one = started();
  send(one.actor, (reply) => ({ type: 'order.place', agent_id: A, input: order('buy', 'market', null), risk: BACKTEST_RISK_BASE, reply }));
  send(one.actor, (reply) => ({ type: 'battle.step', n: 1, now, reply }));
  t.match(send(one.actor, (reply) => ({ type: 'battle.stop', now, reply })), { ok: true });
  // Sold at the 00:02 candle's close 104: 104 × 0.9999 = 103.9896, fee 0.1039896 → 10000 − 101.1111101 + 103.8856104.
  t.match(one.b, { status: 'completed', rankings: [{ agent_id: A, final_equity: '10002.77450030', rank: 1 }, { agent_id: B, rank: 2 }, { agent_id: C, rank: 3 }] });
  const two = started();
  t.match(send(two.actor, (reply) => ({ type: 'battle.cancel', now, reply })), { ok: true });
  t.match(two.b, { status: 'cancelled', rankings: null, ended_at: now.toISOString() });
  t.same(two.b.participants.map((p) => p.status), ['stopped', 'stopped', 'stopped']);
  t.match(send(two.actor, (reply) => ({ type: 'battle.start', reply })), { ok: false, code: 'BATTLE_INVALID_STATE' });
  t.match(send(two.actor, (reply) => ({ type: 'battle.delete', reply })), { ok: true });
});

t.test('live: snapshots while running, stopping holds the battle until the registry concludes it', async (t) => {
  const b = draft('live');
  const rt = emptyRuntime();
  const actor = startBattle(b, rt);
  [A, B].forEach((id, i) => send(actor, (reply) => ({ type: 'participant.add', participant: participant(id, i), reply })));
  send(actor, (reply) => ({ type: 'battle.start', reply }));
  send(actor, (reply) => ({ type: 'battle.begin', now, hist: null, clock: null, reply }));
  t.match(send(actor, (reply) => ({ type: 'battle.step', n: 1, now, reply })), { ok: false, code: 'BATTLE_INVALID_STATE', message: /only for historical battles/ });
  const snap = (equity: string) => ({ t: now.getTime(), total_equity: equity, available_cash: equity, locked_cash: '0', position_value: '0', unrealized_pnl: '0', realized_pnl: '0' });
  t.match(send(actor, (reply) => ({ type: 'battle.snapshot', rows: [{ agent_id: A, snap: snap('10000'), trade_count: 0 }], now, reply })), { ok: true });
  t.equal(rt.snaps.length, 1);
  send(actor, (reply) => ({ type: 'participant.pause', agent_id: B, now, reply }));
  t.match(send(actor, (reply) => ({ type: 'battle.stop', now, reply })), { ok: true });
  t.equal(actor.getSnapshot().value, 'stopping');
  t.match(send(actor, (reply) => ({ type: 'battle.snapshot', rows: [], now, reply })), { ok: false, code: 'BATTLE_INVALID_STATE' });
  t.match(send(actor, (reply) => ({ type: 'battle.abort', reply })), { ok: true });
  t.same(actor.getSnapshot().value, { running: 'paused' }, 'a failed stop goes back to where it was');
  send(actor, (reply) => ({ type: 'battle.stop', now, reply }));
  const finals = [
    { agent_id: A, agent_name: 'a', starting_balance: '10000', equity: [{ t: now.getTime(), equity: '9990' }], trades: [], trade_count: 1 },
    { agent_id: B, agent_name: 'b', starting_balance: '10000', equity: [{ t: now.getTime(), equity: '10010' }], trades: [], trade_count: 1 },
  ];
  t.match(send(actor, (reply) => ({ type: 'battle.conclude', finals, rows: [], now, reply })), { ok: true });
  t.match(b, { status: 'completed', rankings: [{ agent_id: B, rank: 1, final_equity: '10010.00000000' }, { agent_id: A, rank: 2 }] });
});

t.test('a restored battle resumes in its stored state', async (t) => {
  const { b } = started();
  b.participants[0].status = 'paused';
  b.status = 'paused';
  const actor = startBattle(b, emptyRuntime());
  t.same(actor.getSnapshot().value, { running: 'paused' });
  t.match(send(actor, (reply) => ({ type: 'participant.resume', agent_id: A, now, reply })), { ok: true });
  t.equal(b.status, 'active');
});
