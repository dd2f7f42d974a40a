import { createActor, setup, type ActorRefFrom } from 'xstate';
import { applyEvent, type WalletEvent, type WalletState } from '../core/wallet.js';
import { closePosition, fill, placeOrder, release, triggers, type Decision, type MarketCtx, type PlaceInput } from '../core/orders.js';
import type { RiskProfile } from '../core/risk-profile.js';

/**
 * One actor per agent wallet. Commands are processed one at a time; each runs a pure rule from
 * engine/core, applies the resulting events to the wallet and hands the decision to `reply` (the caller
 * then makes the events durable before acknowledging). The wallet object is updated in place: copying
 * it on every command would cost more than the rules themselves.
 */
export type WalletCommand =
  | { type: 'order.place'; input: PlaceInput; market: MarketCtx; risk: RiskProfile; recent: number; reply: (d: Decision) => void }
  | { type: 'order.cancel'; order_id: string; now: Date; reply: (d: Decision) => void }
  | { type: 'order.trigger'; order_id: string; trade_id: string; market: MarketCtx; reply: (d: Decision | null) => void }
  | { type: 'position.close'; symbol: string; order_id: string; trade_id: string; market: MarketCtx; reply: (d: Decision | null) => void }
  | { type: 'events.apply'; events: WalletEvent[] };

const commit = (wallet: WalletState, d: Decision) => {
  if (d.ok) for (const e of d.events) applyEvent(wallet, e);
  return d;
};

export const walletMachine = setup({
  types: {
    context: {} as { wallet: WalletState },
    input: {} as { wallet: WalletState },
    events: {} as WalletCommand,
  },
  actions: {
    place: ({ context, event }) => {
      if (event.type !== 'order.place') return;
      event.reply(commit(context.wallet, placeOrder(context.wallet, event.input, event.market, event.risk, event.recent)));
    },
    cancel: ({ context, event }) => {
      if (event.type !== 'order.cancel') return;
      const order = context.wallet.open[event.order_id];
      if (!order) return event.reply({ ok: false, code: 'ORDER_NOT_CANCELLABLE', message: 'Order is not open.', details: { order_id: event.order_id } });
      const e = release(context.wallet, order, event.now, 'cancelled');
      event.reply(commit(context.wallet, { ok: true, events: [e], order: e.order }));
    },
    trigger: ({ context, event }) => {
      if (event.type !== 'order.trigger') return;
      const order = context.wallet.open[event.order_id];
      if (!order || !triggers(order, event.market.price)) return event.reply(null);
      const d = fill(context.wallet, order, event.market, event.trade_id);
      if (d.ok) return event.reply(commit(context.wallet, d));
      const e = release(context.wallet, order, event.market.now, 'rejected', d.code.toLowerCase());
      event.reply(commit(context.wallet, { ok: true, events: [e], order: e.order }));
    },
    close: ({ context, event }) => {
      if (event.type !== 'position.close') return;
      const d = closePosition(context.wallet, event.symbol, event.market, event);
      event.reply(d && commit(context.wallet, d));
    },
    replay: ({ context, event }) => {
      if (event.type !== 'events.apply') return;
      for (const e of event.events) applyEvent(context.wallet, e);
    },
  },
}).createMachine({
  id: 'wallet',
  context: ({ input }) => ({ wallet: input.wallet }),
  initial: 'open',
  states: {
    open: {
      on: {
        'order.place': { actions: 'place' },
        'order.cancel': { actions: 'cancel' },
        'order.trigger': { actions: 'trigger' },
        'position.close': { actions: 'close' },
        'events.apply': { actions: 'replay' },
      },
    },
  },
});

export type WalletActor = ActorRefFrom<typeof walletMachine>;

export function startWallet(wallet: WalletState): WalletActor {
  return createActor(walletMachine, { input: { wallet } }).start();
}
