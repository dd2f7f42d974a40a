import { Decimal } from 'decimal.js';

/**
 * The one module that owns decimal arithmetic. Money and quantities are Decimal inside the engine and
 * strings with exactly 8 decimal places on the wire (never exponent notation, never a JS number).
 */
export const Money = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP, toExpNeg: -40, toExpPos: 40 });
export type Money = Decimal;

export const SCALE = 8;
const PLAIN = /^(?:0|[1-9]\d{0,19})(?:\.\d{1,8})?$/;

export type ParseResult = { ok: true; value: Decimal } | { ok: false; reason: string };

/**
 * Parses a client-supplied amount: a plain decimal string (or a JSON number written the same way)
 * with at most 20 integer digits and 8 decimals. Exponents, signs, NaN and Infinity are refused.
 */
export function parseAmount(input: unknown): ParseResult {
  let s: string;
  if (typeof input === 'string') s = input.trim();
  else if (typeof input === 'number' && Number.isFinite(input)) s = String(input);
  else return { ok: false, reason: 'must be a decimal string such as "10000.00"' };
  if (!PLAIN.test(s)) return { ok: false, reason: 'must be a plain decimal with at most 8 decimal places' };
  return { ok: true, value: new Money(s) };
}

export const money = (v: Decimal.Value): Decimal => new Money(v);

/** Fixed 8-decimal string, rounded half-up. */
export function fmt(d: Decimal.Value): string {
  const s = new Money(d).toFixed(SCALE, Decimal.ROUND_HALF_UP);
  // A negative amount that rounds to zero is zero, never "-0.00000000".
  return /^-0\.0+$/.test(s) ? s.slice(1) : s;
}
