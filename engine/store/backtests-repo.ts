import type { Db, Queryable } from './db.js';
import { allocSeries, foldCandle, setCandle, type CandleIn, type Series } from '../core/series.js';
import { intervalName } from './candles-repo.js';
import type { SimState } from '../core/sim.js';
import { pushSnapshot, type BacktestConfig, type BacktestResults, type BacktestStatus, type LogEntry, type Session } from '../core/backtest.js';

/**
 * Backtest sessions in the `backtests` table (config, compact state, results) plus an append-only
 * `backtest_log` of their orders, trades and equity snapshots (migration 3). A restart rebuilds a session
 * from its row and its log; candles are reloaded from `candles`.
 */
export interface PersistedState {
  sim: SimState;
  total_steps: number;
  started_at: string | null;
  completed_at: string | null;
}

export interface BacktestRow {
  id: string;
  account_id: string;
  agent_id: string | null;
  status: BacktestStatus;
  config: BacktestConfig;
  state: PersistedState;
  results: BacktestResults | null;
  created_at: Date | string;
}

const LOG_CHUNK_ROWS = 1000;
const iso = (ms: number) => new Date(ms).toISOString();

function stateOf(s: Session): PersistedState {
  return { sim: s.sim, total_steps: s.total_steps, started_at: s.started_at, completed_at: s.completed_at };
}

export async function insertBacktest(db: Db, s: Session): Promise<void> {
  await db.query(
    `INSERT INTO backtests (id, account_id, agent_id, status, config, state, results, created_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)`,
    [s.id, s.account_id, s.agent_id, s.status, JSON.stringify(s.config), JSON.stringify(stateOf(s)), s.created_at],
  );
}

const UPDATE_SQL = `UPDATE backtests SET status = $2, state = $3, results = $4, updated_at = now() WHERE id = $1`;
const LOG_SQL = `INSERT INTO backtest_log (backtest_id, seq, kind, body) SELECT $1, * FROM unnest($2::int[], $3::text[], $4::jsonb[])`;
/** Both in one statement: a data-modifying CTE always runs, even when there is nothing to append. */
const SAVE_SQL = `WITH saved AS (${UPDATE_SQL} RETURNING id)
  INSERT INTO backtest_log (backtest_id, seq, kind, body) SELECT $1, * FROM unnest($5::int[], $6::text[], $7::jsonb[])`;
const logArgs = (id: string, chunk: readonly LogEntry[], from: number) => [id, chunk.map((_, k) => from + k), chunk.map((e) => e.kind), chunk.map((e) => JSON.stringify(e.body))];

/**
 * Writes the session's row and appends `entries` to its log as seq `from`, `from+1`…, atomically. The usual
 * case is one statement (a data-modifying CTE), because every extra round trip costs a command its latency.
 */
export async function saveBacktest(db: Db, s: Session, entries: readonly LogEntry[], from: number): Promise<void> {
  const row = [s.id, s.status, JSON.stringify(stateOf(s)), s.results ? JSON.stringify(s.results) : null];
  if (entries.length <= LOG_CHUNK_ROWS) {
    await db.query(SAVE_SQL, [...row, ...logArgs(s.id, entries, from).slice(1)]);
    return;
  }
  await db.tx(async (q) => {
    await q.query(UPDATE_SQL, row);
    for (let i = 0; i < entries.length; i += LOG_CHUNK_ROWS) await q.query(LOG_SQL, logArgs(s.id, entries.slice(i, i + LOG_CHUNK_ROWS), from + i));
  });
}

export async function backtestRow(q: Queryable, id: string): Promise<BacktestRow | null> {
  const [row] = await q.query<BacktestRow>(`SELECT id, account_id, agent_id, status, config, state, results, created_at FROM backtests WHERE id = $1`, [id]);
  return row ?? null;
}

/** A session as it was last saved, and how many log entries it has (the next seq). */
export async function restoreSession(q: Queryable, row: BacktestRow): Promise<{ session: Session; saved: number }> {
  const log = await q.query<LogEntry & { seq: number }>(`SELECT seq, kind, body FROM backtest_log WHERE backtest_id = $1 ORDER BY seq`, [row.id]);
  const session: Session = {
    id: row.id, account_id: row.account_id, agent_id: row.agent_id, status: row.status, config: row.config, total_steps: row.state.total_steps,
    cfg: null, series: null, sim: row.state.sim, orders: new Map(), trades: [], snapshots: [], unsaved: [],
    created_at: new Date(row.created_at).toISOString(), started_at: row.state.started_at, completed_at: row.state.completed_at, results: row.results,
  };
  for (const e of log) {
    if (e.kind === 'order') session.orders.set(e.body.order_id, e.body);
    else if (e.kind === 'trade') session.trades.push(e.body);
    else pushSnapshot(session.snapshots, e.body);
  }
  return { session, saved: log.length === 0 ? 0 : log[log.length - 1].seq + 1 };
}

/** Per symbol, how many candles of `interval_ms` (else of 1m, to be folded) open within [from, to). */
export async function candleCoverage(q: Queryable, symbols: string[] | null, interval_ms: number, from: number, to: number) {
  const rows = await q.query<{ symbol: string; interval: string; n: number; first: number; last: number }>(
    `SELECT symbol, interval, count(*)::int AS n, (extract(epoch FROM min(open_time)) * 1000)::int8 AS first,
            (extract(epoch FROM max(open_time)) * 1000)::int8 AS last
       FROM candles WHERE interval = ANY($1) AND ($2::text[] IS NULL OR symbol = ANY($2)) AND open_time >= $3 AND open_time < $4
      GROUP BY symbol, interval ORDER BY symbol`,
    [[...new Set([intervalName(interval_ms), '1m'])], symbols, iso(from), iso(to)],
  );
  return rows;
}

/** The earliest and latest candle of any symbol: the range an empty create is told about. */
export async function storedSpan(q: Queryable): Promise<{ earliest: string | null; latest: string | null }> {
  const [r] = await q.query<{ lo: number | null; hi: number | null }>(
    `SELECT (extract(epoch FROM min(open_time)) * 1000)::int8 AS lo, (extract(epoch FROM max(open_time)) * 1000)::int8 AS hi FROM candles`,
  );
  return { earliest: r?.lo == null ? null : iso(r.lo), latest: r?.hi == null ? null : iso(r.hi) };
}

/**
 * One row per symbol with its candles as one text (time,open,high,low,close,volume;…): returning tens of
 * thousands of rows costs the embedded database ~10× more than returning their text in one value.
 */
const candlesSql = `SELECT symbol, string_agg(concat_ws(',', (extract(epoch FROM open_time) * 1000)::int8, open, high, low, close, volume), ';' ORDER BY open_time) AS rows
  FROM candles WHERE interval = $1 AND symbol = ANY($2) AND open_time >= $3 AND open_time < $4 GROUP BY symbol`;

/** Feeds each candle of the aggregated text to `put`, oldest first; returns how many it took. */
function eachCandle(rows: string, put: (c: CandleIn) => boolean): number {
  let n = 0;
  for (const line of rows.split(';')) {
    const [time, open, high, low, close, volume] = line.split(',');
    if (put({ time: Number(time), open, high, low, close, volume })) n++;
  }
  return n;
}

/**
 * Loads the candles of `symbols` into one shared columnar series covering [from, to): the session's own
 * interval where it is stored, else 1-minute candles folded into it.
 */
export async function loadSeries(q: Queryable, symbols: string[], interval_ms: number, from: number, to: number): Promise<{ series: Series; candles: number }> {
  const series = allocSeries({ symbols, interval_ms, t0: from, length: Math.round((to - from) / interval_ms) });
  const index = new Map(symbols.map((s, i) => [s, i]));
  const exact = intervalName(interval_ms);
  let count = 0;
  const seen = new Set<string>();
  for (const r of await q.query<{ symbol: string; rows: string }>(candlesSql, [exact, symbols, iso(from), iso(to)])) {
    count += eachCandle(r.rows, (c) => setCandle(series, index.get(r.symbol)!, c));
    seen.add(r.symbol);
  }
  const missing = symbols.filter((s) => !seen.has(s));
  if (missing.length > 0 && exact !== '1m') {
    for (const r of await q.query<{ symbol: string; rows: string }>(candlesSql, ['1m', missing, iso(from), iso(to)])) {
      count += eachCandle(r.rows, (c) => foldCandle(series, index.get(r.symbol)!, c));
    }
  }
  return { series, candles: count };
}

export interface ListFilter {
  account_id: string;
  agent_id: string | null;
  strategy_label: string | null;
  status: string | null;
  ids: string[] | null;
}

/** Sort expressions by key: numbers sort high first with nulls last; the rest newest first. */
const ORDER: Record<string, string> = {
  created_at: 'created_at DESC',
  roi_pct: `(results->'metrics'->>'roi_pct')::numeric DESC NULLS LAST, created_at DESC`,
  sharpe_ratio: `(results->'metrics'->>'sharpe_ratio')::numeric DESC NULLS LAST, created_at DESC`,
  sortino_ratio: `(results->'metrics'->>'sortino_ratio')::numeric DESC NULLS LAST, created_at DESC`,
  total_pnl: `(results->'metrics'->>'total_pnl')::numeric DESC NULLS LAST, created_at DESC`,
  win_rate: `(results->'metrics'->>'win_rate')::numeric DESC NULLS LAST, created_at DESC`,
  profit_factor: `(results->'metrics'->>'profit_factor')::numeric DESC NULLS LAST, created_at DESC`,
  total_trades: `(results->'summary'->>'total_trades')::int DESC NULLS LAST, created_at DESC`,
  // The smallest drawdown is the best one.
  max_drawdown_pct: `(results->'metrics'->>'max_drawdown_pct')::numeric ASC NULLS LAST, created_at DESC`,
  strategy_label: `config->>'strategy_label', created_at DESC`,
  status: 'status, created_at DESC',
};

export async function listBacktests(q: Queryable, f: ListFilter, sort: string, limit: number, offset: number): Promise<{ rows: BacktestRow[]; total: number }> {
  const where = `account_id = $1 AND ($2::uuid IS NULL OR agent_id = $2) AND ($3::text IS NULL OR config->>'strategy_label' = $3)
    AND ($4::text IS NULL OR status = $4) AND ($5::uuid[] IS NULL OR id = ANY($5))`;
  const args = [f.account_id, f.agent_id, f.strategy_label, f.status, f.ids];
  const [c] = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM backtests WHERE ${where}`, args);
  const rows = await q.query<BacktestRow>(
    `SELECT id, account_id, agent_id, status, config, state, results, created_at FROM backtests WHERE ${where}
      ORDER BY ${ORDER[sort] ?? ORDER.created_at}, id LIMIT $6 OFFSET $7`,
    [...args, limit, offset],
  );
  return { rows, total: c.n };
}
