import { LIMITS } from '../../schemas/limits.js';

/**
 * Risk limits: the agent's own values over the account's over these defaults, key by key.
 * Percentages and counts, not money, so they are plain numbers.
 */
export interface RiskProfile {
  max_position_size_pct: number;
  daily_loss_limit_pct: number;
  max_open_orders: number;
  max_order_size_pct: number;
  min_order_size_usd: number;
  order_rate_limit: number;
}

export const RISK_DEFAULTS: Readonly<RiskProfile> = Object.freeze({
  max_position_size_pct: 25,
  daily_loss_limit_pct: 20,
  max_open_orders: 50,
  max_order_size_pct: 50,
  min_order_size_usd: 1,
  order_rate_limit: 100,
});

/** Inclusive bounds of each key; integer keys must be whole numbers. */
export const RISK_BOUNDS: Readonly<Record<keyof RiskProfile, { min: number; max: number; integer: boolean }>> = {
  max_position_size_pct: { min: 1, max: LIMITS.risk_pct_max, integer: false },
  daily_loss_limit_pct: { min: 1, max: LIMITS.risk_pct_max, integer: false },
  max_open_orders: { min: 1, max: LIMITS.risk_open_orders_max, integer: true },
  max_order_size_pct: { min: 1, max: LIMITS.risk_pct_max, integer: false },
  min_order_size_usd: { min: 0, max: LIMITS.risk_min_order_usd_max, integer: false },
  order_rate_limit: { min: 1, max: LIMITS.risk_orders_per_minute_max, integer: true },
};

export type RiskCheck = { ok: true; value: Partial<RiskProfile> } | { ok: false; field: string; reason: string };

/** Validates a partial profile (numbers or numeric strings); unknown keys are refused. */
export function validateRiskProfile(input: Record<string, unknown>): RiskCheck {
  const out: Partial<RiskProfile> = {};
  for (const [key, raw] of Object.entries(input)) {
    if (!Object.hasOwn(RISK_BOUNDS, key)) return { ok: false, field: key, reason: `unknown risk limit; known: ${Object.keys(RISK_BOUNDS).join(', ')}` };
    const b = RISK_BOUNDS[key as keyof RiskProfile];
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isFinite(n)) return { ok: false, field: key, reason: 'must be a number' };
    if (b.integer && !Number.isInteger(n)) return { ok: false, field: key, reason: 'must be a whole number' };
    if (n < b.min || n > b.max) return { ok: false, field: key, reason: `must be between ${b.min} and ${b.max}` };
    out[key as keyof RiskProfile] = n;
  }
  return { ok: true, value: out };
}

export function effectiveRiskProfile(account: Partial<RiskProfile>, agent: Partial<RiskProfile> | null): RiskProfile {
  return { ...RISK_DEFAULTS, ...account, ...(agent ?? {}) };
}
