import { Redis } from 'ioredis';

/**
 * Fan-out between processes and shared counters. Redis (ioredis) when REDIS_URL is set,
 * an in-process equivalent otherwise; both behave the same for one process.
 */
export interface Bus {
  readonly kind: 'redis' | 'memory';
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>>;
  /** Increments a counter that lives for `window_seconds`; returns the new count. */
  incrWindow(key: string, window_seconds: number): Promise<number>;
  ping(): Promise<number>;
  close(): Promise<void>;
}

export function createMemoryBus(now: () => number = Date.now): Bus {
  const handlers = new Map<string, Set<(m: string) => void>>();
  const counters = new Map<string, { count: number; expires: number }>();
  return {
    kind: 'memory',
    async publish(channel, message) {
      for (const h of handlers.get(channel) ?? []) {
        queueMicrotask(() => {
          try {
            h(message);
          } catch {
            // A failing subscriber must not take the process down; it only loses this message.
          }
        });
      }
    },
    async subscribe(channel, handler) {
      let set = handlers.get(channel);
      if (!set) handlers.set(channel, (set = new Set()));
      set.add(handler);
      return async () => {
        set!.delete(handler);
      };
    },
    async incrWindow(key, window_seconds) {
      const t = now();
      const c = counters.get(key);
      if (!c || c.expires <= t) {
        counters.set(key, { count: 1, expires: t + window_seconds * 1000 });
        if (counters.size > 100_000) for (const [k, v] of counters) if (v.expires <= t) counters.delete(k);
        return 1;
      }
      c.count += 1;
      return c.count;
    },
    ping: async () => 0,
    close: async () => {
      handlers.clear();
    },
  };
}

/** A Redis command without an answer by then fails (callers fall back: rate limits open, fan-out skipped). */
export const BUS_COMMAND_TIMEOUT_MS = 1000;

export async function createRedisBus(url: string, keyPrefix = ''): Promise<Bus> {
  const opts = { lazyConnect: true, maxRetriesPerRequest: 2, connectTimeout: 5000, enableOfflineQueue: true };
  // Commands sit on every request's path (rate-limit counters): while Redis is away they fail at once instead of
  // queueing until several reconnects have failed (seconds per request), and a Redis that stops answering costs
  // one timeout, after which the connection is dropped so the next commands fail fast until a new one is ready.
  // The subscriber keeps its queue: subscriptions are made at start-up and renewed by ioredis on reconnect.
  const cmd = new Redis(url, { ...opts, enableOfflineQueue: false, commandTimeout: BUS_COMMAND_TIMEOUT_MS });
  const sub = new Redis(url, opts);
  // Connection errors are reported through ping() and failed commands, never as crashes.
  cmd.on('error', () => {});
  sub.on('error', () => {});
  await Promise.all([cmd.connect(), sub.connect()]).catch((err) => {
    // Neither client may go on reconnecting in the background after a failed start.
    cmd.disconnect();
    sub.disconnect();
    throw err;
  });
  const handlers = new Map<string, Set<(m: string) => void>>();
  sub.on('message', (channel: string, message: string) => {
    for (const h of handlers.get(channel) ?? []) h(message);
  });
  const ch = (c: string) => keyPrefix + c;
  const run = async <T>(command: () => Promise<T>): Promise<T> => {
    try {
      return await command();
    } catch (err) {
      if ((err as Error).message === 'Command timed out' && cmd.status === 'ready') cmd.disconnect(true);
      throw err;
    }
  };
  return {
    kind: 'redis',
    async publish(channel, message) {
      await run(() => cmd.publish(ch(channel), message));
    },
    async subscribe(channel, handler) {
      const key = ch(channel);
      let set = handlers.get(key);
      if (!set) {
        handlers.set(key, (set = new Set()));
        await sub.subscribe(key);
      }
      set.add(handler);
      return async () => {
        set!.delete(handler);
        if (set!.size === 0) {
          handlers.delete(key);
          await sub.unsubscribe(key);
        }
      };
    },
    async incrWindow(key, window_seconds) {
      const k = ch(key);
      const res = await run(() => cmd.multi().incr(k).expire(k, window_seconds, 'NX').exec());
      return Number(res?.[0]?.[1] ?? 0);
    },
    async ping() {
      const t0 = performance.now();
      await run(() => cmd.ping());
      return Math.round((performance.now() - t0) * 100) / 100;
    },
    async close() {
      cmd.disconnect();
      sub.disconnect();
    },
  };
}
