/**
 * Resting orders of every wallet, indexed per symbol and direction by their level (exact, as bigint
 * scaled by 1e8). A tick takes out exactly the orders it crosses, in level order, and touches nothing else.
 */
export interface TriggerEntry {
  agent_id: string;
  order_id: string;
  level: bigint;
}

const SCALE = 100_000_000n;

/** "123.45" → 12345000000n; at most 8 decimals (amounts are validated before they get here). */
export function scaled(price: string): bigint {
  const [int, frac = ''] = price.split('.');
  return BigInt(int) * SCALE + BigInt((frac + '00000000').slice(0, 8));
}

interface Side {
  /** Sorted ascending by level. */
  entries: TriggerEntry[];
}

export class TriggerIndex {
  private readonly down = new Map<string, Side>();
  private readonly up = new Map<string, Side>();
  private readonly where = new Map<string, { symbol: string; dir: 'down' | 'up' }>();

  get size(): number {
    return this.where.size;
  }

  add(symbol: string, dir: 'down' | 'up', entry: TriggerEntry): void {
    const book = dir === 'down' ? this.down : this.up;
    let side = book.get(symbol);
    if (!side) book.set(symbol, (side = { entries: [] }));
    const a = side.entries;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid].level <= entry.level) lo = mid + 1;
      else hi = mid;
    }
    a.splice(lo, 0, entry);
    this.where.set(entry.order_id, { symbol, dir });
  }

  remove(orderId: string): boolean {
    const w = this.where.get(orderId);
    if (!w) return false;
    this.where.delete(orderId);
    const side = (w.dir === 'down' ? this.down : this.up).get(w.symbol);
    if (side) {
      const i = side.entries.findIndex((e) => e.order_id === orderId);
      if (i >= 0) side.entries.splice(i, 1);
    }
    return true;
  }

  removeAgent(agentId: string): void {
    for (const book of [this.down, this.up]) {
      for (const side of book.values()) {
        for (let i = side.entries.length - 1; i >= 0; i--) {
          if (side.entries[i].agent_id === agentId) {
            this.where.delete(side.entries[i].order_id);
            side.entries.splice(i, 1);
          }
        }
      }
    }
  }

  /** Removes and returns every entry the price crosses: 'down' entries with level ≥ price, 'up' with level ≤ price. */
  cross(symbol: string, price: string): TriggerEntry[] {
    const p = scaled(price);
    const out: TriggerEntry[] = [];
    const down = this.down.get(symbol)?.entries;
    if (down && down.length > 0 && down[down.length - 1].level >= p) {
      let i = down.length;
      while (i > 0 && down[i - 1].level >= p) i--;
      out.push(...down.splice(i).reverse());
    }
    const up = this.up.get(symbol)?.entries;
    if (up && up.length > 0 && up[0].level <= p) {
      let i = 0;
      while (i < up.length && up[i].level <= p) i++;
      out.push(...up.splice(0, i));
    }
    for (const e of out) this.where.delete(e.order_id);
    return out;
  }
}
