import type { Db, Queryable } from './db.js';
import type { Battle, BattleConfig, BattleMode, BattleStatus, HistoricalSpec, HistState, Participant, Ranking } from '../core/battle-rules.js';
import type { RankMetric } from '../core/metrics.js';
import { emptyLedger, type Ledger, type LogEntry, type SnapshotRow } from '../core/battle-sim.js';
import { pushSnapshot } from '../core/backtest.js';
import type { Snapshot } from '../core/sim.js';

/**
 * Battles in `battles` (config, status, and in `state` the historical sim states and the rankings),
 * `battle_participants`, and (migration 5) `battle_snapshots` (equity points) and `battle_log` (orders and
 * fills of historical battles). Live battle wallets are journal streams; their orders and trades are in
 * `orders`/`trades` with `battle_id` set.
 */
interface BattleRow {
  id: string; account_id: string; name: string; status: BattleStatus; battle_mode: BattleMode; preset: string | null; ranking_metric: RankMetric;
  config: BattleConfig; backtest_config: HistoricalSpec | null; state: { hist: HistState | null; rankings: Ranking[] | null } | null;
  started_at: Date | null; ended_at: Date | null; created_at: Date;
}
interface ParticipantRow {
  battle_id: string; agent_id: string; agent_name: string; status: Participant['status']; snapshot_balance: string | null;
  final_equity: string | null; final_rank: number | null; joined_at: Date;
}

const CHUNK_ROWS = 1000;
const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

function fromRows(r: BattleRow, parts: ParticipantRow[]): Battle {
  return {
    id: r.id, account_id: r.account_id, name: r.name, status: r.status, mode: r.battle_mode, preset: r.preset, ranking_metric: r.ranking_metric,
    config: r.config, backtest_config: r.backtest_config, created_at: iso(r.created_at)!, started_at: iso(r.started_at), ended_at: iso(r.ended_at),
    rankings: r.state?.rankings ?? null, hist: r.state?.hist ?? null,
    participants: parts.map((p) => ({
      agent_id: p.agent_id, agent_name: p.agent_name, status: p.status, joined_at: iso(p.joined_at)!, snapshot_balance: p.snapshot_balance,
      final_equity: p.final_equity, final_rank: p.final_rank,
    })),
  };
}

async function participantsOf(q: Queryable, ids: string[]): Promise<Map<string, ParticipantRow[]>> {
  const rows = ids.length === 0 ? [] : await q.query<ParticipantRow>(
    `SELECT bp.battle_id, bp.agent_id, a.display_name AS agent_name, bp.status, bp.snapshot_balance::text, bp.final_equity::text, bp.final_rank, bp.joined_at
       FROM battle_participants bp JOIN agents a ON a.id = bp.agent_id WHERE bp.battle_id = ANY($1::uuid[]) ORDER BY bp.joined_at, bp.agent_id`,
    [ids],
  );
  const out = new Map<string, ParticipantRow[]>(ids.map((id) => [id, []]));
  for (const r of rows) out.get(r.battle_id)!.push(r);
  return out;
}

const COLUMNS = 'id, account_id, name, status, battle_mode, preset, ranking_metric, config, backtest_config, state, started_at, ended_at, created_at';

export async function insertBattle(db: Db, b: Battle): Promise<void> {
  await db.tx(async (q) => {
    await q.query(
      `INSERT INTO battles (id, account_id, name, status, battle_mode, preset, ranking_metric, config, backtest_config, state, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [b.id, b.account_id, b.name, b.status, b.mode, b.preset, b.ranking_metric, JSON.stringify(b.config),
        b.backtest_config ? JSON.stringify(b.backtest_config) : null, JSON.stringify({ hist: null, rankings: null }), b.created_at],
    );
    await syncParticipants(q, b);
  });
}

async function syncParticipants(q: Queryable, b: Battle): Promise<void> {
  const ps = b.participants;
  await q.query(`DELETE FROM battle_participants WHERE battle_id = $1 AND NOT (agent_id = ANY($2::uuid[]))`, [b.id, ps.map((p) => p.agent_id)]);
  if (ps.length === 0) return;
  await q.query(
    `INSERT INTO battle_participants (battle_id, agent_id, status, snapshot_balance, final_equity, final_rank, joined_at)
     SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::numeric[], $5::numeric[], $6::int[], $7::timestamptz[])
     ON CONFLICT (battle_id, agent_id) DO UPDATE SET status = EXCLUDED.status, snapshot_balance = EXCLUDED.snapshot_balance,
       final_equity = EXCLUDED.final_equity, final_rank = EXCLUDED.final_rank`,
    [b.id, ps.map((p) => p.agent_id), ps.map((p) => p.status), ps.map((p) => p.snapshot_balance), ps.map((p) => p.final_equity),
      ps.map((p) => p.final_rank), ps.map((p) => p.joined_at)],
  );
}

export interface Pending {
  entries: readonly LogEntry[];
  /** seq of the first entry */
  from: number;
  snaps: readonly SnapshotRow[];
}

const UPDATE_SQL = `UPDATE battles SET name = $2, status = $3, battle_mode = $4, preset = $5, ranking_metric = $6, config = $7, backtest_config = $8,
  state = $9, started_at = $10, ended_at = $11, updated_at = now() WHERE id = $1`;

/**
 * Writes the battle, its participants (when they changed), new log entries and equity points in one
 * transaction; a plain clock step is one statement (it is on the hot path of a step-by-step client).
 */
export async function saveBattle(db: Db, b: Battle, pending: Pending, participantsChanged: boolean): Promise<void> {
  const args = [b.id, b.name, b.status, b.mode, b.preset, b.ranking_metric, JSON.stringify(b.config), b.backtest_config ? JSON.stringify(b.backtest_config) : null,
    JSON.stringify({ hist: b.hist, rankings: b.rankings }), b.started_at, b.ended_at];
  if (!participantsChanged && pending.entries.length === 0 && pending.snaps.length === 0) {
    await db.query(UPDATE_SQL, args);
    return;
  }
  await db.tx(async (q) => {
    await q.query(UPDATE_SQL, args);
    if (participantsChanged) await syncParticipants(q, b);
    for (let i = 0; i < pending.entries.length; i += CHUNK_ROWS) {
      const chunk = pending.entries.slice(i, i + CHUNK_ROWS);
      await q.query(
        `INSERT INTO battle_log (battle_id, seq, agent_id, kind, body) SELECT $1, * FROM unnest($2::int[], $3::uuid[], $4::text[], $5::jsonb[])`,
        [b.id, chunk.map((_, k) => pending.from + i + k), chunk.map((e) => e.agent_id), chunk.map((e) => e.kind), chunk.map((e) => JSON.stringify(e.body))],
      );
    }
    for (let i = 0; i < pending.snaps.length; i += CHUNK_ROWS) await insertSnapshots(q, b.id, pending.snaps.slice(i, i + CHUNK_ROWS));
  });
}

function insertSnapshots(q: Queryable, battleId: string, rows: readonly SnapshotRow[]) {
  const col = (f: (r: SnapshotRow) => unknown) => rows.map(f);
  return q.query(
    `INSERT INTO battle_snapshots (battle_id, agent_id, taken_at, equity, available_cash, locked_cash, position_value, unrealized_pnl, realized_pnl, trade_count)
     SELECT $1, * FROM unnest($2::uuid[], $3::timestamptz[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[], $10::int[])
     ON CONFLICT (battle_id, agent_id, taken_at) DO UPDATE SET equity = EXCLUDED.equity, available_cash = EXCLUDED.available_cash,
       locked_cash = EXCLUDED.locked_cash, position_value = EXCLUDED.position_value, unrealized_pnl = EXCLUDED.unrealized_pnl,
       realized_pnl = EXCLUDED.realized_pnl, trade_count = EXCLUDED.trade_count`,
    [battleId, col((r) => r.agent_id), col((r) => iso(new Date(r.snap.t))), col((r) => r.snap.total_equity), col((r) => r.snap.available_cash),
      col((r) => r.snap.locked_cash), col((r) => r.snap.position_value), col((r) => r.snap.unrealized_pnl), col((r) => r.snap.realized_pnl), col((r) => r.trade_count)],
  );
}

export async function loadBattle(q: Queryable, id: string): Promise<Battle | null> {
  const [row] = await q.query<BattleRow>(`SELECT ${COLUMNS} FROM battles WHERE id = $1`, [id]);
  if (!row) return null;
  return fromRows(row, (await participantsOf(q, [id])).get(id)!);
}

/** A historical battle's orders, fills and equity points per participant, and the next log seq. */
export async function loadLedgers(q: Queryable, b: Battle): Promise<{ ledgers: Record<string, Ledger>; saved: number }> {
  const ledgers: Record<string, Ledger> = Object.fromEntries(b.participants.map((p) => [p.agent_id, emptyLedger()]));
  const log = await q.query<LogEntry & { seq: number }>(`SELECT seq, agent_id, kind, body FROM battle_log WHERE battle_id = $1 ORDER BY seq`, [b.id]);
  for (const e of log) {
    const l = (ledgers[e.agent_id] ??= emptyLedger());
    if (e.kind === 'order') l.orders.set(e.body.order_id, e.body);
    else l.trades.push(e.body);
  }
  for (const r of await snapshotRows(q, b.id, null)) pushSnapshot((ledgers[r.agent_id] ??= emptyLedger()).snapshots, r.snap);
  return { ledgers, saved: log.length === 0 ? 0 : log[log.length - 1].seq + 1 };
}

interface SnapRow {
  agent_id: string; t: string; equity: string; available_cash: string; locked_cash: string; position_value: string;
  unrealized_pnl: string; realized_pnl: string; trade_count: number;
}

/** Equity points oldest first (all participants, or one). */
export async function snapshotRows(q: Queryable, battleId: string, agentId: string | null): Promise<SnapshotRow[]> {
  const rows = await q.query<SnapRow>(
    `SELECT agent_id, (extract(epoch FROM taken_at) * 1000)::int8::text AS t, equity::text, available_cash::text, locked_cash::text, position_value::text,
            unrealized_pnl::text, realized_pnl::text, trade_count
       FROM battle_snapshots WHERE battle_id = $1 AND ($2::uuid IS NULL OR agent_id = $2) ORDER BY taken_at, agent_id`,
    [battleId, agentId],
  );
  return rows.map((r) => ({
    agent_id: r.agent_id, trade_count: r.trade_count,
    snap: {
      t: Number(r.t), total_equity: r.equity, available_cash: r.available_cash, locked_cash: r.locked_cash, position_value: r.position_value,
      unrealized_pnl: r.unrealized_pnl, realized_pnl: r.realized_pnl,
    } satisfies Snapshot,
  }));
}

/** Timestamps of the equity points, a page of them, and how many there are (replay pages by timestamp). */
export async function snapshotPage(q: Queryable, battleId: string, limit: number, offset: number): Promise<{ rows: SnapshotRow[]; total: number }> {
  const [c] = await q.query<{ n: number }>(`SELECT count(DISTINCT taken_at)::int AS n FROM battle_snapshots WHERE battle_id = $1`, [battleId]);
  const times = await q.query<{ taken_at: Date }>(
    `SELECT DISTINCT taken_at FROM battle_snapshots WHERE battle_id = $1 ORDER BY taken_at LIMIT $2 OFFSET $3`, [battleId, limit, offset],
  );
  if (times.length === 0) return { rows: [], total: c.n };
  const all = await snapshotRows(q, battleId, null);
  const from = new Date(times[0].taken_at).getTime();
  const to = new Date(times[times.length - 1].taken_at).getTime();
  return { rows: all.filter((r) => r.snap.t >= from && r.snap.t <= to), total: c.n };
}

/** Closed fills (realized PnL known) of a live battle's wallets, per agent, oldest first. */
export async function closedTrades(q: Queryable, battleId: string): Promise<Map<string, Array<{ t: number; realized_pnl: string }>>> {
  const rows = await q.query<{ agent_id: string; realized_pnl: string; executed_at: Date }>(
    `SELECT agent_id, realized_pnl::text, executed_at FROM trades WHERE battle_id = $1 AND realized_pnl IS NOT NULL ORDER BY executed_at, id`, [battleId],
  );
  const out = new Map<string, Array<{ t: number; realized_pnl: string }>>();
  for (const r of rows) {
    const list = out.get(r.agent_id) ?? [];
    list.push({ t: new Date(r.executed_at).getTime(), realized_pnl: r.realized_pnl });
    out.set(r.agent_id, list);
  }
  return out;
}

export async function runningBattleIds(q: Queryable): Promise<string[]> {
  return (await q.query<{ id: string }>(`SELECT id FROM battles WHERE status IN ('active', 'paused') ORDER BY created_at`)).map((r) => r.id);
}

export async function listBattles(q: Queryable, accountId: string, status: string | null, limit: number, offset: number): Promise<{ battles: Battle[]; total: number }> {
  const [c] = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM battles WHERE account_id = $1 AND ($2::text IS NULL OR status = $2)`, [accountId, status]);
  const rows = await q.query<BattleRow>(
    `SELECT ${COLUMNS} FROM battles WHERE account_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, id LIMIT $3 OFFSET $4`,
    [accountId, status, limit, offset],
  );
  const parts = await participantsOf(q, rows.map((r) => r.id));
  return { battles: rows.map((r) => fromRows(r, parts.get(r.id)!)), total: c.n };
}

export async function deleteBattle(db: Db, id: string): Promise<void> {
  await db.query(`DELETE FROM battles WHERE id = $1`, [id]);
}
