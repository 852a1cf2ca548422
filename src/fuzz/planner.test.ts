/**
 * The fuzzer's own parts, without a server: one seed plans one message sequence (and another
 * seed another), the expectation of a frame follows its bytes (vfio-user.rst "Header": size,
 * type, NO_REPLY; the fd limit), and the canary guard moves every GPU RAM write that would
 * reach the canaries, including one hidden behind a frame whose size is short of its bytes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Command } from '../vfio-user/index.ts';
import { CANARY_END, CANARY_START, GPU_RAM_REGION, guardFrame } from './canary.ts';
import { expectationOf, type FramingLimits } from './mutate.ts';
import type { FuzzDevice } from './plan.ts';
import { LanePlanner } from './planner.ts';
import { frameBytes, getU64, pack, u32, u64 } from './wire.ts';

const LIMITS: FramingLimits = { maxMessageSize: 16 + 16 + (1 << 20), maxFds: 16 };
const GPU_REGIONS = [1n << 24n, 1n << 34n, 0n, 1n << 25n, 0n, 0n, 0n, 4096n, 0n, 1n << 37n];
const devices: FuzzDevice[] = Array.from({ length: 18 }, (_, i) => ({
  address: `d${i}`,
  socket: '/nowhere',
  gpu: i >= 12,
  regionSizes: GPU_REGIONS,
  irqCounts: [1, 1, 6, 1, 1],
}));

/** A digest of everything lane `lane` plans for `messages` messages. */
function planDigest(seed: number, lane: number, messages: number): string {
  const planner = new LanePlanner(
    { seed, devices, limits: LIMITS, maxDataXferSize: 1 << 20, avoid: new Set() },
    lane,
    [lane, lane + 6, lane + 12],
  );
  const h = createHash('sha256');
  for (let left = messages; left > 0; ) {
    const c = planner.next(left);
    left -= c.frames.length + c.intruder.length;
    h.update(`${c.device} ${c.end} ${c.cutAt}|`);
    for (const f of [...c.frames, ...c.intruder]) h.update(f.bytes).update(f.fds.join(','));
  }
  return h.digest('hex');
}

describe('fuzz plans', () => {
  it('the same seed plans the same messages; another seed, others', () => {
    const a = planDigest(42, 3, 2000);
    assert.equal(planDigest(42, 3, 2000), a);
    assert.notEqual(planDigest(43, 3, 2000), a);
    assert.notEqual(planDigest(42, 4, 2000), a, 'lanes draw from their own streams');
  });
});

describe('frame expectations', () => {
  const frame = (size: number | undefined, flags: number, body = new Uint8Array(8)) =>
    frameBytes(
      { msgId: 1, command: Command.REGION_READ, flags, ...(size === undefined ? {} : { size }) },
      body,
    );
  const cases: [string, Uint8Array, number, string][] = [
    ['a command', frame(undefined, 0), 0, 'reply'],
    ['NO_REPLY', frame(undefined, 0x10), 0, 'silent'],
    ['a reply-typed message', frame(undefined, 1), 0, 'silent'],
    ['size under 16', frame(15, 0), 0, 'fatal'],
    ['size over the limit', frame(LIMITS.maxMessageSize + 1, 0), 0, 'fatal'],
    ['message type 2', frame(undefined, 2), 0, 'fatal'],
    ['17 fds', frame(undefined, 0), 17, 'fatal'],
    ['16 fds', frame(undefined, 0), 16, 'reply'],
    ['size past the bytes', frame(25, 0), 0, 'misframed'],
    ['size short of the bytes', frame(20, 0), 0, 'misframed'],
  ];
  for (const [name, bytes, fds, expect] of cases) {
    it(`${name} → ${expect}`, () => assert.equal(expectationOf(bytes, fds, LIMITS), expect));
  }
});

describe('canary guard', () => {
  const write = (offset: bigint, count: number, region = GPU_RAM_REGION) =>
    frameBytes(
      { msgId: 1, command: Command.REGION_WRITE, flags: 0 },
      pack([u64(offset), u32(region), u32(count), new Uint8Array(count)]),
    );

  it('moves writes that touch the canary span, leaves the others', () => {
    const inside = write(CANARY_START + 100n, 8);
    const across = write(CANARY_START - 4n, 8);
    const after = write(CANARY_END, 8);
    const otherRegion = write(CANARY_START, 8, 1);
    assert.equal(guardFrame(inside), 1);
    assert.equal(guardFrame(across), 1);
    assert.equal(guardFrame(after), 0);
    assert.equal(guardFrame(otherRegion), 0);
    for (const f of [inside, across]) assert.ok(getU64(f, 16) < CANARY_START);
  });

  it('reads a count that lies about the data, and WRITE_MULTI entries', () => {
    const lying = write(CANARY_START - 0x1000n, 8);
    new DataView(lying.buffer).setUint32(28, 0x2000, true); // count says 8 KiB
    assert.equal(guardFrame(lying), 1);
    const multi = frameBytes(
      { msgId: 1, command: Command.REGION_WRITE_MULTI, flags: 0 },
      pack([
        u64(2n),
        u64(0n),
        u32(GPU_RAM_REGION),
        u32(8),
        u64(0n),
        u64(CANARY_END - 1n),
        u32(GPU_RAM_REGION),
        u32(8),
        u64(0n),
      ]),
    );
    assert.equal(guardFrame(multi), 1);
    assert.equal(getU64(multi, 16 + 8), 0n, 'the first entry stays');
    assert.ok(getU64(multi, 16 + 8 + 24) < CANARY_START);
  });

  it('finds a write hidden behind a frame whose size is short of its bytes', () => {
    const hidden = write(CANARY_START, 8);
    const outer = frameBytes(
      { msgId: 9, command: Command.DEVICE_RESET, flags: 0, size: 16 },
      hidden,
    );
    assert.equal(guardFrame(outer), 1);
    assert.ok(getU64(outer, 32) < CANARY_START);
  });
});
