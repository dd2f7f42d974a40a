import { parseLevel, type LogLevel } from './log.js';

/** Every limit and setting, named once, with its unit last. Read from the environment by `loadConfig`. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | null;
  redisUrl: string | null;
  logLevel: LogLevel;
  /** HS256 secret; generated once and kept in DATA_DIR when not given. */
  jwtSecret: string | null;
  /** Key that encrypts agent API keys at rest; generated once and kept in DATA_DIR when not given. */
  serverKey: string | null;
  jwtExpiry_seconds: number;
  body_bytes_max: number;
  shutdownGrace_ms: number;
  journalBatch_events_max: number;
  /** scrypt cost (N) for secrets and passwords. */
  kdfCost: number;
}

export const LIMITS = {
  agents_page_max: 500,
  agents_page_default: 100,
  display_name_chars_max: 100,
  password_chars_min: 8,
  password_chars_max: 72,
  starting_balance_max: '1000000000',
  strategy_tags_max: 50,
  authorized_instruments_max: 500,
} as const;

const int = (v: string | undefined, fallback: number): number => {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got "${v}"`);
  return n;
};

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    port: int(env.PORT, 8000),
    host: env.HOST || '127.0.0.1',
    dataDir: env.DATA_DIR || './data',
    databaseUrl: env.DATABASE_URL || null,
    redisUrl: env.REDIS_URL || null,
    logLevel: parseLevel(env.LOG_LEVEL),
    jwtSecret: env.JWT_SECRET || null,
    serverKey: env.SERVER_KEY || null,
    jwtExpiry_seconds: int(env.JWT_EXPIRY_SECONDS, 3600),
    body_bytes_max: int(env.BODY_BYTES_MAX, 1024 * 1024),
    shutdownGrace_ms: int(env.SHUTDOWN_GRACE_MS, 10_000),
    journalBatch_events_max: int(env.JOURNAL_BATCH_EVENTS_MAX, 5000),
    kdfCost: int(env.KDF_COST, 16384),
  };
}
