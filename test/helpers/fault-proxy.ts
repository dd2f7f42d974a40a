import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP forwarder that a test puts between the server and PostgreSQL or Redis, to take the service away
 * without stopping the machine's own (CI shares it):
 *  - `pause()`: the service went away. The listener closes (new connections are refused) and every open
 *    connection is cut, both sides.
 *  - `blackhole()`: the service hangs. Connections are accepted, open ones stay open, but nothing is
 *    forwarded in either direction (what a network partition looks like: only timeouts notice).
 *  - `resume()`: forwarding again on the same port. Connections that lived through a blackhole are cut,
 *    since the bytes dropped meanwhile left their protocol state broken.
 *  - `loseAnswerTo(pattern)`: the service does the work but the client never hears of it. The next connection
 *    whose client sends `pattern` is forwarded on, but nothing more comes back, and it is cut shortly after
 *    (a commit that landed while the connection died: the client cannot know).
 */

type Mode = 'forward' | 'paused' | 'blackhole';

interface Pair {
  client: Socket;
  upstream: Socket | null;
  /** Accepted (or carried) while blackholed: never forwards again. */
  dead: boolean;
  /** The service's answers are dropped (see loseAnswerTo). */
  mute: boolean;
}

export class FaultProxy {
  private server: Server | null = null;
  private readonly pairs = new Set<Pair>();
  private mode: Mode = 'forward';
  private boundPort = 0;
  private trap: { pattern: Buffer; cut_ms: number; sprung: () => void } | null = null;
  /** Connections accepted so far, and those cut by pause() or resume(). */
  readonly stats = { accepted: 0, cut: 0 };

  constructor(private readonly target: { host: string; port: number }) {}

  /** Starts listening on 127.0.0.1 (port 0: any free port); resolves to the port. */
  async start(port = 0): Promise<number> {
    await this.listen(port);
    return this.boundPort;
  }

  get port(): number {
    return this.boundPort;
  }

  get state(): Mode {
    return this.mode;
  }

  /** Open client connections now. */
  get connections(): number {
    return this.pairs.size;
  }

  private listen(port: number): Promise<void> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        this.boundPort = (server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  private accept(client: Socket): void {
    this.stats.accepted++;
    const pair: Pair = { client, upstream: null, dead: this.mode === 'blackhole', mute: false };
    this.pairs.add(pair);
    client.setNoDelay(true);
    const drop = () => this.cut(pair, false);
    client.on('error', drop).on('close', drop);
    if (pair.dead) {
      client.on('data', () => {}); // swallowed: the service never answers
      return;
    }
    const upstream = createConnection({ host: this.target.host, port: this.target.port });
    pair.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => {
      if (pair.dead) return;
      const trap = this.trap;
      if (trap && chunk.includes(trap.pattern)) {
        this.trap = null;
        pair.mute = true;
        setTimeout(() => {
          this.cut(pair, true);
          trap.sprung();
        }, trap.cut_ms);
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!pair.dead && !pair.mute) client.write(chunk);
    });
  }

  private cut(pair: Pair, counted: boolean): void {
    if (!this.pairs.delete(pair)) return;
    if (counted) this.stats.cut++;
    pair.client.destroy();
    pair.upstream?.destroy();
  }

  /** The service went away: refuse new connections and cut every open one. */
  async pause(): Promise<void> {
    this.mode = 'paused';
    const server = this.server;
    this.server = null;
    for (const p of [...this.pairs]) this.cut(p, true);
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  /**
   * Arms a one-shot trap: the next client bytes containing `pattern` reach the service, but its answers to that
   * connection are dropped and the connection is cut `cut_ms` later. Resolves once it has been cut.
   */
  loseAnswerTo(pattern: string, cut_ms = 300): Promise<void> {
    return new Promise((sprung) => {
      this.trap = { pattern: Buffer.from(pattern), cut_ms, sprung };
    });
  }

  /** The service hangs: accept, keep every connection open, answer nothing. */
  async blackhole(): Promise<void> {
    this.mode = 'blackhole';
    for (const p of this.pairs) p.dead = true;
    if (!this.server) await this.listen(this.boundPort);
  }

  /** The service is back on the same port; connections that went through a blackhole are cut. */
  async resume(): Promise<void> {
    for (const p of [...this.pairs]) if (p.dead) this.cut(p, true);
    this.mode = 'forward';
    if (!this.server) await this.listen(this.boundPort);
  }

  async close(): Promise<void> {
    await this.pause();
  }
}

/** `postgres://…@host:port/db?…` or `redis://host:port` with host and port replaced by the proxy's. */
export function viaProxy(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

/** Host and port a service URL points at (defaults: 5432 for postgres, 6379 for redis). */
export function targetOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  const port = u.port ? Number(u.port) : u.protocol.startsWith('redis') ? 6379 : 5432;
  return { host: u.hostname || '127.0.0.1', port };
}
