import t from 'tap';
import { fmt, money, parseAmount, SCALE } from '../../../engine/core/money.js';

t.test('parseAmount accepts plain decimals with at most 20 integer digits and 8 decimals', async (t) => {
  const cases: Array<[input: unknown, formatted: string]> = [
    ['10000', '10000.00000000'],
    ['0.00000001', '0.00000001'],
    [' 5.5 ', '5.50000000'],
    ['\t42\n', '42.00000000'],
    ['0', '0.00000000'],
    ['0.5', '0.50000000'],
    ['12345678901234567890', '12345678901234567890.00000000'],
    ['12345678901234567890.12345678', '12345678901234567890.12345678'],
    [25000, '25000.00000000'],
    [0.25, '0.25000000'],
    [0, '0.00000000'],
  ];
  for (const [input, formatted] of cases) {
    const r = parseAmount(input);
    t.ok(r.ok, `accepts ${JSON.stringify(input)}`);
    if (r.ok) t.equal(fmt(r.value), formatted, `${JSON.stringify(input)} is ${formatted}`);
  }
});

t.test('parseAmount refuses exponents, signs, NaN, Infinity, too many digits and non-strings', async (t) => {
  const cases: Array<[label: string, input: unknown]> = [
    ['exponent', '1e5'],
    ['upper-case exponent', '1E5'],
    ['negative', '-1'],
    ['explicit plus', '+1'],
    ['NaN string', 'NaN'],
    ['Infinity string', 'Infinity'],
    ['-Infinity string', '-Infinity'],
    ['9 decimal places', '1.123456789'],
    ['empty', ''],
    ['blank', '   '],
    ['hex', '0x10'],
    ['binary', '0b1'],
    ['21-digit integer', '123456789012345678901'],
    ['leading zero', '01'],
    ['trailing dot', '1.'],
    ['leading dot', '.5'],
    ['thousands separator', '1,000'],
    ['two dots', '1.2.3'],
    ['inner space', '1 000'],
    ['NaN number', NaN],
    ['Infinity number', Infinity],
    ['-Infinity number', -Infinity],
    ['negative number', -1],
    ['number printed with exponent', 1e21],
    ['tiny number printed with exponent', 1e-7],
    ['number with too many decimals', 0.1 + 0.2],
    ['null', null],
    ['undefined', undefined],
    ['boolean', true],
    ['object', { value: '1' }],
    ['array', ['1']],
    ['bigint', 10n],
  ];
  for (const [label, input] of cases) {
    const r = parseAmount(input);
    t.equal(r.ok, false, `refuses ${label}`);
    if (!r.ok) t.type(r.reason, 'string', `${label} has a reason`);
  }
});

t.test('fmt always writes 8 decimal places, rounds half-up and never uses exponent notation', async (t) => {
  t.equal(SCALE, 8);
  const cases: Array<[input: string | number, out: string]> = [
    ['1', '1.00000000'],
    [0, '0.00000000'],
    ['0.000000005', '0.00000001'],
    ['0.0000000049999', '0.00000000'],
    ['0.000000015', '0.00000002'],
    ['2.999999995', '3.00000000'],
    ['1.123456785', '1.12345679'],
    ['1.123456784', '1.12345678'],
    ['-0.000000005', '-0.00000001'],
    ['-1.5', '-1.50000000'],
    ['0.00000001', '0.00000001'],
    [1e-8, '0.00000001'],
    ['1e-20', '0.00000000'],
    ['123456789012345678.12345678', '123456789012345678.12345678'],
    ['1e30', '1000000000000000000000000000000.00000000'],
    [1e21, '1000000000000000000000.00000000'],
    ['10000.5', '10000.50000000'],
  ];
  for (const [input, out] of cases) {
    const s = fmt(input);
    t.equal(s, out, `fmt(${JSON.stringify(input)})`);
    t.notMatch(s, /e/i, `fmt(${JSON.stringify(input)}) has no exponent`);
    t.match(s, /^-?\d+\.\d{8}$/, `fmt(${JSON.stringify(input)}) has 8 decimals`);
  }
});

t.test('fmt never writes a negative zero', async (t) => {
  for (const input of ['-0', '-0.000000001', '-0.0000000049', -0]) {
    t.equal(fmt(input), '0.00000000', `fmt(${JSON.stringify(input)})`);
  }
});

t.test('money arithmetic is exact decimal, not binary floating point', async (t) => {
  t.equal(fmt(money('0.1').plus('0.2')), '0.30000000');
  t.ok(money('0.1').plus('0.2').eq('0.3'));
  t.equal(money('12345678901234567890.12345678').plus('0.00000001').toFixed(8), '12345678901234567890.12345679');
});
