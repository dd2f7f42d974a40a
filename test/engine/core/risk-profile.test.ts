import t from 'tap';
import { effectiveRiskProfile, RISK_BOUNDS, RISK_DEFAULTS, validateRiskProfile, type RiskProfile } from '../../../engine/core/risk-profile.js';

t.test('validateRiskProfile accepts values inside the inclusive bounds', async (t) => {
  const cases: Array<[key: string, raw: unknown, value: number]> = [
    ['max_open_orders', 1, 1],
    ['max_open_orders', 200, 200],
    ['max_open_orders', '50', 50],
    ['max_open_orders', ' 7 ', 7],
    ['max_open_orders', 10.0, 10],
    ['max_position_size_pct', 1, 1],
    ['max_position_size_pct', 100, 100],
    ['max_position_size_pct', 12.5, 12.5],
    ['max_position_size_pct', '33.3', 33.3],
    ['daily_loss_limit_pct', 1, 1],
    ['daily_loss_limit_pct', 100, 100],
    ['max_order_size_pct', 1, 1],
    ['max_order_size_pct', 100, 100],
    ['min_order_size_usd', 0, 0],
    ['min_order_size_usd', '0.5', 0.5],
    ['min_order_size_usd', 1_000_000, 1_000_000],
    ['order_rate_limit', 1, 1],
    ['order_rate_limit', 1_000_000, 1_000_000],
    ['order_rate_limit', '250', 250],
  ];
  for (const [key, raw, value] of cases) {
    const r = validateRiskProfile({ [key]: raw });
    t.same(r, { ok: true, value: { [key]: value } }, `${key} = ${JSON.stringify(raw)}`);
  }
});

t.test('validateRiskProfile refuses out-of-range, fractional, non-numeric and unknown keys, naming the field', async (t) => {
  const cases: Array<[key: string, raw: unknown, reason: RegExp]> = [
    ['max_open_orders', 0, /between 1 and 200/],
    ['max_open_orders', 201, /between 1 and 200/],
    ['max_open_orders', '201', /between 1 and 200/],
    ['max_open_orders', 1.5, /whole number/],
    ['max_open_orders', '2.5', /whole number/],
    ['order_rate_limit', 0, /between 1 and 1000000/],
    ['order_rate_limit', 1_000_001, /between 1 and 1000000/],
    ['order_rate_limit', 10.1, /whole number/],
    ['max_position_size_pct', 0.99, /between 1 and 100/],
    ['max_position_size_pct', 100.01, /between 1 and 100/],
    ['daily_loss_limit_pct', 0, /between 1 and 100/],
    ['daily_loss_limit_pct', 101, /between 1 and 100/],
    ['max_order_size_pct', 0, /between 1 and 100/],
    ['max_order_size_pct', 101, /between 1 and 100/],
    ['min_order_size_usd', -1, /between 0 and 1000000/],
    ['min_order_size_usd', 1_000_000.01, /between 0 and 1000000/],
    ['max_open_orders', 'ten', /number/],
    ['max_open_orders', '-5', /number/],
    ['max_open_orders', '1e2', /number/],
    ['max_open_orders', '', /number/],
    ['max_open_orders', NaN, /number/],
    ['max_open_orders', Infinity, /number/],
    ['max_open_orders', null, /number/],
    ['max_open_orders', true, /number/],
    ['max_open_orders', [5], /number/],
    ['max_open_orders', { n: 5 }, /number/],
    ['max_leverage', 5, /unknown risk limit/],
    ['MAX_OPEN_ORDERS', 5, /unknown risk limit/],
    ['toString', 5, /unknown risk limit/],
    ['constructor', 5, /unknown risk limit/],
    ['hasOwnProperty', 5, /unknown risk limit/],
    ['__proto__', 5, /unknown risk limit/],
  ];
  for (const [key, raw, reason] of cases) {
    // defineProperty so that "__proto__" is an own key, as JSON.parse makes it.
    const input: Record<string, unknown> = {};
    Object.defineProperty(input, key, { value: raw, enumerable: true, configurable: true, writable: true });
    const r = validateRiskProfile(input);
    t.equal(r.ok, false, `refuses ${key} = ${JSON.stringify(raw)}`);
    if (!r.ok) {
      t.equal(r.field, key, `${key}: names the field`);
      t.match(r.reason, reason, `${key} = ${JSON.stringify(raw)}: reason`);
    }
  }
});

t.test('validateRiskProfile: a parsed JSON body with "__proto__" is refused, not silently dropped', async (t) => {
  const r = validateRiskProfile(JSON.parse('{"max_open_orders": 5, "__proto__": {"max_open_orders": 999}}'));
  t.equal(r.ok, false);
  if (!r.ok) t.equal(r.field, '__proto__');
});

t.test('validateRiskProfile keeps every valid key of a multi-key profile and stops at the first bad one', async (t) => {
  t.same(validateRiskProfile({}), { ok: true, value: {} });
  t.same(validateRiskProfile({ max_open_orders: '10', daily_loss_limit_pct: 5 }), {
    ok: true,
    value: { max_open_orders: 10, daily_loss_limit_pct: 5 },
  });
  const bad = validateRiskProfile({ max_open_orders: 10, daily_loss_limit_pct: 500 });
  t.equal(bad.ok, false);
  if (!bad.ok) t.equal(bad.field, 'daily_loss_limit_pct');
});

t.test('every default lies inside its own bounds', async (t) => {
  t.same(Object.keys(RISK_DEFAULTS).sort(), Object.keys(RISK_BOUNDS).sort());
  t.same(validateRiskProfile({ ...RISK_DEFAULTS }), { ok: true, value: { ...RISK_DEFAULTS } });
});

t.test('effectiveRiskProfile layers agent over account over defaults, key by key', async (t) => {
  const cases: Array<[label: string, account: Partial<RiskProfile>, agent: Partial<RiskProfile> | null, expected: RiskProfile]> = [
    ['nothing set gives defaults', {}, null, { ...RISK_DEFAULTS }],
    ['empty agent profile gives defaults', {}, {}, { ...RISK_DEFAULTS }],
    ['account overrides a default', { max_open_orders: 10 }, null, { ...RISK_DEFAULTS, max_open_orders: 10 }],
    ['agent overrides a default', {}, { max_open_orders: 7 }, { ...RISK_DEFAULTS, max_open_orders: 7 }],
    ['agent overrides the account on the same key', { max_open_orders: 10 }, { max_open_orders: 7 }, { ...RISK_DEFAULTS, max_open_orders: 7 }],
    [
      'different keys combine from all three layers',
      { max_open_orders: 10, daily_loss_limit_pct: 5 },
      { daily_loss_limit_pct: 2, order_rate_limit: 30 },
      { ...RISK_DEFAULTS, max_open_orders: 10, daily_loss_limit_pct: 2, order_rate_limit: 30 },
    ],
    [
      'agent without a key keeps the account value',
      { max_position_size_pct: 40, min_order_size_usd: 5 },
      { max_position_size_pct: 15 },
      { ...RISK_DEFAULTS, max_position_size_pct: 15, min_order_size_usd: 5 },
    ],
  ];
  for (const [label, account, agent, expected] of cases) {
    t.same(effectiveRiskProfile(account, agent), expected, label);
  }
  t.equal(RISK_DEFAULTS.max_open_orders, 50, 'defaults are not modified by layering');
  t.ok(Object.isFrozen(RISK_DEFAULTS));
});
