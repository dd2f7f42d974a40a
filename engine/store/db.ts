import pg from 'pg';
import { PGlite, types as pgliteTypes } from '@electric-sql/pglite';
import { mkdirSync } from 'node:fs';

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
    const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA IF NOT EXISTS ${opts.schema}`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: 5000,
    types,
    options: opts.schema ? `-c search_path=${opts.schema}` : undefined,
  });
  // An idle client losing its server must not crash the process; the next query reports the error.
  pool.on('error', () => {});
  const asQueryable = (c: pg.Pool | pg.PoolClient): Queryable => ({
    query: async <T>(sql: string, params?: readonly unknown[]) => (await c.query(sql, params as unknown[])).rows as T[],
    exec: async (sql: string) => {
      await c.query(sql);
    },
  });
  const db: Db = {
    kind: 'postgres',
    ...asQueryable(pool),
    async tx(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const out = await fn(asQueryable(client));
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
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
