import type { Queryable } from '../store/db.js';
import { BUILTIN_PAIRS } from './pairs.js';
import type { Pair } from './types.js';

/** trading_pairs persistence: the engine loads its symbols from here, so a refreshed list survives restarts. */

const COLUMNS = 'symbol, base_asset, quote_asset, status, min_qty, step_size, min_notional';

/** Inserts or updates pairs in one statement (arrays through unnest); `keepExisting` leaves known symbols as they are. */
export async function upsertPairs(q: Queryable, pairs: ReadonlyArray<Pair>, keepExisting = false): Promise<void> {
  if (pairs.length === 0) return;
  const col = <K extends keyof Pair>(k: K) => pairs.map((p) => p[k]);
  const onConflict = keepExisting
    ? 'DO NOTHING'
    : `DO UPDATE SET base_asset = EXCLUDED.base_asset, quote_asset = EXCLUDED.quote_asset, status = EXCLUDED.status,
       min_qty = EXCLUDED.min_qty, step_size = EXCLUDED.step_size, min_notional = EXCLUDED.min_notional, updated_at = now()`;
  await q.query(
    `INSERT INTO trading_pairs (${COLUMNS})
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::numeric[], $7::numeric[])
     ON CONFLICT (symbol) ${onConflict}`,
    [col('symbol'), col('base_asset'), col('quote_asset'), col('status'), col('min_qty'), col('step_size'), col('min_notional')],
  );
}

export async function loadPairs(q: Queryable): Promise<Pair[]> {
  return q.query<Pair>(
    `SELECT symbol, base_asset, quote_asset, status, min_qty::text AS min_qty, step_size::text AS step_size,
            min_notional::text AS min_notional
       FROM trading_pairs ORDER BY symbol`,
  );
}

/** The stored pairs; an empty table is first filled with the built-in list (concurrent starts are harmless). */
export async function loadOrSeedPairs(q: Queryable): Promise<Pair[]> {
  const rows = await loadPairs(q);
  if (rows.length > 0) return rows;
  await upsertPairs(q, BUILTIN_PAIRS, true);
  return loadPairs(q);
}
