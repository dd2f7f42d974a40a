import { randomUUID } from 'node:crypto';
import { ApiError } from '../schemas/errors.js';
import type { Db } from './store/db.js';
import type { Journal, JournalEvent } from './store/journal.js';
import { battleStream, parseStream } from './store/streams.js';
import type { Logger } from './log.js';
import type { MarketData, Tick } from './market/types.js';
import { TriggerIndex, scaled } from './market/trigger-index.js';
import { triggerDirection, type Decision, type MarketCtx, type PlaceInput } from './core/orders.js';
import { applyEvent, emptyWallet, type OrderRec, type WalletEvent, type WalletState } from './core/wallet.js';
import { IdFilter } from './core/id-filter.js';
import { startWallet, type WalletActor } from './machines/wallet.machine.js';
import type { IdentityService } from './identity/service.js';
import type { Account, Agent, Principal } from './identity/types.js';

const RATE_WINDOW_MS = 60_000;
/** A stale wallet (see Entry.stale) that reads or ticks find is re-read from its journal at most this often. */
const RECONCILE_RETRY_MS = 1000;

interface Entry {
  actor: WalletActor;
  accepted: number[];
  /** Settles once everything this wallet has handed to the journal so far is durable, or has failed. */
  durable: Promise<void>;
  /**
   * The wallet as its durable events leave it: what memory goes back to when a commit fails. Its client_ids map
   * is the live one: the ids of orders that failed to commit are taken out of it.
   */
  base: WalletState;
  /**
   * client_ids holds the wallet's newest client_order_ids only (Trading.recentIds to twice that); the older ones
   * are in this filter. A repeat of one of them is answered from the orders table.
   */
  older: IdFilter;
  /** client_order_ids committed since the map was last trimmed. */
  idsAdded: number;
  /**
   * A commit of this wallet failed. Memory shows what was durable before it, so reads keep answering while the
   * database is away; but a commit whose answer was lost may still have landed, so the journal is read again
   * before the wallet decides anything (a command waits for it; a tick skips the wallet and asks for it).
   */
  stale: boolean;
  reconciling: Promise<void> | null;
  /** When a read or a tick may next start a reconcile of a stale wallet. */
  retryAt: number;
}

/** Which wallet an agent's trading acts on: its own, or its battle wallet while it is in an active live battle. */
export interface WalletRoute {
  /** Journal stream of the wallet: the agent id, or `<battle id>:<agent id>`. */
  stream: string;
  battle_id: string | null;
  /** A paused battle participant may not place orders. */
  paused?: boolean;
}

export interface PlaceRequest {
  symbol: string;
  side: 'buy' | 'sell';
  type: OrderRec['type'];
  quantity: string;
  price: string | null;
  client_order_id: string | null;
}

/**
 * The actor registry for wallets: loads a wallet by replaying its journal stream, routes commands to it,
 * makes the resulting events durable (group commit) before anything is acknowledged, and fires resting
 * orders from the per-symbol trigger index on each tick.
 */
export class Trading {
  private readonly wallets = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly listeners = new Set<(agentId: string, events: WalletEvent[], battleId: string | null) => void>();
  private router: (agentId: string) => WalletRoute | null = () => null;
  readonly triggers = new TriggerIndex();

  constructor(
    private readonly db: Db,
    private readonly journal: Journal,
    private readonly market: MarketData,
    private readonly identity: IdentityService,
    private readonly feeRate: string,
    private readonly log: Logger,
    /** client_order_ids a wallet keeps in its map (see Entry.older). */
    private readonly recentIds = 1024,
  ) {
    journal.onFailure((lost) => this.lost(lost));
  }

  /** Loads every wallet with resting orders so that ticks can fire them, and starts listening to ticks. */
  async start(): Promise<void> {
    const rows = await this.db.query<{ agent_id: string; battle_id: string | null }>(`SELECT DISTINCT agent_id, battle_id FROM orders WHERE status = 'pending'`);
    for (const r of rows) await this.entry(r.battle_id ? battleStream(r.battle_id, r.agent_id) : r.agent_id);
    this.market.onTick((t) => this.onTick(t));
    this.log.info('trading.ready', { wallets_loaded: rows.length, resting_orders: this.triggers.size });
  }

  private entry(agentId: string): Promise<Entry> {
    const loaded = this.wallets.get(agentId);
    if (loaded) return Promise.resolve(loaded);
    let p = this.loading.get(agentId);
    if (!p) {
      p = this.load(agentId).finally(() => this.loading.delete(agentId));
      this.loading.set(agentId, p);
    }
    return p;
  }

  private async load(agentId: string): Promise<Entry> {
    const rows = await this.db.query<{ type: WalletEvent['type']; payload: WalletEvent }>(`SELECT type, payload FROM journal WHERE stream = $1 ORDER BY seq`, [agentId]);
    const wallet = emptyWallet(agentId);
    const actor = startWallet(wallet);
    actor.send({ type: 'events.apply', events: rows.map((r) => ({ ...r.payload, type: r.type }) as WalletEvent) });
    for (const o of Object.values(wallet.open)) this.index(agentId, o);
    const e: Entry = { actor, accepted: [], durable: Promise.resolve(), base: baseOf(wallet), older: new IdFilter(), idsAdded: 0, stale: false, reconciling: null, retryAt: 0 };
    this.trimIds(e);
    this.wallets.set(agentId, e);
    return e;
  }

  /** The wallet for a command: a stale one is first read again from its journal (503 while the database is away). */
  private async writable(stream: string): Promise<Entry> {
    const e = await this.entry(stream);
    if (e.stale) await this.reconcile(stream, e);
    return e;
  }

  /** Rebuilds a stale wallet, in place, from its journal stream (once at a time; nothing decides on it meanwhile). */
  private reconcile(stream: string, e: Entry): Promise<void> {
    e.reconciling ??= (async () => {
      const rows = await this.db.query<{ type: WalletEvent['type']; payload: WalletEvent }>(`SELECT type, payload FROM journal WHERE stream = $1 ORDER BY seq`, [stream]);
      if (!e.stale || this.wallets.get(stream) !== e) return;
      const fresh = emptyWallet(stream);
      for (const r of rows) applyEvent(fresh, { ...r.payload, type: r.type } as WalletEvent);
      const wallet = e.actor.getSnapshot().context.wallet;
      Object.assign(wallet, fresh);
      e.base = baseOf(wallet);
      e.older = new IdFilter();
      this.trimIds(e);
      e.stale = false;
      this.triggers.removeAgent(stream);
      for (const o of Object.values(wallet.open)) this.index(stream, o);
      this.log.info('trading.wallet_reconciled', { stream, events: rows.length });
      // Orders that prices crossed while the wallet was stale fire now, not on some later tick.
      for (const symbol of new Set(Object.values(wallet.open).map((o) => o.symbol))) {
        const last = this.market.price(symbol);
        if (last) this.fire(symbol, last.price);
      }
    })().finally(() => (e.reconciling = null));
    return e.reconciling;
  }

  /** Reads and ticks do not wait for a stale wallet; they start its reconcile, at most once a RECONCILE_RETRY_MS. */
  private reconcileSoon(stream: string, e: Entry): void {
    if (e.reconciling || Date.now() < e.retryAt) return;
    e.retryAt = Date.now() + RECONCILE_RETRY_MS;
    this.reconcile(stream, e).catch(() => {});
  }

  /** Drops a wallet from memory (after a reset, delete or failed commit); the next use replays the journal. */
  evict(agentId: string): void {
    this.wallets.get(agentId)?.actor.stop();
    this.wallets.delete(agentId);
    this.triggers.removeAgent(agentId);
  }

  /** Ids of the wallets in memory now (the ones periodic snapshots cover). */
  loadedAgents(): string[] {
    return [...this.wallets.keys()];
  }

  /** Battles route their participants' trading to battle wallets while a live battle runs. */
  setRouter(router: (agentId: string) => WalletRoute | null): void {
    this.router = router;
  }

  route(agentId: string): WalletRoute {
    return this.router(agentId) ?? { stream: agentId, battle_id: null };
  }

  /** The wallet an agent's trading acts on now (its battle wallet during a live battle). */
  async wallet(agentId: string): Promise<WalletState> {
    return this.walletOf(this.route(agentId).stream);
  }

  async walletOf(stream: string): Promise<WalletState> {
    const e = await this.entry(stream);
    if (e.stale) this.reconcileSoon(stream, e);
    return e.actor.getSnapshot().context.wallet;
  }

  /** Opens a wallet with a starting balance (a battle wallet); durable before it returns. */
  async openWallet(stream: string, amount: string, sessionId: string): Promise<WalletState> {
    await this.journal.append([{ stream, type: 'wallet.funded', payload: { type: 'wallet.funded', asset: 'USDT', amount, session_id: sessionId } }]);
    this.evict(stream);
    return this.walletOf(stream);
  }

  private index(agentId: string, o: OrderRec): void {
    if (o.price !== null) this.triggers.add(o.symbol, triggerDirection(o), { agent_id: agentId, order_id: o.order_id, level: scaled(o.price) });
  }

  private marketCtx(symbol: string, price: string): MarketCtx {
    return {
      pair: this.market.pair(symbol)!, price, volume24h: this.market.ticker(symbol)?.volume ?? '0', fee_rate: this.feeRate,
      now: new Date(), priceOf: (s) => this.market.price(s)?.price,
    };
  }

  /** Journals a decision's events; on failure the wallet goes back to what is durable and the caller gets 503. */
  private async persist(stream: string, d: Decision & { ok: true }): Promise<void> {
    for (const e of d.events) {
      if (e.type === 'order.placed') this.index(stream, e.order);
      else if ('order' in e) this.triggers.remove(e.order.order_id);
    }
    const commit = this.journal.append(d.events.map((e) => ({ stream, type: e.type, payload: e })));
    // Commits are in append order, so waiting for this one waits for every earlier event of the wallet too.
    const entry = this.wallets.get(stream);
    if (entry) entry.durable = commit.catch(() => {});
    try {
      await commit;
    } catch (err) {
      // The wallet has already gone back (see lost()), before anything else could act on it.
      this.log.error('journal.append_failed', { stream, err: err as Error });
      // Not "not accepted": when the connection died after the database had the commit, it may have landed.
      throw new ApiError('SERVICE_UNAVAILABLE', 'Storage is unavailable: not acknowledged. A retry with the same client_order_id answers the order if it was recorded after all.');
    }
    // Commits succeed in append order and each continuation runs in that order: `base` takes the events in order.
    if (entry && this.wallets.get(stream) === entry) {
      for (const e of d.events) {
        applyEvent(entry.base, e);
        if ('order' in e && e.order.client_order_id) entry.idsAdded++;
      }
      if (entry.idsAdded >= this.recentIds) this.trimIds(entry);
    }
    const { agent_id, battle_id } = parseStream(stream);
    for (const l of this.listeners) {
      try {
        l(agent_id, d.events, battle_id);
      } catch (err) {
        this.log.error('trading.listener_failed', { stream, err: err as Error });
      }
    }
  }

  /**
   * A commit failed, and with it every later event of its streams queued behind it (called by the journal before
   * any caller hears of it). Each wallet it touched goes back, in memory and in place, to what was durable, and
   * is stale until its journal has been read again.
   */
  private lost(events: readonly JournalEvent[]): void {
    const byStream = new Map<string, WalletEvent[]>();
    for (const e of events) byStream.set(e.stream, [...(byStream.get(e.stream) ?? []), e.payload as WalletEvent]);
    for (const [stream, lost] of byStream) {
      const entry = this.wallets.get(stream);
      if (!entry) continue;
      const wallet = entry.actor.getSnapshot().context.wallet;
      const ids = entry.base.client_ids;
      Object.assign(wallet, structuredClone({ ...entry.base, client_ids: {} }), { client_ids: ids });
      // An order resting in the durable state keeps its id (a failed cancel or fill of it); any other order of the
      // lost events never existed as far as memory knows (a placement, or a market order filled at once).
      for (const e of lost) if ('order' in e && e.order.client_order_id && !entry.base.open[e.order.order_id]) delete ids[e.order.client_order_id];
      entry.stale = true;
      this.triggers.removeAgent(stream);
      for (const o of Object.values(wallet.open)) this.index(stream, o);
    }
  }

  /**
   * Moves all but the newest `recentIds` client_order_ids of a wallet from its map into its filter. The map is
   * rebuilt rather than shrunk, and stays shared by the live wallet and its base. (Keys that look like array
   * indexes iterate first, whatever their age, so they leave the map first: slower to repeat, still correct.)
   */
  private trimIds(e: Entry): void {
    e.idsAdded = 0;
    const ids = e.base.client_ids;
    const keys = Object.keys(ids);
    if (keys.length <= this.recentIds) return;
    const cut = keys.length - this.recentIds;
    const kept: Record<string, string> = {};
    for (let i = 0; i < keys.length; i++) {
      if (i < cut) e.older.add(keys[i]);
      else kept[keys[i]] = ids[keys[i]];
    }
    e.base.client_ids = kept;
    e.actor.getSnapshot().context.wallet.client_ids = kept;
  }

  /** The order a client_order_id names on a wallet, from the orders table (for ids no longer in memory). */
  private async storedOrderId(route: WalletRoute, clientOrderId: string): Promise<string | undefined> {
    const rows = await this.db.query<{ id: string }>(
      `SELECT id FROM orders WHERE agent_id = $1 AND client_order_id = $2
         AND COALESCE(battle_id, '00000000-0000-0000-0000-000000000000'::uuid) = COALESCE($3::uuid, '00000000-0000-0000-0000-000000000000'::uuid)`,
      [parseStream(route.stream).agent_id, clientOrderId, route.battle_id],
    );
    return rows[0]?.id;
  }

  /** Listens to wallet events once they are durable (order updates and fills for subscribers). */
  onEvents(listener: (agentId: string, events: WalletEvent[], battleId: string | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private tradingAgent(p: Principal): Agent {
    const agent = p.agent;
    if (!agent) throw new ApiError('VALIDATION_ERROR', 'Trading needs an agent: use an agent key, or send X-Agent-Id.', { field: 'X-Agent-Id' });
    if (agent.status === 'archived') throw new ApiError('AGENT_INVALID_STATE', 'An archived agent cannot trade.', { agent_id: agent.id });
    if (agent.mode !== 'sandbox') throw new ApiError('AGENT_SUSPENDED', `Agent is ${agent.mode}.`, { agent_id: agent.id });
    return agent;
  }

  /** `checkOlder` is false once the orders table, asked after the wallet was durable, did not have the client_order_id. */
  async place(p: Principal, req: PlaceRequest, checkOlder = true): Promise<OrderRec> {
    const agent = this.tradingAgent(p);
    if (agent.agent_type !== 'trading' && agent.agent_type !== 'composite') {
      throw new ApiError('PERMISSION_DENIED', `A ${agent.agent_type} agent cannot place orders.`, { agent_type: agent.agent_type });
    }
    const pair = this.market.pair(req.symbol);
    if (!pair || pair.status !== 'active') throw new ApiError('INVALID_SYMBOL', `Trading pair '${req.symbol}' is not available.`, { symbol: req.symbol });
    if (agent.authorized_instruments && !agent.authorized_instruments.includes(req.symbol)) {
      throw new ApiError('PERMISSION_DENIED', `This agent may not trade ${req.symbol}.`, { symbol: req.symbol, authorized_instruments: agent.authorized_instruments });
    }
    const route = this.route(agent.id);
    if (route.paused) throw new ApiError('BATTLE_INVALID_STATE', 'This agent is paused in its battle; its orders are refused until it is resumed.', { battle_id: route.battle_id });
    const e = await this.writable(route.stream);
    const wallet = e.actor.getSnapshot().context.wallet;
    const cid = req.client_order_id;
    if (cid && (wallet.client_ids[cid] || (checkOlder && e.older.has(cid)))) {
      // The first request's order may still be on its way to the journal: answer only once it is durable. If its
      // commit failed, the wallet went back without it (or was evicted): decide afresh, from the journal.
      await e.durable;
      if (this.wallets.get(route.stream) !== e) return this.place(p, req);
      // An older id (or one trimmed meanwhile) may be a false positive of the filter: the orders table settles it.
      const first = wallet.client_ids[cid] ?? (e.older.has(cid) ? await this.storedOrderId(route, cid) : undefined);
      // Placed afresh; the map is checked again there, in the same step as placing, so two such requests at once
      // make one order.
      if (!first) return this.place(p, req, false);
      return this.getOrder(p, first);
    }
    const price = this.market.price(req.symbol);
    if (!price) throw new ApiError('PRICE_NOT_AVAILABLE', `No price for ${req.symbol} yet.`, { symbol: req.symbol });
    const now = Date.now();
    while (e.accepted.length > 0 && e.accepted[0] <= now - RATE_WINDOW_MS) e.accepted.shift();
    const input: PlaceInput = { ...req, order_id: randomUUID(), trade_id: randomUUID() };
    let decision: Decision | undefined;
    e.actor.send({
      type: 'order.place', input, market: this.marketCtx(req.symbol, price.price), risk: this.identity.effectiveRisk(p.account, agent),
      recent: e.accepted.length, reply: (d) => (decision = d),
    });
    if (!decision!.ok) throw new ApiError(decision!.code, decision!.message, decision!.details);
    e.accepted.push(now);
    await this.persist(route.stream, decision!);
    return decision!.order;
  }

  async cancel(p: Principal, orderId: string): Promise<OrderRec> {
    const stream = this.route(this.tradingAgent(p).id).stream;
    const e = await this.writable(stream);
    let decision: Decision | undefined;
    e.actor.send({ type: 'order.cancel', order_id: orderId, now: new Date(), reply: (d) => (decision = d) });
    if (!decision!.ok) {
      const existing = await this.getOrder(p, orderId); // 404 when it is not this agent's order
      throw new ApiError('ORDER_NOT_CANCELLABLE', `Order is ${existing.status}.`, { order_id: orderId, current_status: existing.status });
    }
    await this.persist(stream, decision!);
    return decision!.order;
  }

  cancelAll(p: Principal): Promise<OrderRec[]> {
    return this.cancelAllOf(this.route(this.tradingAgent(p).id).stream);
  }

  /** Cancels every resting order of a wallet, releasing the holds; returns the cancelled orders. */
  async cancelAllOf(stream: string): Promise<OrderRec[]> {
    const e = await this.writable(stream);
    const out: OrderRec[] = [];
    for (const id of Object.keys(e.actor.getSnapshot().context.wallet.open)) {
      let decision: Decision | undefined;
      e.actor.send({ type: 'order.cancel', order_id: id, now: new Date(), reply: (d) => (decision = d) });
      if (decision?.ok) {
        await this.persist(stream, decision);
        out.push(decision.order);
      }
    }
    return out;
  }

  /**
   * Starts an agent over: cancels its resting orders, sells its positions at market (recorded as trades, so
   * history keeps the session's real outcome), then opens a new session with the starting balance.
   * A position without a price cannot be sold; the new session drops it without a trade.
   */
  async reset(account: Account, agentId: string, startingBalance?: string) {
    const agent = await this.identity.ownedAgent(account, agentId);
    if (agent.status === 'archived') throw new ApiError('AGENT_INVALID_STATE', 'An archived agent cannot be reset.', { agent_id: agentId });
    await this.cancelAllOf(agentId);
    const e = await this.writable(agentId);
    const closed: OrderRec[] = [];
    for (const symbol of Object.keys(e.actor.getSnapshot().context.wallet.positions)) {
      const price = this.market.price(symbol);
      if (!price || !this.market.pair(symbol)) continue;
      let decision: Decision | null = null;
      e.actor.send({
        type: 'position.close', symbol, order_id: randomUUID(), trade_id: randomUUID(), market: this.marketCtx(symbol, price.price),
        reply: (d) => (decision = d),
      });
      const d = decision as Decision | null;
      if (d?.ok) {
        await this.persist(agentId, d);
        closed.push(d.order);
      }
    }
    // The reset event is written beside the group commit: everything this wallet queued before must land first.
    await e.durable;
    const out = await this.identity.resetAgent(account, agentId, startingBalance);
    this.evict(agentId);
    return { ...out, closed };
  }

  async getOrder(p: Principal, orderId: string): Promise<OrderRec> {
    const agent = p.agent;
    const route = agent ? this.route(agent.id) : null;
    if (route) {
      const open = this.wallets.get(route.stream)?.actor.getSnapshot().context.wallet.open[orderId];
      if (open) return open;
    }
    // An agent sees the orders of the wallet it trades on now; the account sees all of its agents' orders.
    const rows = await this.db.query<OrderRow>(
      `SELECT o.* FROM orders o JOIN agents a ON a.id = o.agent_id WHERE o.id = $1 AND a.account_id = $2
         AND ($3::uuid IS NULL OR (o.agent_id = $3 AND o.battle_id IS NOT DISTINCT FROM $4::uuid))`,
      [orderId, p.account.id, agent?.id ?? null, route?.battle_id ?? null],
    );
    if (!rows[0]) throw new ApiError('ORDER_NOT_FOUND', `Order ${orderId} not found.`, { order_id: orderId });
    return fromRow(rows[0]);
  }

  private onTick(t: Tick): void {
    this.fire(t.symbol, t.price);
  }

  /** Fires the resting orders a price crosses. */
  private fire(symbol: string, price: string): void {
    for (const hit of this.triggers.cross(symbol, price)) {
      const e = this.wallets.get(hit.agent_id);
      if (!e) continue;
      if (e.stale) {
        // Not decided on a wallet that may lack a commit: the order goes back into the index and fires once the
        // journal has been read again (see reconcile).
        const o = e.actor.getSnapshot().context.wallet.open[hit.order_id];
        if (o) this.index(hit.agent_id, o);
        this.reconcileSoon(hit.agent_id, e);
        continue;
      }
      e.actor.send({
        type: 'order.trigger', order_id: hit.order_id, trade_id: randomUUID(), market: this.marketCtx(symbol, price),
        reply: (d) => {
          if (d?.ok) this.persist(hit.agent_id, d).catch(() => {});
        },
      });
    }
  }
}

export interface OrderRow {
  id: string; client_order_id: string | null; symbol: string; side: 'buy' | 'sell'; type: OrderRec['type']; quantity: string;
  price: string | null; status: OrderRec['status']; locked_amount: string | null; executed_price: string | null; executed_qty: string | null;
  slippage_pct: string | null; fee: string | null; reject_reason: string | null; created_at: Date; filled_at: Date | null; cancelled_at: Date | null;
}

export function fromRow(r: OrderRow): OrderRec {
  const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
  return {
    order_id: r.id, client_order_id: r.client_order_id, symbol: r.symbol, side: r.side, type: r.type, quantity: r.quantity, price: r.price,
    status: r.status, locked_amount: r.locked_amount, lock_asset: null, executed_price: r.executed_price, executed_qty: r.executed_qty,
    slippage_pct: r.slippage_pct, fee: r.fee, total_cost: null, realized_pnl: null, reject_reason: r.reject_reason,
    created_at: iso(r.created_at)!, filled_at: iso(r.filled_at), cancelled_at: iso(r.cancelled_at),
  };
}

/** A copy of a wallet for Entry.base: everything cloned except client_ids, which stays shared. */
function baseOf(wallet: WalletState): WalletState {
  return { ...structuredClone({ ...wallet, client_ids: {} }), client_ids: wallet.client_ids };
}
