import type { Queryable } from './db.js';

/** SQL for equity snapshots and the trade history that analytics reads. Amounts stay strings (NUMERIC). */

export type SnapshotKind = 'periodic';

export interface SnapshotValues {
  agent_id: string;
  total_equity: string;
  available_cash: string;
  position_value: string;
  unrealized_pnl: string;
  realized_pnl: string;
}

export interface SnapshotRow extends SnapshotValues {
  taken_at: Date;
}

/** Keeps one INSERT under PostgreSQL's 65 535-parameter limit (6 per row). */
const INSERT_ROWS_MAX = 5000;

/**
 * Writes one snapshot per row, all at `takenAt`. Rows of agents deleted since their wallet was loaded are
 * dropped by the join instead of failing the whole batch on the foreign key. Returns the rows written.
 */
export async function insertSnapshots(q: Queryable, kind: SnapshotKind, takenAt: Date, rows: readonly SnapshotValues[]): Promise<number> {
  let written = 0;
  for (let i = 0; i < rows.length; i += INSERT_ROWS_MAX) {
    const chunk = rows.slice(i, i + INSERT_ROWS_MAX);
    const params: unknown[] = [kind, takenAt];
    const values = chunk.map((r) => {
      const n = params.push(r.agent_id, r.total_equity, r.available_cash, r.position_value, r.unrealized_pnl, r.realized_pnl);
      return `($${n - 5}::uuid, $${n - 4}::numeric, $${n - 3}::numeric, $${n - 2}::numeric, $${n - 1}::numeric, $${n}::numeric)`;
    });
    const out = await q.query(
      `INSERT INTO snapshots (agent_id, kind, total_equity, available_cash, position_value, unrealized_pnl, realized_pnl, taken_at)
       SELECT v.agent_id, $1, v.e, v.c, v.p, v.u, v.r, $2 FROM (VALUES ${values.join(', ')}) AS v(agent_id, e, c, p, u, r)
       JOIN agents a ON a.id = v.agent_id RETURNING id`,
      params,
    );
    written += out.length;
  }
  return written;
}

export async function hasSnapshots(q: Queryable, agentIds: readonly string[], kind: SnapshotKind): Promise<boolean> {
  const rows = await q.query(`SELECT 1 FROM snapshots WHERE agent_id = ANY($1::uuid[]) AND kind = $2 LIMIT 1`, [agentIds, kind]);
  return rows.length > 0;
}

/**
 * Equity since `from` (all time when null), oldest first, thinned to at most about `points_max` points per
 * agent: the window is cut into `points_max` equal buckets and the last snapshot of each bucket is kept, so
 * a short window keeps every snapshot and a long one keeps its shape at bounded cost.
 */
export async function equitySeries(q: Queryable, agentIds: readonly string[], kind: SnapshotKind, from: Date | null, points_max: number): Promise<Array<{ agent_id: string; taken_at: Date; total_equity: string }>> {
  return q.query(
    `WITH w AS (
       SELECT agent_id, taken_at, total_equity FROM snapshots
       WHERE agent_id = ANY($1::uuid[]) AND kind = $2 AND ($3::timestamptz IS NULL OR taken_at >= $3)
     ), width AS (
       SELECT greatest(1, ceil(extract(epoch FROM max(taken_at) - min(taken_at)) / $4)) AS s FROM w
     )
     SELECT agent_id, taken_at, total_equity FROM (
       SELECT DISTINCT ON (w.agent_id, floor(extract(epoch FROM w.taken_at) / width.s)) w.agent_id, w.taken_at, w.total_equity
       FROM w, width ORDER BY w.agent_id, floor(extract(epoch FROM w.taken_at) / width.s), w.taken_at DESC
     ) x ORDER BY taken_at, agent_id`,
    [agentIds, kind, from, points_max],
  );
}

/** Per agent, the equity of its latest snapshot at or before `at` (agents without one are absent). */
export async function equityAt(q: Queryable, agentIds: readonly string[], kind: SnapshotKind, at: Date): Promise<Map<string, string>> {
  const rows = await q.query<{ agent_id: string; total_equity: string }>(
    `SELECT DISTINCT ON (agent_id) agent_id, total_equity FROM snapshots
     WHERE agent_id = ANY($1::uuid[]) AND kind = $2 AND taken_at <= $3 ORDER BY agent_id, taken_at DESC, id DESC`,
    [agentIds, kind, at],
  );
  return new Map(rows.map((r) => [r.agent_id, r.total_equity]));
}

/** Per agent, when its current (open) trading session began. */
export async function sessionStarts(q: Queryable, agentIds: readonly string[]): Promise<Map<string, Date>> {
  const rows = await q.query<{ agent_id: string; started_at: Date }>(
    `SELECT DISTINCT ON (agent_id) agent_id, started_at FROM trading_sessions
     WHERE agent_id = ANY($1::uuid[]) AND ended_at IS NULL ORDER BY agent_id, started_at DESC`,
    [agentIds],
  );
  return new Map(rows.map((r) => [r.agent_id, new Date(r.started_at)]));
}

/** Trades with a realized PnL (closing fills) of the agents' own wallets (not battle wallets) since `from` (all time when null), oldest first. */
export async function closedTrades(q: Queryable, agentIds: readonly string[], from: Date | null): Promise<Array<{ agent_id: string; realized_pnl: string; executed_at: Date }>> {
  return q.query(
    `SELECT agent_id, realized_pnl, executed_at FROM trades
     WHERE agent_id = ANY($1::uuid[]) AND battle_id IS NULL AND realized_pnl IS NOT NULL AND ($2::timestamptz IS NULL OR executed_at >= $2)
     ORDER BY executed_at, id`,
    [agentIds, from],
  );
}

/**
 * The latest `limit` buckets of `bucket_s` seconds per agent, each holding the agent's last snapshot in that
 * bucket; `bucket` is the bucket's start in epoch seconds. Oldest first.
 */
export async function historyBuckets(q: Queryable, agentIds: readonly string[], kind: SnapshotKind, bucket_s: number, limit: number): Promise<Array<SnapshotRow & { bucket: number }>> {
  return q.query(
    `SELECT agent_id, bucket, taken_at, total_equity, available_cash, position_value, unrealized_pnl, realized_pnl FROM (
       SELECT b.*, row_number() OVER (PARTITION BY agent_id ORDER BY bucket DESC) AS n FROM (
         SELECT DISTINCT ON (agent_id, floor(extract(epoch FROM taken_at) / $3))
           agent_id, (floor(extract(epoch FROM taken_at) / $3) * $3)::bigint AS bucket, taken_at,
           total_equity, available_cash, position_value, unrealized_pnl, realized_pnl
         FROM snapshots WHERE agent_id = ANY($1::uuid[]) AND kind = $2
         ORDER BY agent_id, floor(extract(epoch FROM taken_at) / $3), taken_at DESC, id DESC
       ) b
     ) r WHERE n <= $4 ORDER BY bucket, agent_id`,
    [agentIds, kind, bucket_s, limit],
  );
}
