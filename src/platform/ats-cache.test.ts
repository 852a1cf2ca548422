import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AtsCache, type AtsEntry } from './ats-cache.ts';
import {
  type AtsdLaunchFields,
  decodeLaunch,
  encodeLaunch,
  getAtsdLaunchVal,
  kernelInvalidateSteps,
} from './ats-cache-launch.ts';

const fieldsArb: fc.Arbitrary<AtsdLaunchFields> = fc.record({
  r: fc.boolean(),
  ric: fc.integer({ min: 0, max: 3 }),
  lp: fc.integer({ min: 0, max: 255 }),
  is: fc.integer({ min: 0, max: 3 }),
  prs: fc.boolean(),
  b: fc.boolean(),
  ap: fc.integer({ min: 0, max: 7 }),
  l: fc.boolean(),
  pid: fc.integer({ min: 0, max: 0xfffff }),
  f: fc.boolean(),
  ocapi40: fc.boolean(),
  ocapi41: fc.boolean(),
  reserved: fc.integer({ min: 0, max: 0x3fffff }),
});

describe('ATSD LAUNCH word', () => {
  it('decode(encode(fields)) = fields', () => {
    fc.assert(
      fc.property(fieldsArb, (f) => assert.deepEqual(decodeLaunch(encodeLaunch(f)), { ...f })),
    );
  });
  it('encode(decode(word)) = word for every 64-bit word', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (w) =>
        assert.equal(encodeLaunch(decodeLaunch(w)), w),
      ),
    );
  });
  it('places fields in IBM bit numbering (bit 0 = MSB)', () => {
    assert.equal(encodeLaunch({ r: true }), 1n << 63n);
    assert.equal(encodeLaunch({ ric: 2 }), 2n << 61n);
    assert.equal(encodeLaunch({ is: 1 }), 1n << 51n);
    assert.equal(encodeLaunch({ prs: true }), 1n << 50n);
    assert.equal(encodeLaunch({ ap: 5 }), 5n << 46n);
    assert.equal(encodeLaunch({ pid: 1 }), 1n << 25n);
    assert.equal(encodeLaunch({ f: true }), 1n << 24n);
    assert.throws(() => encodeLaunch({ pid: 0x100000 }), RangeError);
  });
  it("the kernel's get_atsd_launch_val", () => {
    assert.equal(getAtsdLaunchVal(5, '64K'), 0x0005_4000_0a00_0000n);
    assert.equal(getAtsdLaunchVal(5, 'all'), 0x000c_0000_0a00_0000n);
    assert.equal(getAtsdLaunchVal(0, '2M'), 0x0004_4000_0000_0000n);
    const steps = kernelInvalidateSteps(7, 0x10010000n, 0x10000n);
    assert.deepEqual(steps[0], { ava: 0x10010000n, launch: getAtsdLaunchVal(7, '64K') });
    assert.deepEqual(steps.slice(1), [
      { ava: undefined, launch: getAtsdLaunchVal(0, 'all') },
      { ava: undefined, launch: getAtsdLaunchVal(0, 'all') },
    ]);
    assert.equal(
      kernelInvalidateSteps(7, 0x200000n, 0x1000n)[0]?.launch,
      getAtsdLaunchVal(7, '2M'),
    );
    assert.equal(
      kernelInvalidateSteps(7, 0x1ff000n, 0x2000n)[0]?.launch,
      getAtsdLaunchVal(7, '1G'),
    );
    assert.equal(kernelInvalidateSteps(7, 0n, 1n << 40n)[0]?.launch, getAtsdLaunchVal(7, 'all'));
  });
});

/** A cache with one entry of each kind the tests tell apart; returns the cache and a namer. */
function populated(): AtsCache {
  const c = new AtsCache('0004:04:00.0');
  c.insert({ lpid: 1, pid: 5, ea: 0x10000000n, pageSize: '4K' }); // a: 4K pid 5
  c.insert({ lpid: 1, pid: 5, ea: 0x10001000n, pageSize: '4K' }); // b: next 4K
  c.insert({ lpid: 1, pid: 5, ea: 0x10010000n, pageSize: '64K' }); // c: 64K
  c.insert({ lpid: 1, pid: 5, ea: 0x10200000n, pageSize: '2M' }); // d: 2M
  c.insert({ lpid: 1, pid: 5, ea: 0x40000000n, pageSize: '1G' }); // e: 1G
  c.insert({ lpid: 1, pid: 6, ea: 0x10000000n, pageSize: '4K' }); // f: other pid
  c.insert({ lpid: 2, pid: 5, ea: 0x10000000n, pageSize: '4K' }); // g: other lpid
  c.insert({ lpid: 1, ea: 0x10000000n, pageSize: '4K', scope: 'partition' }); // h: partition scope
  c.insert({ lpid: 1, pid: 5, ea: 0x10000000n, pageSize: '4K', kind: 'pwc' }); // i: page-walk cache
  return c;
}

const NAMES = 'abcdefghi';
function remaining(c: AtsCache): string {
  const all = populated().entries();
  const key = (e: AtsEntry) => `${e.kind}/${e.scope}/${e.lpid}/${e.pid}/${e.pageSize}/${e.ea}`;
  const left = new Set(c.entries().map(key));
  return [...NAMES].filter((_, i) => left.has(key(all[i] as AtsEntry))).join('');
}

function launchOn(fields: Partial<AtsdLaunchFields>, ava: bigint, lpid = 1): string {
  const c = populated();
  c.invalidate(encodeLaunch(fields), ava, lpid);
  return remaining(c);
}

describe('AtsCache.invalidate', () => {
  it('one 4K VA: only that page of that PID, LPID and size', () => {
    assert.equal(launchOn({ prs: true, pid: 5, ap: 0 }, 0x10000abcn), 'bcdefghi');
  });
  it('one 64K VA', () => {
    assert.equal(launchOn({ prs: true, pid: 5, ap: 5 }, 0x1001f000n), 'abdefghi');
    // a 64K launch over the 4K pages at 0x10000000 does not drop the 4K entries
    assert.equal(launchOn({ prs: true, pid: 5, ap: 5 }, 0x10000000n), 'abcdefghi');
  });
  it('one 2M VA', () => {
    assert.equal(launchOn({ prs: true, pid: 5, ap: 1 }, 0x103fffffn), 'abcefghi');
  });
  it('one 1G VA', () => {
    assert.equal(launchOn({ prs: true, pid: 5, ap: 2 }, 0x7fffffffn), 'abcdfghi');
  });
  it('a reserved AP drops nothing', () => {
    assert.equal(launchOn({ prs: true, pid: 5, ap: 3 }, 0x10000000n), NAMES);
  });
  it('whole PID: every TLB entry of the PID in the bound LPID', () => {
    assert.equal(launchOn({ prs: true, is: 1, pid: 5 }, 0n), 'fghi');
    assert.equal(launchOn({ prs: true, is: 1, pid: 5 }, 0n, 2), 'abcdefhi');
  });
  it('partition scope', () => {
    assert.equal(launchOn({ prs: false, is: 0, ap: 0 }, 0x10000000n), 'abcdefgi');
    assert.equal(launchOn({ prs: false, is: 1 }, 0n), 'abcdefgi');
  });
  it('RIC: TLB only, page-walk cache only, all, reserved', () => {
    assert.equal(launchOn({ ric: 0, prs: true, is: 1, pid: 5 }, 0n), 'fghi');
    assert.equal(launchOn({ ric: 1, prs: true, is: 1, pid: 5 }, 0n), 'abcdefgh');
    assert.equal(launchOn({ ric: 2, prs: true, is: 1, pid: 5 }, 0n), 'fgh');
    assert.equal(launchOn({ ric: 3, prs: true, is: 1, pid: 5 }, 0n), NAMES);
  });
  it('IS 2: the LPID in one scope; IS 3: the whole LPID', () => {
    assert.equal(launchOn({ ric: 2, prs: true, is: 2 }, 0n), 'gh');
    assert.equal(launchOn({ ric: 2, is: 3 }, 0n), 'g');
  });
  it('F (no flush) marks entries stale; the next flushing launch drops them', () => {
    const c = populated();
    const r = c.invalidate(encodeLaunch({ prs: true, is: 1, pid: 5, f: true }), 0n, 1);
    assert.equal(r.staled.length, 5);
    assert.equal(r.dropped.length, 0);
    assert.equal(remaining(c), NAMES);
    assert.equal(c.entries().filter((e) => e.stale).length, 5);
    // a flushing launch that selects nothing of its own still completes the stale ones
    const flush = c.invalidate(getAtsdLaunchVal(0, 'all'), 0n, 1);
    assert.equal(flush.dropped.length, 5);
    assert.equal(remaining(c), 'fghi');
  });
  it("the kernel's launch values against the cache", () => {
    const c = populated();
    for (const step of kernelInvalidateSteps(5, 0x10010000n, 0x10000n))
      c.invalidate(step.launch, step.ava ?? 0n, 1);
    assert.equal(remaining(c), 'abdefghi');
  });
  it('populate inserts consecutive aligned pages', () => {
    const c = new AtsCache('g');
    const added = c.populate({ lpid: 3, pid: 9, ea: 0x12345n, pageSize: '64K', count: 3 });
    assert.deepEqual(
      added.map((e) => e.ea),
      [0x10000n, 0x20000n, 0x30000n],
    );
    assert.equal(c.size, 3);
  });
});
