import { fmt, money } from '../core/money.js';
import { hash32, intIn, mulberry32 } from './prng.js';

/**
 * A plausible order book around the last price (the simulator has no real depth): level i sits
 * i basis points away, sizes come from a PRNG keyed by the price, so the same price shows the same book.
 */

export const DEPTH_LEVELS = [5, 10, 20] as const;
const LEVEL_STEP = '0.0001';

export function simulatedDepth(price: string, depth: number): { bids: [string, string][]; asks: [string, string][] } {
  const p = money(price);
  const rand = mulberry32(hash32(fmt(p)));
  // Sizes 0.1 to 10 base units, in steps of 0.001.
  const size = () => fmt(money(intIn(rand(), 100, 10_000)).div(1000));
  const bids: [string, string][] = [];
  const asks: [string, string][] = [];
  for (let i = 1; i <= depth; i++) {
    const off = p.times(LEVEL_STEP).times(i);
    bids.push([fmt(p.minus(off)), size()]);
    asks.push([fmt(p.plus(off)), size()]);
  }
  return { bids, asks };
}
