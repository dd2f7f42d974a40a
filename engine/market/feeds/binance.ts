import WebSocket from 'ws';
import type { Logger } from '../../log.js';
import type { Feed, Tick } from '../types.js';

/**
 * Live trades from Binance's public combined stream. The first connection must succeed (so the caller can
 * fall back to another feed); after that, every drop reconnects with exponential backoff.
 */

export const BINANCE_STREAM_BASE = 'wss://stream.binance.com:9443';

export interface BinanceOptions {
  symbols: string[];
  base?: string;
  /** First reconnect delay; doubles per failed attempt up to backoff_max_ms. */
  backoff_base_ms?: number;
  backoff_max_ms?: number;
  /** How long the first connection may take before start() gives up. */
  connect_timeout_ms?: number;
  /** No frame and no ping for this long means a dead link: reconnect. */
  idle_timeout_ms?: number;
  /** Binance refuses more streams than this on one connection. */
  streams_per_connection_max?: number;
  log?: Logger;
}

/** One combined-stream URL per chunk of symbols. */
export function streamUrls(base: string, symbols: string[], perConnection = 1024): string[] {
  const root = base.replace(/\/+$/, '');
  const urls: string[] = [];
  for (let i = 0; i < symbols.length; i += perConnection) {
    const streams = symbols.slice(i, i + perConnection).map((s) => `${s.toLowerCase()}@trade`);
    urls.push(`${root}/stream?streams=${streams.join('/')}`);
  }
  return urls;
}

const DEC = /^\d+(\.\d+)?$/;
/** Errors name the server, not the (long) stream list. */
const host = (url: string) => url.split('/stream?')[0];

/** A trade from a combined-stream (or raw-stream) frame; anything else, including malformed JSON, is null. */
export function parseTradeFrame(raw: string): Tick | null {
  let msg: unknown;
  try {
    msg = JSON.parse(raw);
  } catch {
    return null;
  }
  const d = ((msg as { data?: unknown })?.data ?? msg) as Record<string, unknown> | null;
  if (!d || d.e !== 'trade' || typeof d.s !== 'string' || typeof d.p !== 'string' || typeof d.q !== 'string') return null;
  if (!DEC.test(d.p) || !DEC.test(d.q) || typeof d.T !== 'number') return null;
  return {
    symbol: d.s.toUpperCase(), price: d.p, quantity: d.q, time: d.T,
    is_buyer_maker: d.m === true, ...(typeof d.t === 'number' && { trade_id: d.t }),
  };
}

interface Conn {
  url: string;
  ws: WebSocket | null;
  attempt: number;
  retry: NodeJS.Timeout | null;
  idle: NodeJS.Timeout | null;
  opened: boolean;
  lastError: string | null;
}

export class BinanceFeed implements Feed {
  readonly name = 'binance';
  private conns: Conn[] = [];
  private sink: ((tick: Tick) => void) | null = null;
  private stopped = false;
  /** Successful connections after a drop (for health and tests). */
  reconnects = 0;

  constructor(private readonly opts: BinanceOptions) {}

  async start(sink: (tick: Tick) => void): Promise<void> {
    this.sink = sink;
    this.stopped = false;
    const urls = streamUrls(this.opts.base ?? BINANCE_STREAM_BASE, this.opts.symbols, this.opts.streams_per_connection_max);
    this.conns = urls.map((url) => ({ url, ws: null, attempt: 0, retry: null, idle: null, opened: false, lastError: null }));
    await Promise.all(this.conns.map((c) => this.firstConnect(c)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sink = null;
    for (const c of this.conns) {
      if (c.retry) clearTimeout(c.retry);
      if (c.idle) clearTimeout(c.idle);
      c.ws?.terminate();
      c.ws = null;
    }
  }

  private firstConnect(c: Conn): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = this.open(c);
      const timer = setTimeout(() => fail(new Error(`no connection to ${host(c.url)} within ${this.opts.connect_timeout_ms ?? 10_000} ms`)), this.opts.connect_timeout_ms ?? 10_000);
      const fail = (err: Error) => {
        clearTimeout(timer);
        ws.removeListener('open', ok);
        c.ws = null;
        ws.terminate();
        reject(err);
      };
      const ok = () => {
        clearTimeout(timer);
        ws.removeListener('close', early);
        ws.on('close', () => this.dropped(c, ws));
        resolve();
      };
      const early = (code: number) => fail(new Error(`connection to ${host(c.url)} failed: ${c.lastError ?? `closed with code ${code}`}`));
      ws.once('open', ok);
      ws.once('close', early);
    });
  }

  /** A socket with the frame, ping and idle handling; `close` handling is the caller's. */
  private open(c: Conn): WebSocket {
    const ws = new WebSocket(c.url, { handshakeTimeout: this.opts.connect_timeout_ms ?? 10_000 });
    c.ws = ws;
    const alive = () => {
      if (c.idle) clearTimeout(c.idle);
      c.idle = setTimeout(() => ws.terminate(), this.opts.idle_timeout_ms ?? 60_000);
    };
    ws.on('error', (err) => {
      c.lastError = err.message;
      this.opts.log?.debug('feed.binance.error', { url: host(c.url), error: err.message });
    });
    ws.on('open', () => {
      if (c.opened) this.reconnects++;
      c.opened = true;
      c.attempt = 0;
      alive();
      this.opts.log?.info('feed.binance.connected', { url: host(c.url), reconnects: this.reconnects });
    });
    // ws answers pings with pongs by itself; a ping still proves the link is alive.
    ws.on('ping', alive);
    ws.on('message', (data) => {
      alive();
      const tick = parseTradeFrame(data.toString());
      if (tick && this.sink) this.sink(tick);
    });
    return ws;
  }

  private dropped(c: Conn, ws: WebSocket): void {
    if (c.ws !== ws) return;
    if (c.idle) clearTimeout(c.idle);
    c.ws = null;
    if (this.stopped) return;
    const delay = Math.min((this.opts.backoff_base_ms ?? 1000) * 2 ** c.attempt, this.opts.backoff_max_ms ?? 60_000);
    c.attempt++;
    this.opts.log?.warn('feed.binance.disconnected', { url: host(c.url), retry_in_ms: delay });
    c.retry = setTimeout(() => {
      c.retry = null;
      if (this.stopped) return;
      const next = this.open(c);
      next.on('close', () => this.dropped(c, next));
    }, delay);
  }
}
