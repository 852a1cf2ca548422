/**
 * The interval table against a naive model (a plain list searched linearly): random inserts
 * (refused on overlap, as DMA_MAP's EEXIST), exact removes (DMA_UNMAP), lookups of the interval
 * holding an address and of any interval overlapping a range, in a small address space so that
 * collisions and adjacency are frequent; then the same near 2^64.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Interval, IntervalTable } from './interval-table.ts';

interface Item extends Interval {
  readonly id: number;
}

type Op =
  | { kind: 'insert'; address: bigint; size: bigint }
  | { kind: 'remove'; address: bigint; size: bigint }
  | { kind: 'containing'; address: bigint }
  | { kind: 'overlapping'; address: bigint; size: bigint }
  | { kind: 'clear' };

const overlaps = (r: Interval, address: bigint, size: bigint) =>
  address < r.address + r.size && r.address < address + size;

function ops(base: bigint): fc.Arbitrary<Op[]> {
  const address = fc.bigInt({ min: 0n, max: 63n }).map((a) => base + a);
  const size = fc.bigInt({ min: 1n, max: 12n });
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('insert'), address, size }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove'), address, size }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('containing'), address }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('overlapping'), address, size }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear') }) },
  ) as fc.Arbitrary<Op>;
  return fc.array(op, { maxLength: 120 });
}

function run(list: Op[]): void {
  const table = new IntervalTable<Item>();
  let model: Item[] = [];
  let id = 0;
  for (const [step, op] of list.entries()) {
    const at = `step ${step} ${JSON.stringify(op, (_, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`;
    switch (op.kind) {
      case 'insert': {
        const clash = model.find((r) => overlaps(r, op.address, op.size));
        const found = table.overlapping(op.address, op.size);
        assert.equal(found === undefined, clash === undefined, at);
        if (found) assert.ok(overlaps(found, op.address, op.size), at);
        if (!clash) {
          const item = { address: op.address, size: op.size, id: id++ };
          table.insert(item);
          model.push(item);
        } else {
          assert.throws(() => table.insert({ ...op, id: -1 }), RangeError, at);
        }
        break;
      }
      case 'remove': {
        const hit = model.find((r) => r.address === op.address && r.size === op.size);
        const found = table.exact(op.address, op.size);
        assert.equal(found?.id, hit?.id, at);
        if (found) {
          assert.equal(table.remove(found), true, at);
          assert.equal(table.remove(found), false, `${at}: removed twice`);
          model = model.filter((r) => r !== hit);
        }
        break;
      }
      case 'containing': {
        const hit = model.find((r) => r.address <= op.address && op.address < r.address + r.size);
        assert.equal(table.containing(op.address)?.id, hit?.id, at);
        break;
      }
      case 'overlapping': {
        const hits = model.filter((r) => overlaps(r, op.address, op.size)).map((r) => r.id);
        const found = table.overlapping(op.address, op.size);
        if (hits.length === 0) assert.equal(found, undefined, at);
        else assert.ok(found && hits.includes(found.id), at);
        break;
      }
      case 'clear':
        assert.deepEqual(
          table.clear().map((r) => r.id),
          [...model].sort((a, b) => (a.address < b.address ? -1 : 1)).map((r) => r.id),
          at,
        );
        model = [];
        break;
    }
    assert.equal(table.size, model.length, at);
  }
  const sorted = [...model].sort((a, b) => (a.address < b.address ? -1 : 1));
  assert.deepEqual(
    table.values().map((r) => r.id),
    sorted.map((r) => r.id),
  );
}

describe('IntervalTable against a naive model', () => {
  it('agrees on random inserts, removes, lookups and clears', () => {
    fc.assert(
      fc.property(ops(0n), (list) => run(list)),
      { numRuns: 600, seed: 0x7d3a },
    );
  });

  it('agrees at the top of the 64-bit DMA space', () => {
    fc.assert(
      fc.property(ops((1n << 64n) - 80n), (list) => run(list)),
      { numRuns: 200, seed: 0x51 },
    );
  });
});
