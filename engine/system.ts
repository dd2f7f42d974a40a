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
import { CandleWriter } from './market/candle-writer.js';
import { Snapshotter } from './snapshots.js';
import { Backtests, type StepRunner } from './backtests.js';
import { Battles } from './battles.js';

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
  /** Periodic equity snapshots of loaded wallets (analytics reads them). */
  readonly snapshots: Snapshotter;
  /** Backtest actors (sessions survive a restart) and their step workers. */
  readonly backtests: Backtests;
  /** Battle actors (live and historical; running ones resume after a restart) and their clock. */
  readonly battles: Battles;
  close(): Promise<void>;
}

export interface EngineDeps {
  /** Tests inject a prepared database or bus; otherwise config decides. */
  db?: Db;
  bus?: Bus;
  /** Runs backtest batches off the main thread; null steps everything in the main thread. Default: the piscina pool. */
  stepRunner?: StepRunner | null;
}

/**
 * The worker pool is loaded at run time: engine modules never import workers/ (workers run engine/core),
 * and this composition root is the one place that wires it in.
 */
async function defaultStepRunner(): Promise<StepRunner | null> {
  const { createStepPool } = (await import('../workers/pool.js')) as { createStepPool: () => StepRunner | null };
  return createStepPool();
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
  // Only real exchange trades become stored candles: synthetic or replayed prices (also a Binance feed that fell
  // back to synthetic) must not end up in the history backtests read.
  const candleWriter = config.feed === 'binance'
    ? new CandleWriter(db, market, { accept: () => feed.name === 'binance', onError: (err) => log.error('candles.flush_failed', { err }) })
    : null;
  candleWriter?.start();
  const trading = new Trading(db, journal, market, identity, config.feeRate, log, config.clientIdsRecent_max);
  await trading.start();
  const snapshots = new Snapshotter(db, trading, market, config.snapshot_interval_ms, log);
  snapshots.start();
  const runner = deps.stepRunner === undefined ? await defaultStepRunner() : deps.stepRunner;
  if (!runner) log.warn('backtest.no_workers', { reason: 'compiled worker not found; batches step in the main thread' });
  const backtests = new Backtests(db, market, identity, runner, config.feeRate, log);
  // After trading (it routes live participants' orders) and sharing the backtests' worker pool.
  const battles = new Battles(db, market, identity, trading, runner, { feeRate: config.feeRate, ...config.battle }, log);
  await battles.start();
  // Not awaited: a slow or unreachable exchange must not hold up start-up (the feed falls back by itself).
  feed.start((tick) => market.ingest(tick)).catch((err) => log.error('feed.failed', { feed: feed.name, err }));
  log.info('market.ready', { pairs: market.pairs().length, feed: config.feed });
  return {
    config, db, bus, journal, identity, secrets, log, market, feed, trading, snapshots, backtests, battles,
    async close() {
      await feed.stop();
      await candleWriter?.stop();
      await snapshots.stop();
      // Before backtests, which close the shared worker pool; before the journal, which battle stops write to.
      await battles.close();
      await backtests.close();
      await journal.close();
      await bus.close();
      await db.close();
    },
  };
}
