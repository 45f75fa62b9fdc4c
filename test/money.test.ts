import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AssertionError } from '../src/shared/assert.ts';
import {
  MAX_AMOUNT_MINOR,
  MoneyParseError,
  ROUNDING_MODES,
  add,
  sumByCurrency,
  allocate,
  currencyExponent,
  divideRound,
  formatMoney,
  money,
  mulDiv,
  negate,
  parseAmount,
  percentOf,
  subtract,
  sum,
  toDecimalString,
  type RoundingMode,
} from '../src/shared/money.ts';

type ByMode<T> = Record<RoundingMode, T>;

/** Expect an AssertionError whose message matches. */
function throwsAssertion(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AssertionError, `expected AssertionError, got ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
}

/** Expect a MoneyParseError whose message matches. */
function throwsParse(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MoneyParseError, `expected MoneyParseError, got ${String(e)}`);
    assert.equal(e.name, 'MoneyParseError');
    assert.match(e.message, message);
    return true;
  });
}

/* ------------------------------------------------------------------------------------ */
/* divideRound                                                                          */
/* ------------------------------------------------------------------------------------ */

const M = (half_up: number, half_even: number, half_down: number, up: number, down: number, ceiling: number, floor: number): ByMode<bigint> => ({
  half_up: BigInt(half_up), half_even: BigInt(half_even), half_down: BigInt(half_down),
  up: BigInt(up), down: BigInt(down), ceiling: BigInt(ceiling), floor: BigInt(floor),
});

//                                                 half_up half_even half_down up down ceiling floor
const DIVIDE_TABLE: readonly [bigint, bigint, ByMode<bigint>][] = [
  [5n, 2n, /*  2.5   */ M(3, 2, 2, 3, 2, 3, 2)],
  [-5n, 2n, /* -2.5  */ M(-3, -2, -2, -3, -2, -2, -3)],
  [5n, -2n, /* -2.5  */ M(-3, -2, -2, -3, -2, -2, -3)],
  [-5n, -2n, /* 2.5  */ M(3, 2, 2, 3, 2, 3, 2)],
  [7n, 2n, /*  3.5   */ M(4, 4, 3, 4, 3, 4, 3)],
  [-7n, 2n, /* -3.5  */ M(-4, -4, -3, -4, -3, -3, -4)],
  [7n, -2n, /* -3.5  */ M(-4, -4, -3, -4, -3, -3, -4)],
  [1n, 2n, /*  0.5   */ M(1, 0, 0, 1, 0, 1, 0)],
  [-1n, 2n, /* -0.5  */ M(-1, 0, 0, -1, 0, 0, -1)],
  [3n, 2n, /*  1.5   */ M(2, 2, 1, 2, 1, 2, 1)],
  [-3n, 2n, /* -1.5  */ M(-2, -2, -1, -2, -1, -1, -2)],
  [25n, 10n, /* 2.5  */ M(3, 2, 2, 3, 2, 3, 2)],
  [15n, -10n, /* -1.5 */ M(-2, -2, -1, -2, -1, -1, -2)],
  [1n, 3n, /*  0.333 */ M(0, 0, 0, 1, 0, 1, 0)],
  [-1n, 3n, /* -0.333 */ M(0, 0, 0, -1, 0, 0, -1)],
  [1n, -3n, /* -0.333 */ M(0, 0, 0, -1, 0, 0, -1)],
  [2n, 3n, /*  0.667 */ M(1, 1, 1, 1, 0, 1, 0)],
  [-2n, 3n, /* -0.667 */ M(-1, -1, -1, -1, 0, 0, -1)],
  [-2n, -3n, /* 0.667 */ M(1, 1, 1, 1, 0, 1, 0)],
  [5n, 4n, /*  1.25  */ M(1, 1, 1, 2, 1, 2, 1)],
  [11n, 4n, /* 2.75  */ M(3, 3, 3, 3, 2, 3, 2)],
  [-11n, 4n, /* -2.75 */ M(-3, -3, -3, -3, -2, -2, -3)],
  [6n, 3n, /*  2 exact */ M(2, 2, 2, 2, 2, 2, 2)],
  [-6n, 3n, /* -2 exact */ M(-2, -2, -2, -2, -2, -2, -2)],
  [6n, -3n, /* -2 exact */ M(-2, -2, -2, -2, -2, -2, -2)],
  [0n, 5n, /* 0 */ M(0, 0, 0, 0, 0, 0, 0)],
  [0n, -5n, /* 0 */ M(0, 0, 0, 0, 0, 0, 0)],
  [7n, 1n, /* 7 */ M(7, 7, 7, 7, 7, 7, 7)],
  [-7n, -1n, /* 7 */ M(7, 7, 7, 7, 7, 7, 7)],
];

test('divideRound table covers every rounding mode', () => {
  assert.deepEqual([...ROUNDING_MODES].sort(), ['ceiling', 'down', 'floor', 'half_down', 'half_even', 'half_up', 'up']);
  for (const [, , expected] of DIVIDE_TABLE) {
    assert.deepEqual(Object.keys(expected).sort(), [...ROUNDING_MODES].sort());
  }
});

for (const [n, d, expected] of DIVIDE_TABLE) {
  test(`divideRound(${n}, ${d}) in every mode`, () => {
    for (const mode of ROUNDING_MODES) {
      assert.equal(divideRound(n, d, mode), expected[mode], `divideRound(${n}, ${d}, '${mode}')`);
    }
  });
}

test('divideRound handles values far beyond the safe-integer range exactly', () => {
  const big = 10n ** 30n; // even
  // (10^31 + 5) / 10 = 10^30 + 0.5
  assert.equal(divideRound(big * 10n + 5n, 10n, 'half_up'), big + 1n);
  assert.equal(divideRound(big * 10n + 5n, 10n, 'half_even'), big);
  assert.equal(divideRound(big * 10n + 5n, 10n, 'half_down'), big);
  assert.equal(divideRound(-(big * 10n + 5n), 10n, 'half_up'), -(big + 1n));
  assert.equal(divideRound(-(big * 10n + 5n), 10n, 'floor'), -(big + 1n));
  assert.equal(divideRound(-(big * 10n + 5n), 10n, 'ceiling'), -big);
  // (10^31 + 15) / 10 = 10^30 + 1.5: half_even goes to the even neighbour above
  assert.equal(divideRound(big * 10n + 15n, 10n, 'half_even'), big + 2n);
});

test('divideRound refuses a zero denominator in every mode', () => {
  for (const mode of ROUNDING_MODES) {
    throwsAssertion(() => divideRound(1n, 0n, mode), /division by zero/);
    throwsAssertion(() => divideRound(0n, 0n, mode), /division by zero/);
  }
});

/** Independent reference: reduce to a positive denominator, take the floor, pick a neighbour. */
function referenceDivide(n: bigint, d: bigint, mode: RoundingMode): bigint {
  if (d < 0n) { n = -n; d = -d; }
  let f = n / d;
  if (n % d !== 0n && n < 0n) f -= 1n;
  const rem = n - f * d; // 0 <= rem < d
  if (rem === 0n) return f;
  const c = f + 1n;
  const positive = n > 0n;
  switch (mode) {
    case 'floor': return f;
    case 'ceiling': return c;
    case 'down': return positive ? f : c;
    case 'up': return positive ? c : f;
    default: {
      if (2n * rem < d) return f;
      if (2n * rem > d) return c;
      if (mode === 'half_up') return positive ? c : f;
      if (mode === 'half_down') return positive ? f : c;
      return f % 2n === 0n ? f : c;
    }
  }
}

test('property: divideRound agrees with an independent reference in every mode', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: -(10n ** 24n), max: 10n ** 24n }),
      fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }).filter((d) => d !== 0n),
      fc.constantFrom(...ROUNDING_MODES),
      (n, d, mode) => {
        assert.equal(divideRound(n, d, mode), referenceDivide(n, d, mode));
      },
    ),
    { numRuns: 2000 },
  );
  // small values hit exact halves often
  fc.assert(
    fc.property(
      fc.bigInt({ min: -40n, max: 40n }),
      fc.bigInt({ min: -8n, max: 8n }).filter((d) => d !== 0n),
      fc.constantFrom(...ROUNDING_MODES),
      (n, d, mode) => {
        assert.equal(divideRound(n, d, mode), referenceDivide(n, d, mode));
      },
    ),
    { numRuns: 2000 },
  );
});

test('property: divideRound is always within 1 of the exact quotient and exact when divisible', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: -(10n ** 18n), max: 10n ** 18n }),
      fc.bigInt({ min: -(10n ** 9n), max: 10n ** 9n }).filter((d) => d !== 0n),
      fc.constantFrom(...ROUNDING_MODES),
      (n, d, mode) => {
        const q = divideRound(n, d, mode);
        const diff = q * d - n; // |q - n/d| < 1  <=>  |q*d - n| < |d|
        const absD = d < 0n ? -d : d;
        assert.ok((diff < 0n ? -diff : diff) < absD, `divideRound(${n}, ${d}, ${mode}) = ${q}`);
        assert.equal(divideRound(n * d, d, mode), n);
      },
    ),
  );
});

/* ------------------------------------------------------------------------------------ */
/* mulDiv / percentOf                                                                   */
/* ------------------------------------------------------------------------------------ */

const MULDIV_TABLE: readonly { name: string; args: [number, number, number, RoundingMode]; expected: number }[] = [
  { name: '1.5 h (90 min) at $350.00/h', args: [35000, 90, 60, 'half_up'], expected: 52500 },
  { name: '0.1 h (6 min) at $333.33/h = 3333.3', args: [33333, 6, 60, 'half_up'], expected: 3333 },
  { name: '0.1 h as 1/10 at $333.33/h', args: [33333, 1, 10, 'half_up'], expected: 3333 },
  { name: '0.25 h (15 min) at $333.33/h = 8333.25', args: [33333, 15, 60, 'half_up'], expected: 8333 },
  { name: '20 min at $350.00/h = 11666.67', args: [35000, 20, 60, 'half_up'], expected: 11667 },
  { name: '20 min at $350.00/h, down', args: [35000, 20, 60, 'down'], expected: 11666 },
  { name: '7 min at $275.00/h = 3208.33', args: [27500, 7, 60, 'half_up'], expected: 3208 },
  { name: '7 min at $275.00/h, ceiling', args: [27500, 7, 60, 'ceiling'], expected: 3209 },
  { name: '6 min at $2.25/h = 22.5, half_up', args: [225, 6, 60, 'half_up'], expected: 23 },
  { name: '6 min at $2.25/h = 22.5, half_even', args: [225, 6, 60, 'half_even'], expected: 22 },
  { name: '6 min at $2.25/h = 22.5, half_down', args: [225, 6, 60, 'half_down'], expected: 22 },
  { name: '6 min at $2.25/h = 22.5, up', args: [225, 6, 60, 'up'], expected: 23 },
  { name: '6 min at $2.25/h = 22.5, down', args: [225, 6, 60, 'down'], expected: 22 },
  { name: '6 min at $2.25/h = 22.5, ceiling', args: [225, 6, 60, 'ceiling'], expected: 23 },
  { name: '6 min at $2.25/h = 22.5, floor', args: [225, 6, 60, 'floor'], expected: 22 },
  { name: 'credit -22.5, half_up (away from zero)', args: [-225, 6, 60, 'half_up'], expected: -23 },
  { name: 'credit -22.5, half_even', args: [-225, 6, 60, 'half_even'], expected: -22 },
  { name: 'credit -22.5, half_down', args: [-225, 6, 60, 'half_down'], expected: -22 },
  { name: 'credit -22.5, up', args: [-225, 6, 60, 'up'], expected: -23 },
  { name: 'credit -22.5, down', args: [-225, 6, 60, 'down'], expected: -22 },
  { name: 'credit -22.5, ceiling', args: [-225, 6, 60, 'ceiling'], expected: -22 },
  { name: 'credit -22.5, floor', args: [-225, 6, 60, 'floor'], expected: -23 },
  { name: 'negative denominator', args: [35000, 90, -60, 'half_up'], expected: -52500 },
  { name: 'zero amount', args: [0, 90, 60, 'up'], expected: 0 },
  { name: 'zero numerator', args: [35000, 0, 60, 'up'], expected: 0 },
  { name: 'intermediate product beyond 2^53 stays exact', args: [MAX_AMOUNT_MINOR, 3, 3, 'half_up'], expected: MAX_AMOUNT_MINOR },
  { name: 'large product rounded once (2/3 of the limit)', args: [MAX_AMOUNT_MINOR, 2, 3, 'half_up'], expected: 666_666_666_666_667 },
  { name: 'large product rounded once, down', args: [MAX_AMOUNT_MINOR, 2, 3, 'down'], expected: 666_666_666_666_666 },
];

for (const { name, args, expected } of MULDIV_TABLE) {
  test(`mulDiv: ${name}`, () => {
    assert.equal(mulDiv(...args), expected);
  });
}

test('mulDiv refuses non-integer inputs, a zero denominator and results over the limit', () => {
  throwsAssertion(() => mulDiv(100.5, 1, 1, 'half_up'), /amountMinor must be a safe integer/);
  throwsAssertion(() => mulDiv(100, 1.5, 1, 'half_up'), /numerator must be a safe integer/);
  throwsAssertion(() => mulDiv(100, 1, 0.5, 'half_up'), /denominator must be a safe integer/);
  throwsAssertion(() => mulDiv(100, Number.NaN, 1, 'half_up'), /numerator must be a safe integer/);
  throwsAssertion(() => mulDiv(100, 1, 0, 'half_up'), /division by zero/);
  throwsAssertion(() => mulDiv(MAX_AMOUNT_MINOR, 2, 1, 'half_up'), /exceeds the limit/);
  throwsAssertion(() => mulDiv(-MAX_AMOUNT_MINOR, 2, 1, 'half_up'), /exceeds the limit/);
  throwsAssertion(() => mulDiv(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 1, 'half_up'), /mulDiv must be a safe integer/);
});

test('property: mulDiv(a, k, k) === a and mulDiv matches divideRound of the exact product', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -MAX_AMOUNT_MINOR, max: MAX_AMOUNT_MINOR }),
      fc.integer({ min: 1, max: 1_000_000 }),
      fc.constantFrom(...ROUNDING_MODES),
      (a, k, mode) => {
        assert.equal(mulDiv(a, k, k, mode), a);
        const expected = Number(divideRound(BigInt(a), BigInt(k), mode));
        assert.equal(mulDiv(a, 1, k, mode), expected);
      },
    ),
  );
});

const PERCENT_TABLE: readonly { name: string; args: [number, number, RoundingMode]; expected: number }[] = [
  { name: '12.5% of $100.00', args: [10000, 1250, 'half_up'], expected: 1250 },
  { name: '100% is the identity', args: [123457, 10000, 'half_up'], expected: 123457 },
  { name: '0% is zero', args: [123457, 0, 'up'], expected: 0 },
  { name: '7.25% tax on $199.99 = 1449.9275', args: [19999, 725, 'half_up'], expected: 1450 },
  { name: '7.25% tax on $199.99, down', args: [19999, 725, 'down'], expected: 1449 },
  { name: '33.33% of $100.00', args: [10000, 3333, 'half_up'], expected: 3333 },
  { name: '10% of $0.05 = 0.5, half_up', args: [5, 1000, 'half_up'], expected: 1 },
  { name: '10% of $0.05 = 0.5, half_even', args: [5, 1000, 'half_even'], expected: 0 },
  { name: '10% of $0.15 = 1.5, half_even', args: [15, 1000, 'half_even'], expected: 2 },
  { name: '10% of $0.05 = 0.5, half_down', args: [5, 1000, 'half_down'], expected: 0 },
  { name: '0.01% (1 bp) of $1.00 = 0.01, up', args: [100, 1, 'up'], expected: 1 },
  { name: '0.01% (1 bp) of $1.00, half_up', args: [100, 1, 'half_up'], expected: 0 },
  { name: '7.25% of -$199.99, half_up', args: [-19999, 725, 'half_up'], expected: -1450 },
  { name: '7.25% of -$199.99, ceiling', args: [-19999, 725, 'ceiling'], expected: -1449 },
  { name: '7.25% of -$199.99, floor', args: [-19999, 725, 'floor'], expected: -1450 },
  { name: '7.25% of -$199.99, down', args: [-19999, 725, 'down'], expected: -1449 },
  { name: 'negative basis points (discount)', args: [10000, -1500, 'half_up'], expected: -1500 },
  { name: '150% surcharge', args: [10001, 15000, 'half_even'], expected: 15002 },
];

for (const { name, args, expected } of PERCENT_TABLE) {
  test(`percentOf: ${name}`, () => {
    assert.equal(percentOf(...args), expected);
  });
}

test('percentOf refuses fractional basis points', () => {
  throwsAssertion(() => percentOf(10000, 12.5, 'half_up'), /numerator must be a safe integer/);
});

/* ------------------------------------------------------------------------------------ */
/* allocate                                                                             */
/* ------------------------------------------------------------------------------------ */

const ALLOCATE_TABLE: readonly { name: string; total: number; weights: (number | bigint)[]; expected: number[] }[] = [
  { name: '100 over three equal weights', total: 100, weights: [1, 1, 1], expected: [34, 33, 33] },
  { name: '1000 over 1:2:3', total: 1000, weights: [1, 2, 3], expected: [167, 333, 500] },
  { name: '-100 over three equal weights', total: -100, weights: [1, 1, 1], expected: [-34, -33, -33] },
  { name: '-1000 over 1:2:3', total: -1000, weights: [1, 2, 3], expected: [-167, -333, -500] },
  { name: 'zero total', total: 0, weights: [1, 2, 3], expected: [0, 0, 0] },
  { name: 'single weight takes everything', total: 12345, weights: [7], expected: [12345] },
  { name: 'single weight, negative total', total: -12345, weights: [7], expected: [-12345] },
  { name: 'zero weight gets nothing', total: 101, weights: [1, 0, 1], expected: [51, 0, 50] },
  { name: 'ties go to the earlier index (2 over 3)', total: 2, weights: [1, 1, 1], expected: [1, 1, 0] },
  { name: 'ties go to the earlier index (1 over 4)', total: 1, weights: [1, 1, 1, 1], expected: [1, 0, 0, 0] },
  { name: 'ties go to the earlier index (5 over 4)', total: 5, weights: [1, 1, 1, 1], expected: [2, 1, 1, 1] },
  { name: 'tie among unequal weights goes to the earlier index', total: 3, weights: [1, 1, 2, 2], expected: [1, 0, 1, 1] },
  { name: 'larger remainder beats earlier index', total: 10, weights: [1, 2], expected: [3, 7] },
  { name: 'larger remainder beats earlier index (7 over 2:3)', total: 7, weights: [2, 3], expected: [3, 4] },
  { name: 'exact split needs no remainder', total: 10, weights: [3, 3, 4], expected: [3, 3, 4] },
  { name: 'weights not in lowest terms', total: 100, weights: [50, 50, 50], expected: [34, 33, 33] },
  { name: 'bigint weights', total: 100, weights: [1n, 1n, 1n], expected: [34, 33, 33] },
  { name: 'huge bigint weights', total: 10, weights: [10n ** 30n, 10n ** 30n], expected: [5, 5] },
  { name: 'huge bigint weight dominates', total: 1, weights: [10n ** 30n, 1n], expected: [1, 0] },
  { name: 'mixed number and bigint weights', total: 300, weights: [1, 2n], expected: [100, 200] },
  { name: 'MAX_AMOUNT_MINOR over three', total: MAX_AMOUNT_MINOR, weights: [1, 1, 1], expected: [333333333333334, 333333333333333, 333333333333333] },
  { name: '-MAX_AMOUNT_MINOR over 1:2', total: -MAX_AMOUNT_MINOR, weights: [1, 2], expected: [-333333333333333, -666666666666667] },
  // deepStrictEqual compares with Object.is, so these also check no -0 leaks out
  { name: 'negative total with a zero weight', total: -100, weights: [1, 0], expected: [-100, 0] },
  { name: 'small negative total leaves zeros (not -0)', total: -1, weights: [1, 1, 1], expected: [-1, 0, 0] },
];

for (const { name, total, weights, expected } of ALLOCATE_TABLE) {
  test(`allocate: ${name}`, () => {
    const result = allocate(total, weights);
    assert.deepStrictEqual(result, expected);
    assert.equal(result.reduce((a, b) => a + b, 0), total);
  });
}

test('allocate does not mutate the weights array', () => {
  const weights = [3, 1, 2];
  allocate(100, weights);
  assert.deepStrictEqual(weights, [3, 1, 2]);
});

test('allocate refuses empty, negative, all-zero and non-integer weights, and bad totals', () => {
  throwsAssertion(() => allocate(100, []), /at least one weight/);
  throwsAssertion(() => allocate(100, [1, -1]), /must not be negative/);
  throwsAssertion(() => allocate(100, [-1n]), /must not be negative/);
  throwsAssertion(() => allocate(100, [0, 0, 0]), /must not all be zero/);
  throwsAssertion(() => allocate(100, [0n]), /must not all be zero/);
  throwsAssertion(() => allocate(0, [0, 0]), /must not all be zero/);
  throwsAssertion(() => allocate(100, [1.5, 1]), /weight must be a safe integer/);
  throwsAssertion(() => allocate(100, [Number.NaN]), /weight must be a safe integer/);
  throwsAssertion(() => allocate(100, [Number.POSITIVE_INFINITY]), /weight must be a safe integer/);
  throwsAssertion(() => allocate(0.5, [1]), /totalMinor must be a safe integer/);
  throwsAssertion(() => allocate(MAX_AMOUNT_MINOR + 1, [1]), /exceeds the limit/);
  throwsAssertion(() => allocate(-MAX_AMOUNT_MINOR - 1, [1]), /exceeds the limit/);
});

const totalArb = fc.oneof(
  fc.integer({ min: -MAX_AMOUNT_MINOR, max: MAX_AMOUNT_MINOR }),
  fc.integer({ min: -1000, max: 1000 }),
);
const weightsArb = fc
  .array(fc.oneof(fc.nat({ max: 10 }), fc.nat({ max: 1_000_000_000 }), fc.constant(0)), { minLength: 1, maxLength: 25 })
  .filter((ws) => ws.some((w) => w > 0));
const mixedWeightsArb = fc
  .array(fc.oneof(fc.nat({ max: 1_000 }), fc.bigInt({ min: 0n, max: 10n ** 25n })), { minLength: 1, maxLength: 25 })
  .filter((ws) => ws.some((w) => BigInt(w) > 0n));

test('property: allocated parts always sum exactly to the total', () => {
  fc.assert(
    fc.property(totalArb, mixedWeightsArb, (total, weights) => {
      const parts = allocate(total, weights);
      assert.equal(parts.length, weights.length);
      assert.equal(parts.reduce((a, b) => a + b, 0), total);
      assert.equal(parts.reduce((a, b) => a + BigInt(b), 0n), BigInt(total));
    }),
    { numRuns: 500 },
  );
});

test('property: each part is within 1 of its exact proportional share', () => {
  fc.assert(
    fc.property(totalArb, mixedWeightsArb, (total, weights) => {
      const parts = allocate(total, weights);
      const W = weights.reduce<bigint>((a, w) => a + BigInt(w), 0n);
      parts.forEach((p, i) => {
        assert.ok(Number.isSafeInteger(p));
        // |p - total*w/W| < 1  <=>  |p*W - total*w| < W
        const diff = BigInt(p) * W - BigInt(total) * BigInt(weights[i]!);
        assert.ok((diff < 0n ? -diff : diff) < W, `part ${i} = ${p} is not within 1 of ${total}*${weights[i]}/${W}`);
      });
    }),
    { numRuns: 500 },
  );
});

test('property: allocate is deterministic', () => {
  fc.assert(
    fc.property(totalArb, mixedWeightsArb, (total, weights) => {
      assert.deepStrictEqual(allocate(total, [...weights]), allocate(total, weights));
    }),
  );
});

test('property: for non-negative totals every part is non-negative; for negative totals none is positive', () => {
  fc.assert(
    fc.property(totalArb, weightsArb, (total, weights) => {
      const parts = allocate(total, weights);
      if (total >= 0) assert.ok(parts.every((p) => p >= 0), String(parts));
      else assert.ok(parts.every((p) => p <= 0), String(parts));
    }),
    { numRuns: 500 },
  );
});

test('property: a negative total is the positive allocation negated (and never -0)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: MAX_AMOUNT_MINOR }), weightsArb, (total, weights) => {
      const positive = allocate(total, weights);
      const negative = allocate(-total, weights);
      assert.deepStrictEqual(negative, positive.map((p) => (p === 0 ? 0 : -p)));
    }),
  );
});

test('property: zero weights always get zero', () => {
  fc.assert(
    fc.property(totalArb, weightsArb, (total, weights) => {
      const parts = allocate(total, weights);
      weights.forEach((w, i) => {
        if (w === 0) assert.ok(Object.is(parts[i], 0), `part ${i} = ${String(parts[i])}`);
      });
    }),
  );
});

test('property: scaling every weight by the same factor does not change the result; bigint weights equal number weights', () => {
  fc.assert(
    fc.property(totalArb, weightsArb, fc.integer({ min: 1, max: 1_000_000 }), (total, weights, k) => {
      const base = allocate(total, weights);
      assert.deepStrictEqual(allocate(total, weights.map((w) => BigInt(w) * BigInt(k))), base);
      assert.deepStrictEqual(allocate(total, weights.map((w) => BigInt(w))), base);
    }),
  );
});

/* ------------------------------------------------------------------------------------ */
/* parseAmount / toDecimalString / formatMoney                                          */
/* ------------------------------------------------------------------------------------ */

test('currency exponents', () => {
  assert.equal(currencyExponent('USD'), 2);
  assert.equal(currencyExponent('CHF'), 2);
  assert.equal(currencyExponent('JPY'), 0);
  assert.equal(currencyExponent('KWD'), 3);
  throwsAssertion(() => currencyExponent('usd'), /invalid currency code/);
});

const PARSE_OK: readonly [string, string, number][] = [
  ['1,234.56', 'USD', 123456],
  ['1234', 'USD', 123400],
  ['1234.5', 'USD', 123450],
  ['-12.5', 'USD', -1250],
  ['-1,234.56', 'USD', -123456],
  ['0.00', 'USD', 0],
  ['-0.00', 'USD', 0],
  ['0', 'USD', 0],
  ['0.01', 'USD', 1],
  ['  42.10 ', 'EUR', 4210],
  ['1,000,000', 'USD', 100000000],
  ['123', 'USD', 12300],
  ['1,000', 'JPY', 1000],
  ['1000', 'JPY', 1000],
  ['-1,234,567', 'JPY', -1234567],
  ['1.234', 'KWD', 1234],
  ['0.5', 'KWD', 500],
  ['0.001', 'KWD', 1],
  ['1,234,567.891', 'KWD', 1234567891],
  ['10,000,000,000,000.00', 'USD', MAX_AMOUNT_MINOR],
  ['-10000000000000', 'USD', -MAX_AMOUNT_MINOR],
  ['1000000000000000', 'JPY', MAX_AMOUNT_MINOR],
  ['1000000000000.000', 'KWD', MAX_AMOUNT_MINOR],
];

for (const [text, currency, expected] of PARSE_OK) {
  test(`parseAmount(${JSON.stringify(text)}, ${currency}) = ${expected}`, () => {
    const v = parseAmount(text, currency);
    assert.ok(Object.is(v, expected), `got ${Object.is(v, -0) ? '-0' : String(v)}`);
  });
}

const PARSE_BAD: readonly [string, string, RegExp][] = [
  ['1,23.00', 'USD', /is not an amount/],
  ['1,2345', 'USD', /is not an amount/],
  ['12,34', 'USD', /is not an amount/],
  [',123', 'USD', /is not an amount/],
  ['1234,567', 'USD', /is not an amount/],
  ['abc', 'USD', /is not an amount/],
  ['', 'USD', /is not an amount/],
  ['   ', 'USD', /is not an amount/],
  ['1.2.3', 'USD', /is not an amount/],
  ['.5', 'USD', /is not an amount/],
  ['5.', 'USD', /is not an amount/],
  ['+5', 'USD', /is not an amount/],
  ['--5', 'USD', /is not an amount/],
  ['- 5', 'USD', /is not an amount/],
  ['$5.00', 'USD', /is not an amount/],
  ['5 USD', 'USD', /is not an amount/],
  ['1 000', 'USD', /is not an amount/],
  ['1e5', 'USD', /is not an amount/],
  ['0x10', 'USD', /is not an amount/],
  ['Infinity', 'USD', /is not an amount/],
  ['NaN', 'USD', /is not an amount/],
  ['1.000,00', 'EUR', /is not an amount/],
  ['12.345', 'USD', /more than 2 decimal places for USD/],
  ['-0.001', 'USD', /more than 2 decimal places for USD/],
  ['1.5', 'JPY', /more than 0 decimal places for JPY/],
  ['1.2345', 'KWD', /more than 3 decimal places for KWD/],
  ['10000000000000.01', 'USD', /too large/],
  ['-10,000,000,000,000.01', 'USD', /too large/],
  ['1000000000000001', 'JPY', /too large/],
  ['99999999999999999999', 'USD', /too large/],
  ['9'.repeat(400), 'USD', /too large/],
];

for (const [text, currency, message] of PARSE_BAD) {
  test(`parseAmount rejects ${JSON.stringify(text.length > 30 ? text.slice(0, 20) + '…' : text)} for ${currency}`, () => {
    throwsParse(() => parseAmount(text, currency), message);
  });
}

test('parseAmount error message quotes the input', () => {
  throwsParse(() => parseAmount('abc', 'USD'), /"abc"/);
});

test('parseAmount refuses an invalid currency code', () => {
  throwsAssertion(() => parseAmount('1.00', 'usd'), /invalid currency code/);
  throwsAssertion(() => parseAmount('1.00', 'US'), /invalid currency code/);
});

const DECIMAL_TABLE: readonly [number, string, string][] = [
  [123456, 'USD', '1234.56'],
  [-123456, 'USD', '-1234.56'],
  [0, 'USD', '0.00'],
  [-0, 'USD', '0.00'],
  [5, 'USD', '0.05'],
  [-5, 'USD', '-0.05'],
  [50, 'USD', '0.50'],
  [100, 'USD', '1.00'],
  [-100, 'USD', '-1.00'],
  [123456, 'CHF', '1234.56'],
  [MAX_AMOUNT_MINOR, 'USD', '10000000000000.00'],
  [1000, 'JPY', '1000'],
  [-1000, 'JPY', '-1000'],
  [0, 'JPY', '0'],
  [7, 'JPY', '7'],
  [1234, 'KWD', '1.234'],
  [1, 'KWD', '0.001'],
  [-1, 'KWD', '-0.001'],
  [-1230, 'KWD', '-1.230'],
  [0, 'KWD', '0.000'],
];

for (const [amount, currency, expected] of DECIMAL_TABLE) {
  test(`toDecimalString(${Object.is(amount, -0) ? '-0' : amount}, ${currency}) = ${expected}`, () => {
    assert.equal(toDecimalString(amount, currency), expected);
  });
}

test('toDecimalString refuses non-integers and bad currency codes', () => {
  throwsAssertion(() => toDecimalString(1.5, 'USD'), /must be a safe integer/);
  throwsAssertion(() => toDecimalString(Number.NaN, 'USD'), /must be a safe integer/);
  throwsAssertion(() => toDecimalString(100, 'usd'), /invalid currency code/);
});

const FORMAT_TABLE: readonly [number, string, { symbol?: boolean } | undefined, string][] = [
  [123456, 'USD', undefined, '$1,234.56'],
  [-123456, 'USD', undefined, '-$1,234.56'],
  [-1200, 'USD', undefined, '-$12.00'],
  [0, 'USD', undefined, '$0.00'],
  [-0, 'USD', undefined, '$0.00'],
  [5, 'USD', undefined, '$0.05'],
  [-5, 'USD', undefined, '-$0.05'],
  [99999, 'USD', undefined, '$999.99'],
  [100000, 'USD', undefined, '$1,000.00'],
  [100000000, 'USD', undefined, '$1,000,000.00'],
  [MAX_AMOUNT_MINOR, 'USD', undefined, '$10,000,000,000,000.00'],
  [123456, 'GBP', undefined, '£1,234.56'],
  [123456, 'EUR', undefined, '€1,234.56'],
  [123456, 'CAD', undefined, '$1,234.56'],
  [1000, 'JPY', undefined, '¥1,000'],
  [-1234567, 'JPY', undefined, '-¥1,234,567'],
  [0, 'JPY', undefined, '¥0'],
  [999, 'JPY', undefined, '¥999'],
  [1234, 'KWD', undefined, 'KWD 1.234'],
  [1234567, 'KWD', undefined, 'KWD 1,234.567'],
  [-1, 'KWD', undefined, '-KWD 0.001'],
  [123456, 'CHF', undefined, 'CHF 1,234.56'],
  [-5, 'CHF', undefined, '-CHF 0.05'],
  [123456, 'USD', { symbol: false }, '1,234.56'],
  [-123456, 'USD', { symbol: false }, '-1,234.56'],
  [1000, 'JPY', { symbol: false }, '1,000'],
  [1234567, 'KWD', { symbol: false }, '1,234.567'],
  [123456, 'USD', { symbol: true }, '$1,234.56'],
];

for (const [amount, currency, opts, expected] of FORMAT_TABLE) {
  test(`formatMoney(${Object.is(amount, -0) ? '-0' : amount}, ${currency}${opts ? ', ' + JSON.stringify(opts) : ''}) = ${expected}`, () => {
    assert.equal(opts === undefined ? formatMoney(amount, currency) : formatMoney(amount, currency, opts), expected);
  });
}

const safeAmountArb = fc.oneof(
  fc.integer({ min: -MAX_AMOUNT_MINOR, max: MAX_AMOUNT_MINOR }),
  fc.integer({ min: -100_000, max: 100_000 }),
  fc.constantFrom(0, 1, -1, MAX_AMOUNT_MINOR, -MAX_AMOUNT_MINOR),
);

for (const currency of ['USD', 'JPY', 'KWD']) {
  test(`property: parseAmount(toDecimalString(x)) === x for ${currency}`, () => {
    fc.assert(
      fc.property(safeAmountArb, (x) => {
        assert.equal(parseAmount(toDecimalString(x, currency), currency), x);
      }),
      { numRuns: 1000 },
    );
  });

  test(`property: formatted amounts without symbol parse back for ${currency}`, () => {
    fc.assert(
      fc.property(safeAmountArb, (x) => {
        assert.equal(parseAmount(formatMoney(x, currency, { symbol: false }), currency), x);
      }),
      { numRuns: 500 },
    );
  });
}

/* ------------------------------------------------------------------------------------ */
/* money / add / subtract / sum / negate                                                */
/* ------------------------------------------------------------------------------------ */

test('money() builds a frozen value', () => {
  const m = money(1234, 'USD');
  assert.deepStrictEqual({ ...m }, { amountMinor: 1234, currency: 'USD' });
  assert.ok(Object.isFrozen(m));
  assert.deepStrictEqual({ ...money(MAX_AMOUNT_MINOR, 'JPY') }, { amountMinor: MAX_AMOUNT_MINOR, currency: 'JPY' });
  assert.deepStrictEqual({ ...money(-MAX_AMOUNT_MINOR, 'KWD') }, { amountMinor: -MAX_AMOUNT_MINOR, currency: 'KWD' });
});

test('money() refuses non-integers, NaN, infinities and amounts over the limit', () => {
  throwsAssertion(() => money(0.1, 'USD'), /amountMinor must be a safe integer/);
  throwsAssertion(() => money(10.5, 'USD'), /amountMinor must be a safe integer/);
  throwsAssertion(() => money(Number.NaN, 'USD'), /amountMinor must be a safe integer/);
  throwsAssertion(() => money(Number.POSITIVE_INFINITY, 'USD'), /amountMinor must be a safe integer/);
  throwsAssertion(() => money(Number.MAX_SAFE_INTEGER + 1, 'USD'), /amountMinor must be a safe integer/);
  throwsAssertion(() => money(MAX_AMOUNT_MINOR + 1, 'USD'), /exceeds the limit/);
  throwsAssertion(() => money(-MAX_AMOUNT_MINOR - 1, 'USD'), /exceeds the limit/);
});

test('money() refuses bad currency codes', () => {
  for (const code of ['usd', 'US', 'USDX', '', 'U$D', '123', ' USD', 'Usd']) {
    throwsAssertion(() => money(100, code), /invalid currency code/);
  }
});

test('add and subtract same-currency amounts', () => {
  assert.deepStrictEqual({ ...add(money(150, 'USD'), money(275, 'USD')) }, { amountMinor: 425, currency: 'USD' });
  assert.deepStrictEqual({ ...subtract(money(150, 'USD'), money(275, 'USD')) }, { amountMinor: -125, currency: 'USD' });
  assert.deepStrictEqual({ ...negate(money(150, 'EUR')) }, { amountMinor: -150, currency: 'EUR' });
  assert.deepStrictEqual({ ...negate(money(-150, 'EUR')) }, { amountMinor: 150, currency: 'EUR' });
});

test('add, subtract and sum refuse mixed currencies', () => {
  throwsAssertion(() => add(money(100, 'USD'), money(100, 'EUR')), /currency mismatch: USD vs EUR/);
  throwsAssertion(() => subtract(money(100, 'USD'), money(100, 'EUR')), /currency mismatch: USD vs EUR/);
  throwsAssertion(() => sum([money(100, 'USD'), money(100, 'EUR')], 'USD'), /currency mismatch: EUR vs USD/);
  throwsAssertion(() => sum([money(100, 'EUR')], 'USD'), /currency mismatch: EUR vs USD/);
});

test('add, subtract and sum refuse results over the limit', () => {
  throwsAssertion(() => add(money(MAX_AMOUNT_MINOR, 'USD'), money(1, 'USD')), /exceeds the limit/);
  throwsAssertion(() => subtract(money(-MAX_AMOUNT_MINOR, 'USD'), money(1, 'USD')), /exceeds the limit/);
  throwsAssertion(() => sum([money(MAX_AMOUNT_MINOR, 'USD'), money(1, 'USD')], 'USD'), /exceeds the limit/);
});

test('sum adds amounts and an empty sum is zero in the given currency', () => {
  assert.deepStrictEqual({ ...sum([money(100, 'USD'), money(250, 'USD'), money(-50, 'USD')], 'USD') }, { amountMinor: 300, currency: 'USD' });
  assert.deepStrictEqual({ ...sum([], 'JPY') }, { amountMinor: 0, currency: 'JPY' });
});

test('property: sum equals the exact integer sum; add/subtract are inverse', () => {
  const small = fc.integer({ min: -1_000_000_000_000, max: 1_000_000_000_000 });
  fc.assert(
    fc.property(fc.array(small, { maxLength: 50 }), (xs) => {
      const total = sum(xs.map((x) => money(x, 'USD')), 'USD');
      assert.equal(BigInt(total.amountMinor), xs.reduce((a, x) => a + BigInt(x), 0n));
    }),
  );
  fc.assert(
    fc.property(small, small, (a, b) => {
      const ma = money(a, 'GBP');
      const mb = money(b, 'GBP');
      assert.equal(subtract(add(ma, mb), mb).amountMinor, a);
      assert.equal(add(ma, negate(mb)).amountMinor, subtract(ma, mb).amountMinor);
    }),
  );
});

test('allocate: the plain-number fast path gives exactly the BigInt result', () => {
  fc.assert(fc.property(
    fc.integer({ min: -MAX_AMOUNT_MINOR, max: MAX_AMOUNT_MINOR }),
    fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 40 }).filter((ws) => ws.some((w) => w > 0)),
    (total, weights) => {
      // bigint weights force the BigInt path; plain numbers take the fast path when exact
      assert.deepEqual(allocate(total, weights), allocate(total, weights.map(BigInt)));
    },
  ), { numRuns: 2000 });
});

test('sumByCurrency: each currency summed apart, in code order; the parts add up to the whole', () => {
  const cases: [string, { currency: string; m: number }[], { currency: string; amountMinor: number }[]][] = [
    ['none', [], []],
    ['one currency', [{ currency: 'USD', m: 150 }, { currency: 'USD', m: -50 }], [{ currency: 'USD', amountMinor: 100 }]],
    ['yen never adds to dollars', [{ currency: 'USD', m: 1_000 }, { currency: 'JPY', m: 500 }, { currency: 'USD', m: 1 }], [{ currency: 'JPY', amountMinor: 500 }, { currency: 'USD', amountMinor: 1_001 }]],
    ['code order, not first seen', [{ currency: 'USD', m: 1 }, { currency: 'EUR', m: 2 }, { currency: 'AUD', m: 3 }], [{ currency: 'AUD', amountMinor: 3 }, { currency: 'EUR', amountMinor: 2 }, { currency: 'USD', amountMinor: 1 }]],
  ];
  for (const [name, rows, expected] of cases) assert.deepEqual(sumByCurrency(rows, (r) => r.m), expected, name);
  assert.throws(() => sumByCurrency([{ currency: 'USD', m: Number.MAX_SAFE_INTEGER }, { currency: 'USD', m: 1 }], (r) => r.m), 'an inexact sum is refused');
  fc.assert(fc.property(fc.array(fc.record({ currency: fc.constantFrom('USD', 'EUR', 'JPY'), m: fc.integer({ min: -1e9, max: 1e9 }) }), { maxLength: 60 }), (rows) => {
    const sums = sumByCurrency(rows, (r) => r.m);
    assert.deepEqual(sums.map((s) => s.currency), [...new Set(rows.map((r) => r.currency))].sort());
    for (const s of sums) assert.equal(s.amountMinor, rows.filter((r) => r.currency === s.currency).reduce((n, r) => n + r.m, 0));
  }));
});
