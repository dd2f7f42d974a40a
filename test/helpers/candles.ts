import { resolve } from 'node:path';
import { loadCandleCsv } from '../../engine/market/csv.js';
import { upsertCandles } from '../../engine/store/candles-repo.js';
import type { Queryable } from '../../engine/store/db.js';

/** The shared real-data folder beside the checkout (../shared/data). */
export const dataFile = (rel: string) => resolve('../shared/data', rel);

/** Imports the candles of a shared-data CSV whose open time lies in [from, to) into the candles table. */
export async function importCandles(db: Queryable, rel: string, symbol: string, interval: string, from: string, to: string): Promise<number> {
  const lo = Date.parse(from);
  const hi = Date.parse(to);
  const rows = loadCandleCsv(dataFile(rel)).candles.filter((c) => c.time >= lo && c.time < hi);
  await upsertCandles(db, symbol, interval, rows);
  return rows.length;
}
