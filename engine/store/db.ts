import pg from 'pg';
import { PGlite, types as pgliteTypes } from '@electric-sql/pglite';
import { mkdirSync } from 'node:fs';
import { ApiError } from '../../schemas/errors.js';

/** What repositories need from a database: parameterised queries and multi-statement scripts. */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  exec(sql: string): Promise<void>;
}

/** One database port, two adapters (PostgreSQL through `pg`, embedded PGlite); same SQL for both. */
export interface Db extends Queryable {
  readonly kind: 'postgres' | 'embedded';
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** Round-trip latency in ms; throws when the database is unreachable. */
  ping(): Promise<number>;
  close(): Promise<void>;
}

export interface DbOptions {
  /** PostgreSQL only: run every statement in this schema (tests use a fresh one per run). */
  schema?: string;
  poolSize?: number;
  /** Client-side bound on one statement (0: none); `?query_timeout=` in the URL overrides it. Default QUERY_TIMEOUT_MS. */
  queryTimeout_ms?: number;
}

/** A new connection that is not ready by then fails (a database that accepts but never answers). */
export const CONNECT_TIMEOUT_MS = 5000;
/**
 * A statement without an answer by then fails and its connection is dropped. Without it, a database that stops
 * answering (a network partition: no reset, no close) holds a group commit, and every order behind it, until
 * TCP gives up many minutes later. Below the official client's 30 s request timeout, so the caller gets a 503
 * it can retry rather than a transport error; long bulk jobs (imports) may pass `queryTimeout_ms: 0`.
 */
export const QUERY_TIMEOUT_MS = 15_000;

/** SQLSTATE classes that mean "the server is going away or cannot take this connection", not "this statement is wrong". */
const UNAVAILABLE_SQLSTATE = /^(08|57P0[123]|53300)/;

/**
 * True for failures of the connection rather than of the statement: refused, reset, cut, timed out, or the server
 * shutting down. Statement errors (constraint violations, syntax) come from the server as DatabaseError.
 */
export function isConnectionError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if (err instanceof ApiError) return err.code === 'SERVICE_UNAVAILABLE' && isConnectionError((err as { cause?: unknown }).cause);
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (err instanceof pg.DatabaseError) return typeof code === 'string' && UNAVAILABLE_SQLSTATE.test(code);
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT…
  return typeof message === 'string' && /Connection terminated|timeout|Client has encountered a connection error|not queryable/i.test(message);
}

/** A lost database answers 503 SERVICE_UNAVAILABLE (retry later) rather than 500; other errors pass unchanged. */
function unavailable(err: unknown): unknown {
  if (!isConnectionError(err)) return err;
  const e = new ApiError('SERVICE_UNAVAILABLE', 'The database is unreachable; try again shortly.');
  (e as { cause?: unknown }).cause = err;
  return e;
}

const INT8_OID = 20;
const int8AsNumber = (v: string) => Number(v);

export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === '23505';
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return Math.round((performance.now() - t0) * 100) / 100;
}

export async function openPostgres(url: string, opts: DbOptions = {}): Promise<Db> {
  const types = {
    getTypeParser: (oid: number, format?: 'text' | 'binary') =>
      oid === INT8_OID ? int8AsNumber : pg.types.getTypeParser(oid, format as 'text'),
  };
  if (opts.schema && !/^[a-z_][a-z0-9_]*$/.test(opts.schema)) throw new Error(`bad schema name ${opts.schema}`);
  if (opts.schema) {
    const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA IF NOT EXISTS ${opts.schema}`);
    } finally {
      await admin.end();
    }
  }
  const queryTimeout = opts.queryTimeout_ms ?? QUERY_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: queryTimeout > 0 ? queryTimeout : undefined,
    types,
    options: opts.schema ? `-c search_path=${opts.schema}` : undefined,
  });
  // An idle client losing its server must not crash the process; the next query reports the error.
  pool.on('error', () => {});
  const asQueryable = (c: pg.Pool | pg.PoolClient): Queryable => ({
    query: async <T>(sql: string, params?: readonly unknown[]) => {
      try {
        return (await c.query(sql, params as unknown[])).rows as T[];
      } catch (err) {
        throw unavailable(err);
      }
    },
    exec: async (sql: string) => {
      try {
        await c.query(sql);
      } catch (err) {
        throw unavailable(err);
      }
    },
  });
  const db: Db = {
    kind: 'postgres',
    ...asQueryable(pool),
    async tx(fn) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw unavailable(err);
      }
      // A checked-out client has no error listener of the pool's: a connection lost between two statements
      // would be an uncaught 'error' event and take the process down. The next statement reports it instead.
      let lost: Error | null = null;
      const onError = (err: Error) => (lost ??= err);
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const out = await fn(asQueryable(client));
        await client.query('COMMIT');
        return out;
      } catch (err) {
        // A broken connection is dropped (the server rolls back on its own); a statement error is rolled back here.
        lost ??= isConnectionError(err) ? (err as Error) : null;
        if (!lost) await client.query('ROLLBACK').catch((e: Error) => (lost = e));
        throw unavailable(err);
      } finally {
        client.off('error', onError);
        client.release(lost ?? undefined);
      }
    },
    ping: () => timed(() => pool.query('SELECT 1')),
    close: () => pool.end(),
  };
  await db.ping();
  return db;
}

/** Embedded PostgreSQL (WASM). `dataDir` null keeps everything in memory (tests). */
export async function openEmbedded(dataDir: string | null): Promise<Db> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const lite = await PGlite.create(dataDir ?? undefined, {
    parsers: { [pgliteTypes.NUMERIC]: (v: string) => v, [pgliteTypes.INT8]: int8AsNumber },
  });
  return wrapPglite(lite);
}

function wrapPglite(lite: PGlite): Db {
  type Tx = Parameters<Parameters<PGlite['transaction']>[0]>[0];
  const asQueryable = (c: PGlite | Tx): Queryable => ({
    query: async <T>(sql: string, params?: readonly unknown[]) =>
      (await c.query<T>(sql, params as unknown[])).rows,
    exec: async (sql: string) => {
      await c.exec(sql);
    },
  });
  return {
    kind: 'embedded',
    ...asQueryable(lite),
    tx: (fn) => lite.transaction((tx) => fn(asQueryable(tx))),
    ping: () => timed(() => lite.query('SELECT 1')),
    close: () => lite.close(),
  };
}

/**
 * One page of a filtered listing and the true count of all matching rows. `from` and `where` are SQL from
 * our own code; `args` fill $1..$n and the page bounds become the next two parameters.
 */
export async function page<T>(q: Queryable, sql: { select: string; from: string; where: string; order: string }, args: unknown[], limit: number, offset: number): Promise<{ rows: T[]; total: number }> {
  const [count] = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql.from} WHERE ${sql.where}`, args);
  const n = args.length;
  const rows = await q.query<T>(`SELECT ${sql.select} FROM ${sql.from} WHERE ${sql.where} ORDER BY ${sql.order} LIMIT $${n + 1} OFFSET $${n + 2}`, [...args, limit, offset]);
  return { rows, total: count.n };
}
