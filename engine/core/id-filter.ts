/**
 * A scalable Bloom filter of strings: `has` answers "maybe added" or "surely not added", in about 3 bytes per
 * id whatever the id's length. A wallet keeps its recent client_order_ids in a map and only this filter for the
 * older ones, so memory does not grow by a map entry per order for the wallet's whole life; a "maybe" is settled
 * by the database (see engine/trading.ts).
 *
 * Segments double in capacity and halve their false-positive rate as they fill (Almeida et al., "Scalable
 * Bloom Filters", 2007), so the overall rate stays below `fp_rate` however many ids arrive. Bits are picked
 * by double hashing (Kirsch and Mitzenmacher) of two 32-bit FNV-1a hashes with a murmur3 finaliser.
 */
/** Each segment's false-positive rate is this fraction of the one before; the rates sum to at most `fp_rate`. */
const TIGHTEN = 0.8;

export class IdFilter {
  private readonly segments: Segment[] = [];

  constructor(
    private readonly first_capacity = 1024,
    private readonly fp_rate = 0.002,
  ) {}

  get size(): number {
    return this.segments.reduce((n, s) => n + s.count, 0);
  }

  /** Bytes of bit arrays held. */
  get bytes(): number {
    return this.segments.reduce((n, s) => n + s.bits.byteLength, 0);
  }

  add(id: string): void {
    let s = this.segments.at(-1);
    if (!s || s.count >= s.capacity) {
      const i = this.segments.length;
      s = segment(this.first_capacity * 2 ** i, this.fp_rate * (1 - TIGHTEN) * TIGHTEN ** i);
      this.segments.push(s);
    }
    const [h1, h2] = hashes(id);
    const m = s.bits.length * 32;
    for (let i = 0; i < s.k; i++) {
      const b = ((h1 + Math.imul(i, h2)) >>> 0) % m;
      s.bits[b >>> 5] |= 1 << (b & 31);
    }
    s.count++;
  }

  has(id: string): boolean {
    if (this.segments.length === 0) return false;
    const [h1, h2] = hashes(id);
    next: for (const s of this.segments) {
      const m = s.bits.length * 32;
      for (let i = 0; i < s.k; i++) {
        const b = ((h1 + Math.imul(i, h2)) >>> 0) % m;
        if ((s.bits[b >>> 5] & (1 << (b & 31))) === 0) continue next;
      }
      return true;
    }
    return false;
  }
}

interface Segment {
  bits: Uint32Array;
  k: number;
  capacity: number;
  count: number;
}

/** The optimal size and hash count for `capacity` ids at false-positive rate `p`. */
function segment(capacity: number, p: number): Segment {
  const m = Math.ceil((-capacity * Math.log(p)) / Math.LN2 ** 2);
  return { bits: new Uint32Array(Math.ceil(m / 32)), k: Math.max(1, Math.round((m / capacity) * Math.LN2)), capacity, count: 0 };
}

function fnv1a(s: string, basis: number): number {
  let h = basis;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Two independent 32-bit hashes of a string; the second is never 0, so the k positions differ. */
function hashes(s: string): [number, number] {
  return [fmix(fnv1a(s, 0x811c9dc5)), (fmix(fnv1a(s, 0x050c5d1f)) | 1) >>> 0];
}
