import { join } from 'node:path';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { createMemoryBus, createRedisBus, type Bus } from './bus.js';
import { openEmbedded, openPostgres, type Db } from './store/db.js';
import { migrate } from './store/migrations.js';
import { Journal } from './store/journal.js';
import { IdentityService } from './identity/service.js';
import { loadSecrets, type Secrets } from './secrets.js';

/** Everything the gateway talks to. Built once at start-up, closed once at shutdown. */
export interface Engine {
  readonly config: Config;
  readonly db: Db;
  readonly bus: Bus;
  readonly journal: Journal;
  readonly identity: IdentityService;
  readonly secrets: Secrets;
  readonly log: Logger;
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
  const journal = new Journal(db, config.journalBatch_events_max);
  const identity = new IdentityService(db, bus, secrets.serverKey, config.kdfCost);
  await identity.start();
  return {
    config, db, bus, journal, identity, secrets, log,
    async close() {
      await journal.close();
      await bus.close();
      await db.close();
    },
  };
}
