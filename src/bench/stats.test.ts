/** maxOf over any number of samples (a spread into Math.max threw RangeError past ~125,000). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { maxOf } from './stats.ts';

test('maxOf: the largest sample, of 200,000 too; an empty series is refused', () => {
  const many = Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 200_000);
  assert.equal(maxOf(many), 199_999);
  assert.throws(() => maxOf([]), RangeError);
  fc.assert(
    fc.property(fc.array(fc.integer(), { minLength: 1, maxLength: 50 }), (xs) => {
      assert.equal(maxOf(xs), Math.max(...xs));
    }),
  );
});
