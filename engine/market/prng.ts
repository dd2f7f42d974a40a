/**
 * Small seeded PRNGs, so synthetic prices and the simulated order book are reproducible
 * (Math.random is never used for market data). The numbers here are random draws, never money.
 */

/** mulberry32: 32-bit state, good enough for simulation, tiny and fast. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** FNV-1a over a string: turns a seed text (or a price) into a 32-bit PRNG seed. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A uniform integer in [min, max] from a 32-bit draw (modulo bias is irrelevant at these ranges). */
export const intIn = (draw: number, min: number, max: number): number => min + (draw % (max - min + 1));
