import { parseLevel, type LogLevel } from './log.js';
import { FEED_NAMES, type FeedName } from './market/feeds/index.js';
import { LIMITS } from '../schemas/limits.js';

/**
 * Every setting, named once, with its unit last. Read from the environment by `loadConfig`; the request bounds
 * among them default to schemas/limits.ts `LIMITS`, where the fixed ones live.
 */
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
  /**
   * client_order_ids a live wallet keeps in a map, newest first; older ones live in a Bloom filter and a repeat
   * of one is answered from the database (engine/trading.ts).
   */
  clientIdsRecent_max: number;
  /** scrypt cost (N) for secrets and passwords. */
  kdfCost: number;
  /** Trading fee as a fraction of the quote amount (0.001 = 0.1 %), a decimal string. */
  feeRate: string;
  /** Price source: binance (live trades), synthetic (seeded random walk), replay (candle CSVs) or none. */
  feed: FeedName;
  /** Binance stream base URL; null = Binance's public endpoint. */
  feedUrl: string | null;
  feedSeed: number | string;
  /** replay: candle CSV paths. */
  feedFiles: string[];
  /** replay: data time per wall-clock time. */
  feedSpeed: number;
  /** Period of the equity snapshots analytics reads; 0 turns the timer off. */
  snapshot_interval_ms: number;
  /** Take the client IP from X-Forwarded-For (set only behind a trusted proxy). */
  trustProxy: boolean;
  /** HTTP requests per fixed 60 s window; 0 disables a limit. */
  rate: {
    agent_per_minute: number;
    account_per_minute: number;
    /** Unauthenticated POSTs (register, login) per client IP. */
    auth_per_ip_per_minute: number;
    /** Other unauthenticated requests (public market data) per client IP. */
    public_per_ip_per_minute: number;
  };
  /**
   * Live battles: the equity snapshot period (from each battle's start), and the wall-clock length of one
   * `duration_minutes` minute. The API keeps whole minutes as the seed says; tests shorten the minute instead.
   */
  battle: {
    snapshot_interval_ms: number;
    minute_ms: number;
  };
  ws: {
    frame_bytes_max: number;
    /** Outbound bytes a socket may have queued; past it the socket is closed (a slow consumer is dropped). */
    backpressure_bytes_max: number;
    subscriptions_max: number;
    connections_per_key_max: number;
    /** Time to send the auth frame when the key is not in the URL. */
    auth_timeout_ms: number;
    ping_interval_ms: number;
    portfolio_interval_ms: number;
  };
}

const int = (v: string | undefined, fallback: number): number => {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got "${v}"`);
  return n;
};

function feedName(v: string | undefined): FeedName {
  const name = (v || 'binance').toLowerCase();
  if (!(FEED_NAMES as readonly string[]).includes(name)) throw new Error(`FEED must be one of ${FEED_NAMES.join(', ')}, got "${v}"`);
  return name as FeedName;
}

function positive(v: string | undefined, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`expected a positive number, got "${v}"`);
  return n;
}

const feeRate = (v: string | undefined): string => {
  if (v === undefined || v === '') return '0.001';
  if (!/^0(\.\d{1,8})?$/.test(v)) throw new Error(`TRADING_FEE_RATE must be a fraction below 1 such as 0.001, got "${v}"`);
  return v;
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
    body_bytes_max: int(env.BODY_BYTES_MAX, LIMITS.body_bytes_max),
    shutdownGrace_ms: int(env.SHUTDOWN_GRACE_MS, 10_000),
    journalBatch_events_max: int(env.JOURNAL_BATCH_EVENTS_MAX, 5000),
    clientIdsRecent_max: int(env.CLIENT_IDS_RECENT_MAX, 1024),
    kdfCost: int(env.KDF_COST, 16384),
    feeRate: feeRate(env.TRADING_FEE_RATE),
    feed: feedName(env.FEED),
    feedUrl: env.FEED_URL || null,
    feedSeed: /^\d+$/.test(env.FEED_SEED ?? '') ? Number(env.FEED_SEED) : env.FEED_SEED || 42,
    feedFiles: (env.FEED_FILE ?? '').split(',').map((f) => f.trim()).filter(Boolean),
    feedSpeed: positive(env.FEED_SPEED, 1),
    snapshot_interval_ms: int(env.SNAPSHOT_INTERVAL_MS, 60_000),
    trustProxy: env.TRUST_PROXY === '1' || env.TRUST_PROXY === 'true',
    rate: {
      agent_per_minute: int(env.RATE_AGENT_PER_MINUTE, LIMITS.rate_agent_per_minute),
      account_per_minute: int(env.RATE_ACCOUNT_PER_MINUTE, LIMITS.rate_account_per_minute),
      auth_per_ip_per_minute: int(env.RATE_AUTH_PER_IP_PER_MINUTE, LIMITS.rate_auth_per_ip_per_minute),
      public_per_ip_per_minute: int(env.RATE_PUBLIC_PER_IP_PER_MINUTE, LIMITS.rate_public_per_ip_per_minute),
    },
    battle: {
      snapshot_interval_ms: positive(env.BATTLE_SNAPSHOT_INTERVAL_MS, 5_000),
      minute_ms: positive(env.BATTLE_MINUTE_MS, 60_000),
    },
    ws: {
      frame_bytes_max: int(env.WS_FRAME_BYTES_MAX, LIMITS.ws_frame_bytes_max),
      backpressure_bytes_max: int(env.WS_BACKPRESSURE_BYTES_MAX, 1024 * 1024),
      subscriptions_max: int(env.WS_SUBSCRIPTIONS_MAX, LIMITS.ws_subscriptions_max),
      connections_per_key_max: int(env.WS_CONNECTIONS_PER_KEY_MAX, LIMITS.ws_connections_per_key_max),
      auth_timeout_ms: int(env.WS_AUTH_TIMEOUT_MS, 10_000),
      ping_interval_ms: int(env.WS_PING_INTERVAL_MS, 30_000),
      portfolio_interval_ms: int(env.WS_PORTFOLIO_INTERVAL_MS, 5_000),
    },
  };
}
