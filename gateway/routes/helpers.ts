import { ApiError } from '../../schemas/errors.js';
import { LIMITS } from '../../schemas/limits.js';
import { fmt, parseAmount } from '../../engine/core/money.js';
import { validateRiskProfile, type RiskProfile } from '../../engine/core/risk-profile.js';
import type { Principal } from '../../engine/identity/types.js';

export const P = '/api/v1';

/** Non-null principal on routes whose auth mode guarantees one. */
export function caller(p: Principal | null): Principal {
  if (!p) throw new ApiError('INVALID_API_KEY', 'Authentication credentials are required.');
  return p;
}

/** A positive amount of at most 8 decimals, formatted with 8. */
export function positiveAmount(value: unknown, field: string, max: string = LIMITS.amount_max): string {
  const r = parseAmount(value);
  if (!r.ok) throw new ApiError('VALIDATION_ERROR', `${field} ${r.reason}.`, { field });
  if (r.value.lte(0)) throw new ApiError('VALIDATION_ERROR', `${field} must be greater than 0.`, { field });
  if (r.value.gt(max)) throw new ApiError('VALIDATION_ERROR', `${field} must be at most ${max}.`, { field });
  return fmt(r.value);
}

export function riskInput(input: Record<string, unknown>, field: string): Partial<RiskProfile> {
  const r = validateRiskProfile(input);
  if (!r.ok) throw new ApiError('VALIDATION_ERROR', `${field}.${r.field} ${r.reason}.`, { field: `${field}.${r.field}` });
  return r.value;
}

export const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());
