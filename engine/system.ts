import { join } from 'node:path';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { createMemoryBus, createRedisBus, type Bus } from './bus.js';
import { openEmbedded, openPostgres, type Db } from './store/db.js';
import { migrate } from './store/migrations.js';
import { Journal } from './store/journal.js';
import { IdentityService } from './identity/service.js';
import { loadSecrets, type Secrets } from './secrets.js';
import { PriceBook } from './market/book.js';
import { loadOrSeedPairs } from './market/pairs-repo.js';
import { createFeed } from './market/feeds/index.js';
import type { Feed } from './market/types.js';
import { Trading } from './trading.js';
import { projectWalletEvents } from './store/projection.js';

/** Everything the gateway talks to. Built once at start-up, closed once at shutdown. */
export interface Engine {
  readonly config: Config;
  readonly db: Db;
  readonly bus: Bus;
  readonly journal: Journal;
  readonly identity: IdentityService;
  readonly secrets: Secrets;
  readonly log: Logger;
  /** Prices, tickers, candles and recent trades, in memory. */
  readonly market: PriceBook;
  /** What fills `market` (config.feed). */
  readonly feed: Feed;
  /** Wallet actors, orders and the trigger index. */
  readonly trading: Trading;
  close(): Promise<void>;
}

export interface EngineDeps {
  /** Tests inject a prepared database or bus; otherwise config decides. */
  db?: Db;
  bus?: Bus;
}

export async function createEngine(config: Config, log: Logger, deps: EngineDeps = {}): Promise<Engine> {
  const db = deps.db ?? (config.databaseUrl ? await openPostgres(config.databaseUrl) : await openEmbedded(join(config.dataDir, 'pg')));
  const bus = deps.bus ?? (config.redisUrl ? await createRedisBus(config.redisUrl) : createMemoryBus());
  const applied = await migrate(db);
  log.info('storage.ready', { db: db.kind, bus: bus.kind, migrations_applied: applied });
  const secrets = loadSecrets(config.dataDir, { jwtSecret: config.jwtSecret, serverKey: config.serverKey });
  const journal = new Journal(db, config.journalBatch_events_max, projectWalletEvents);
  const identity = new IdentityService(db, bus, secrets.serverKey, config.kdfCost);
  await identity.start();
  const market = new PriceBook(await loadOrSeedPairs(db), { onListenerError: (err) => log.error('market.listener_failed', { err }) });
  const feed = createFeed(config.feed, {
    symbols: market.pairs().map((p) => p.symbol), url: config.feedUrl, seed: config.feedSeed,
    files: config.feedFiles, speed: config.feedSpeed, log,
  });
  const trading = new Trading(db, journal, market, identity, config.feeRate, log);
  await trading.start();
  // Not awaited: a slow or unreachable exchange must not hold up start-up (the feed falls back by itself).
  feed.start((tick) => market.ingest(tick)).catch((err) => log.error('feed.failed', { feed: feed.name, err }));
  log.info('market.ready', { pairs: market.pairs().length, feed: config.feed });
  return {
    config, db, bus, journal, identity, secrets, log, market, feed, trading,
    async close() {
      await feed.stop();
      await journal.close();
      await bus.close();
      await db.close();
    },
  };
}
