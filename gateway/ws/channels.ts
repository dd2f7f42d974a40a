import type uWS from 'uWebSockets.js';
import { ApiError } from '../../schemas/errors.js';
import { LIMITS } from '../../schemas/limits.js';
import { CANDLE_INTERVALS, type Candle, type CandleInterval } from '../../engine/market/candles.js';
import { portfolioOf } from '../../engine/core/portfolio.js';
import type { WalletEvent } from '../../engine/core/wallet.js';
import type { Principal } from '../../engine/identity/types.js';
import type { Tick } from '../../engine/market/types.js';
import type { Engine } from '../../engine/system.js';
import { orderOut } from '../routes/trade.js';

/** What the gateway keeps per connection (uWS user data). */
export interface Conn {
  id: number;
  ip: string;
  /** The API key the socket authenticated with (re-resolved on every request, so a revoked key stops working). */
  key: string | null;
  agentScope: string | null;
  principal: Principal | null;
  /** Channel key as the client named it → the internal topics it covers. */
  subs: Map<string, string[]>;
  closed: boolean;
  authTimer: NodeJS.Timeout | null;
}
export type Sock = uWS.WebSocket<Conn>;

export const CHANNELS = ['ticker', 'ticker_all', 'candles', 'orders', 'portfolio', 'battle'] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A subscribe frame in either spelling → the full channel key pushes carry (`ticker:BTCUSDT`, `candles:ETHUSDT:1m`, `orders`). */
export function channelKey(f: { channel: string; symbol?: string; interval?: string; battle_id?: string }, knownSymbol: (s: string) => boolean): string {
  const parts = f.channel.trim().split(':');
  const name = parts[0].toLowerCase();
  const symbol = (parts[1] ?? f.symbol ?? '').trim().toUpperCase();
  const needSymbol = () => {
    if (!symbol) throw new ApiError('INVALID_CHANNEL', `Channel '${name}' needs a symbol.`, { channel: f.channel });
    if (!knownSymbol(symbol)) throw new ApiError('INVALID_SYMBOL', `Unknown symbol '${symbol}'.`, { symbol });
    return symbol;
  };
  if (name === 'ticker_all' || (name === 'ticker' && symbol === 'ALL')) return 'ticker:all';
  if (name === 'ticker') return `ticker:${needSymbol()}`;
  if (name === 'candles') {
    const interval = (parts[2] ?? f.interval ?? '').trim();
    const s = needSymbol();
    if (!(CANDLE_INTERVALS as readonly string[]).includes(interval)) {
      throw new ApiError('INVALID_CHANNEL', `Candle interval must be one of ${CANDLE_INTERVALS.join(', ')}.`, { channel: f.channel, interval });
    }
    return `candles:${s}:${interval}`;
  }
  if ((name === 'orders' || name === 'portfolio') && parts.length === 1) return name;
  if (name === 'battle') {
    const id = (parts[1] ?? f.battle_id ?? '').trim().toLowerCase();
    if (!UUID.test(id)) throw new ApiError('INVALID_CHANNEL', "Channel 'battle' needs a battle_id (a UUID).", { channel: f.channel });
    return `battle:${id}`;
  }
  throw new ApiError('INVALID_CHANNEL', `Unknown channel '${f.channel}'. Valid channels: ${CHANNELS.join(', ')}.`, { channel: f.channel });
}

/**
 * Subscriptions and pushes. Topics are internal names (`ticker:BTCUSDT`, `orders:<agent id>`); a push is
 * built once per topic and written to each subscriber. A socket that cannot keep up is closed by uWS when
 * its outbound buffer passes the limit (closeOnBackpressureLimit), so nothing is buffered without bound.
 */
export class Channels {
  private readonly topics = new Map<string, Set<Sock>>();
  private readonly lastCandle = new Map<string, Candle>();
  private readonly stops: Array<() => void> = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly outbox = new Map<Sock, string[]>();
  private flushing = false;
  dropped = 0;

  constructor(private readonly engine: Engine) {}

  start(portfolio_interval_ms: number): void {
    this.stops.push(this.engine.market.onTick((t) => this.onTick(t)));
    this.stops.push(this.engine.trading.onEvents((agentId, events) => this.onWalletEvents(agentId, events)));
    // Seed frames: {"channel":"battle","type":"battle:update|battle:trade|battle:status","data":{…}}, plus the battle id.
    this.stops.push(this.engine.battles.onEvent((e) => this.publish(`battle:${e.battle_id}`, () => JSON.stringify({ channel: 'battle', type: e.type, battle_id: e.battle_id, data: e.data }))));
    this.timer = setInterval(() => void this.pushPortfolios(), portfolio_interval_ms);
    this.timer.unref();
  }

  stop(): void {
    for (const s of this.stops.splice(0)) s();
    if (this.timer) clearInterval(this.timer);
  }

  /** The internal topics a channel key covers for this caller (orders and portfolio are per agent). */
  async topicsFor(key: string, p: Principal): Promise<string[]> {
    // Only the battle's owner account (any of its keys) may watch it: 404 BATTLE_NOT_FOUND / 403 PERMISSION_DENIED otherwise.
    if (key.startsWith('battle:')) {
      await this.engine.battles.assertOwner(p.account, key.slice('battle:'.length));
      return [key];
    }
    if (key !== 'orders' && key !== 'portfolio') return [key];
    const agents = p.agent ? [p.agent.id] : (await this.engine.identity.listAgents(p.account.id, { includeArchived: false, limit: LIMITS.agents_page_max, offset: 0 })).agents.map((a) => a.id);
    return agents.map((id) => `${key}:${id}`);
  }

  add(sock: Sock, key: string, topics: string[]): void {
    const conn = sock.getUserData();
    this.remove(sock, key);
    conn.subs.set(key, topics);
    for (const t of topics) {
      let set = this.topics.get(t);
      if (!set) this.topics.set(t, (set = new Set()));
      set.add(sock);
    }
  }

  remove(sock: Sock, key: string): void {
    const conn = sock.getUserData();
    for (const t of conn.subs.get(key) ?? []) {
      const set = this.topics.get(t);
      set?.delete(sock);
      if (set?.size === 0) {
        this.topics.delete(t);
        // Its last candle snapshot goes too: after a gap without subscribers it would be stale, and a later
        // push would send it as the "closed" candle with wrong OHLCV.
        this.lastCandle.delete(t);
      }
    }
    conn.subs.delete(key);
  }

  drop(sock: Sock): void {
    this.outbox.delete(sock);
    for (const key of [...sock.getUserData().subs.keys()]) this.remove(sock, key);
  }

  /** Writes one frame; a closed socket is skipped, a full one is closed by uWS (counted here). */
  send(sock: Sock, frame: string): void {
    if (sock.getUserData().closed) return;
    let frames = this.outbox.get(sock);
    if (!frames) this.outbox.set(sock, (frames = []));
    frames.push(frame);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flushAll());
    }
  }

  /**
   * Frames produced in one turn of the event loop (e.g. the acks of one group commit) leave corked: one write
   * per socket instead of one per frame.
   */
  private flushAll(): void {
    this.flushing = false;
    for (const sock of [...this.outbox.keys()]) this.flush(sock);
  }

  /** Writes a socket's queued frames now (also before closing it, so a final error frame is not lost). */
  flush(sock: Sock): void {
    const frames = this.outbox.get(sock);
    this.outbox.delete(sock);
    if (!frames || sock.getUserData().closed) return;
    sock.cork(() => {
      for (const f of frames) if (sock.send(f, false) === 2) this.dropped += 1;
    });
  }

  private publish(topic: string, frame: () => string, skip?: Set<Sock>): void {
    const set = this.topics.get(topic);
    if (!set) return;
    const text = frame();
    for (const s of set) if (!skip?.has(s)) this.send(s, text);
  }

  private onTick(t: Tick): void {
    const one = this.topics.get(`ticker:${t.symbol}`);
    if (one || this.topics.has('ticker:all')) {
      const data = { price: t.price, quantity: t.quantity, timestamp: new Date(t.time).toISOString(), is_buyer_maker: t.is_buyer_maker ?? false };
      const text = JSON.stringify({ type: 'ticker', channel: `ticker:${t.symbol}`, symbol: t.symbol, ...data, data });
      if (one) for (const s of one) this.send(s, text);
      this.publish('ticker:all', () => text, one);
    }
    for (const interval of CANDLE_INTERVALS) {
      const topic = `candles:${t.symbol}:${interval}`;
      if (this.topics.has(topic)) this.pushCandle(topic, t.symbol, interval);
    }
  }

  private pushCandle(topic: string, symbol: string, interval: CandleInterval): void {
    const now = this.engine.market.currentCandle(symbol, interval);
    if (!now) return;
    const prev = this.lastCandle.get(topic);
    const frame = (c: Candle, is_closed: boolean) => () => {
      const data = { time: c.time, open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume, is_closed };
      return JSON.stringify({ type: 'candle', channel: topic, symbol, interval, ...data, data });
    };
    if (prev && prev.time < now.time) this.publish(topic, frame(prev, true));
    this.lastCandle.set(topic, now);
    this.publish(topic, frame(now, false));
  }

  private onWalletEvents(agentId: string, events: WalletEvent[]): void {
    let filled = false;
    for (const e of events) {
      if (!('order' in e)) continue;
      filled ||= e.type === 'order.filled';
      this.publish(`orders:${agentId}`, () => {
        const o = orderOut(e.order);
        // Top level mirrors `data` for clients that read fields directly; the order's own type moves to order_type.
        return JSON.stringify({ ...o, order_type: o.type, type: 'order', channel: 'orders', event: e.type, agent_id: agentId, data: o });
      });
    }
    if (filled && this.topics.has(`portfolio:${agentId}`)) void this.pushPortfolio(agentId);
  }

  private async pushPortfolio(agentId: string): Promise<void> {
    const wallet = await this.engine.trading.wallet(agentId);
    const v = portfolioOf(wallet, (s) => this.engine.market.price(s)?.price);
    const data = {
      total_equity: v.total_equity, available_cash: v.available_cash, unrealized_pnl: v.unrealized_pnl, realized_pnl: v.realized_pnl,
      total_pnl: v.total_pnl, roi_pct: v.roi_pct, timestamp: new Date().toISOString(),
    };
    this.publish(`portfolio:${agentId}`, () => JSON.stringify({ type: 'portfolio', channel: 'portfolio', agent_id: agentId, ...data, data }));
  }

  private async pushPortfolios(): Promise<void> {
    for (const topic of [...this.topics.keys()]) {
      if (topic.startsWith('portfolio:')) await this.pushPortfolio(topic.slice('portfolio:'.length)).catch(() => {});
    }
  }
}
