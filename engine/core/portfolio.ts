import { Decimal } from 'decimal.js';
import { fmt, money } from './money.js';
import { QUOTE } from './orders.js';
import type { WalletState } from './wallet.js';

/** Valuations of a wallet at given prices (an unpriced position is valued at its average entry price). */
export interface PositionView {
  symbol: string;
  asset: string;
  quantity: string;
  avg_entry_price: string;
  current_price: string;
  market_value: string;
  cost_basis: string;
  unrealized_pnl: string;
  unrealized_pnl_pct: string;
  realized_pnl: string;
  opened_at: string;
}

export interface PortfolioView {
  total_equity: string;
  available_cash: string;
  locked_cash: string;
  total_position_value: string;
  unrealized_pnl: string;
  realized_pnl: string;
  total_pnl: string;
  roi_pct: string;
  starting_balance: string;
  positions: PositionView[];
}

export function positionsOf(w: WalletState, priceOf: (symbol: string) => string | undefined): PositionView[] {
  return Object.values(w.positions)
    .sort((a, b) => a.symbol.localeCompare(b.symbol))
    .map((p) => {
      const price = money(priceOf(p.symbol) ?? p.avg_entry_price);
      const qty = money(p.quantity);
      const mv = qty.times(price);
      const basis = money(p.total_cost);
      const u = mv.minus(basis);
      return {
        symbol: p.symbol, asset: p.symbol.endsWith(QUOTE) ? p.symbol.slice(0, -QUOTE.length) : p.symbol, quantity: p.quantity,
        avg_entry_price: p.avg_entry_price, current_price: fmt(price), market_value: fmt(mv), cost_basis: fmt(basis),
        unrealized_pnl: fmt(u), unrealized_pnl_pct: fmt(basis.isZero() ? 0 : u.div(basis).times(100)), realized_pnl: p.realized_pnl, opened_at: p.opened_at,
      };
    });
}

export function portfolioOf(w: WalletState, priceOf: (symbol: string) => string | undefined): PortfolioView {
  const cash = w.balances[QUOTE] ?? { available: '0', locked: '0' };
  const positions = positionsOf(w, priceOf);
  const value = positions.reduce((s, p) => s.plus(p.market_value), money(0));
  const unrealized = positions.reduce((s, p) => s.plus(p.unrealized_pnl), money(0));
  const equity = money(cash.available).plus(cash.locked).plus(value);
  const start = money(w.starting_balance);
  const total = unrealized.plus(w.realized_total);
  return {
    total_equity: fmt(equity), available_cash: fmt(cash.available), locked_cash: fmt(cash.locked), total_position_value: fmt(value),
    unrealized_pnl: fmt(unrealized), realized_pnl: fmt(w.realized_total), total_pnl: fmt(total),
    roi_pct: fmt(start.isZero() ? 0 : equity.minus(start).div(start).times(100)), starting_balance: fmt(start), positions,
  };
}

/** Sums per-asset balances over several wallets (an account-level view). */
export function sumBalances(wallets: WalletState[]): Array<{ asset: string; available: string; locked: string; total: string }> {
  const acc = new Map<string, { a: Decimal; l: Decimal }>();
  for (const w of wallets) {
    for (const [asset, b] of Object.entries(w.balances)) {
      const cur = acc.get(asset) ?? { a: money(0), l: money(0) };
      acc.set(asset, { a: cur.a.plus(b.available), l: cur.l.plus(b.locked) });
    }
  }
  return [...acc.entries()]
    .filter(([asset, v]) => asset === QUOTE || !v.a.plus(v.l).isZero())
    .sort(([x], [y]) => (x === QUOTE ? -1 : y === QUOTE ? 1 : x.localeCompare(y)))
    .map(([asset, v]) => ({ asset, available: fmt(v.a), locked: fmt(v.l), total: fmt(v.a.plus(v.l)) }));
}
