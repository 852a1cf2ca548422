import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises';
import { fixture } from '../../test/support/nvlink2/fixture.ts';
import { inSecondProcess } from '../../test/support/nvlink2/second-process.ts';
import type { AtsCache } from '../platform/index.ts';
import {
  type AtsdLaunchFields,
  encodeLaunch,
  getAtsdLaunchVal,
  kernelInvalidateSteps,
} from '../platform/index.ts';
import type { VfioPciDevice } from '../vfio/index.ts';
import { VfioError } from '../vfio/index.ts';
import type { AtsdRegion } from './atsd-region.ts';
import { ATSD_STAT_PENDING } from './atsd-register.ts';
import { pnvNpu2MapHost } from './npu-lpar.ts';

const GPU = '0002:01:00.0';
const BRIDGE = '0000:00:00.0'; // link 0: ATSD register 0, bound by MAP_LPAR of the GPU
const LPID = 5;

/** Waits (`pause` between looks) until `done` holds; fails naming `what` after 60 s. */
async function until(what: string, done: () => boolean, pause: () => Promise<unknown>) {
  const deadline = Date.now() + 60_000;
  while (!done()) {
    assert.ok(Date.now() < deadline, `timed out after 60 s waiting for ${what}`);
    await pause();
  }
}

function u64be(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, false);
  return b;
}
function readU64(dev: VfioPciDevice, offset: number): bigint {
  return new DataView(dev.read(9, offset, 8).buffer).getBigUint64(0, false);
}

/** Entries a..i of the ATS cache tests (lpid 5 is the guest's). */
/** The booted platform with GPU attached to LPID and its link-0 bridge opened; closed after the suite. */
function attachedGpuAndBridge() {
  const f = fixture();
  after(() => f.done());
  pnvNpu2MapHost(f.ctx);
  const gpu = f.open(GPU);
  gpu.attachKvm(LPID);
  return { f, gpu, bridge: f.open(BRIDGE) };
}

function populate(c: AtsCache): void {
  c.clear();
  c.insert({ lpid: LPID, pid: 5, ea: 0x10000000n, pageSize: '4K' }); // a
  c.insert({ lpid: LPID, pid: 5, ea: 0x10001000n, pageSize: '4K' }); // b
  c.insert({ lpid: LPID, pid: 5, ea: 0x10010000n, pageSize: '64K' }); // c
  c.insert({ lpid: LPID, pid: 5, ea: 0x10200000n, pageSize: '2M' }); // d
  c.insert({ lpid: LPID, pid: 5, ea: 0x40000000n, pageSize: '1G' }); // e
  c.insert({ lpid: LPID, pid: 6, ea: 0x10000000n, pageSize: '4K' }); // f
  c.insert({ lpid: 7, pid: 5, ea: 0x10000000n, pageSize: '4K' }); // g: another guest
  c.insert({ lpid: LPID, ea: 0x10000000n, pageSize: '4K', scope: 'partition' }); // h
  c.insert({ lpid: LPID, pid: 5, ea: 0x10000000n, pageSize: '4K', kind: 'pwc' }); // i
}
function left(c: AtsCache): string {
  const names = new Map<string, string>();
  const probe = new (c.constructor as new (n: string) => AtsCache)('probe');
  populate(probe);
  probe.entries().forEach((e, i) => {
    names.set(JSON.stringify({ ...e, ea: String(e.ea), stale: false }), 'abcdefghi'[i] ?? '?');
  });
  return c
    .entries()
    .map((e) => names.get(JSON.stringify({ ...e, ea: String(e.ea), stale: false })) ?? '?')
    .sort()
    .join('');
}

describe('ATSD region: launches through region writes', () => {
  const { f, gpu, bridge } = attachedGpuAndBridge();
  const cache = f.ctx.atsCaches.get(GPU);

  async function launch(fields: Partial<AtsdLaunchFields>, ava: bigint): Promise<string> {
    populate(cache);
    bridge.write(9, 0x08, u64be(ava));
    bridge.write(9, 0x00, u64be(encodeLaunch(fields)));
    await tick();
    return left(cache);
  }

  it('STAT reads pending until the invalidation is done; then LAUNCH and STAT read 0', async () => {
    populate(cache);
    bridge.write(9, 0x08, u64be(0x10000000n));
    bridge.write(9, 0x00, u64be(encodeLaunch({ prs: true, pid: 5, ap: 0 })));
    assert.equal(readU64(bridge, 0x10), ATSD_STAT_PENDING);
    assert.equal(left(cache), 'abcdefghi'); // nothing done yet
    await tick();
    assert.equal(readU64(bridge, 0x10), 0n);
    assert.equal(readU64(bridge, 0x00), 0n);
    assert.equal(readU64(bridge, 0x08), 0x10000000n);
    assert.equal(left(cache), 'bcdefghi');
  });

  it('every kind of launch, with the LPID the firmware bound (5), never another guest’s', async () => {
    assert.equal(await launch({ prs: true, pid: 5, ap: 5 }, 0x10010000n), 'abdefghi'); // 64K
    assert.equal(await launch({ prs: true, pid: 5, ap: 1 }, 0x10200000n), 'abcefghi'); // 2M
    assert.equal(await launch({ prs: true, pid: 5, ap: 2 }, 0x40000000n), 'abcdfghi'); // 1G
    assert.equal(await launch({ prs: true, is: 1, pid: 5 }, 0n), 'fghi'); // whole PID
    assert.equal(await launch({ prs: false, ap: 0 }, 0x10000000n), 'abcdefgi'); // partition scope
    assert.equal(await launch({ ric: 1, prs: true, is: 1, pid: 5 }, 0n), 'abcdefgh'); // PWC
    assert.equal(await launch({ ric: 2, prs: true, is: 1, pid: 5 }, 0n), 'fgh'); // all
  });

  it('two 32-bit stores, high word first, launch once with the whole word', async () => {
    populate(cache);
    const word = u64be(encodeLaunch({ prs: true, is: 1, pid: 6 }));
    bridge.write(9, 0x00, word.subarray(0, 4));
    assert.equal(readU64(bridge, 0x10), 0n);
    bridge.write(9, 0x04, word.subarray(4, 8));
    assert.equal(readU64(bridge, 0x10), ATSD_STAT_PENDING);
    await tick();
    assert.equal(left(cache), 'abcdeghi');
  });

  it('traces each launch', async () => {
    f.ring.clear();
    await launch({ prs: true, is: 1, pid: 5 }, 0n);
    assert.deepEqual(
      f.ring.lines('nvlink2_atsd_launch').map((l) => l.slice(l.indexOf('nvlink2_atsd_launch'))),
      [
        `nvlink2_atsd_launch: ${BRIDGE}: atsd 6030200800000 lpid 5 launch ${getAtsdLaunchVal(5, 'all').toString(16)} ava 0 invalidated=5`,
      ],
    );
  });

  it('after the GPU is released its register is bound to LPID 0 (the host)', async () => {
    gpu.close();
    populate(cache);
    cache.insert({ lpid: 0, pid: 5, ea: 0x10000000n, pageSize: '4K' });
    bridge.write(9, 0x00, u64be(encodeLaunch({ prs: true, is: 1, pid: 5 })));
    await tick();
    assert.equal(cache.entries().filter((e) => e.lpid === 0).length, 0);
    assert.equal(cache.size, 9);
    gpu.open();
    gpu.attachKvm(LPID);
  });
});

describe('ATSD region: a launch through a mapping in another process', () => {
  const { f, bridge } = attachedGpuAndBridge();
  const ops = bridge.regions[0]?.ops as AtsdRegion;
  const cache = f.ctx.atsCaches.get(GPU);
  const launchWord = encodeLaunch({ prs: true, pid: 5, ap: 5 });

  it('equals the same launch through rw', async () => {
    populate(cache);
    bridge.write(9, 0x08, u64be(0x10010000n));
    bridge.write(9, 0x00, u64be(launchWord));
    await tick();
    const viaRw = { left: left(cache), page: Buffer.from(bridge.read(9, 0, 0x18)).toString('hex') };

    populate(cache);
    bridge.write(9, 0x08, u64be(0n));
    f.ring.clear();
    const grant = bridge.mmap(9, { offset: 0n, length: 0x10000n, userAddress: 0x7ffe0000n });
    assert.deepEqual(f.ring.lines('vfio_pci_npu2_mmap'), [
      `            test-1       [000]     0.001000: vfio_pci_npu2_mmap: ${BRIDGE}: 6030200800000 -> 7ffe0000 size=10000 ret=0`,
    ]);
    inSecondProcess(grant.fd, ['write64be', '8', String(0x10010000n), '0', String(launchWord)]);
    assert.equal(f.ctx.live.pollMappedLaunches(), 1);
    assert.equal(readU64(bridge, 0x10), ATSD_STAT_PENDING);
    assert.equal(
      Buffer.from(inSecondProcess(grant.fd, ['read', '16', '8']), 'hex').readBigUInt64BE(),
      ATSD_STAT_PENDING,
    );
    await tick();
    assert.equal(
      Buffer.from(inSecondProcess(grant.fd, ['read', '16', '8']), 'hex').readBigUInt64BE(),
      0n,
    );
    assert.deepEqual(
      { left: left(cache), page: Buffer.from(bridge.read(9, 0, 0x18)).toString('hex') },
      viaRw,
    );
    assert.equal(viaRw.left, 'abdefghi');
    assert.equal(ops.page?.mappingCount, 1);
    bridge.close();
    assert.equal(ops.page?.mappingCount, 0);
  });
});

describe('ATSD region: the kernel’s protocol and the mapping watcher', () => {
  const { f, bridge } = attachedGpuAndBridge();
  const cache = f.ctx.atsCaches.get(GPU);

  it('mmio_invalidate(): AVA, LAUNCH, poll STAT until 0, then the two PID-0 flushes', async () => {
    populate(cache);
    let polls = 0;
    for (const step of kernelInvalidateSteps(5, 0x10200000n, 0x1000n)) {
      if (step.ava !== undefined) bridge.write(9, 0x08, u64be(step.ava));
      bridge.write(9, 0x00, u64be(step.launch));
      await until(
        'ATSD STAT to read 0',
        () => readU64(bridge, 0x10) === 0n,
        () => {
          polls++;
          return tick();
        },
      );
    }
    assert.ok(polls >= 3);
    assert.equal(left(cache), 'abcefghi'); // the 2M page of PID 5
  });

  it('the watcher timer finds a launch written through the mapping by another process', async () => {
    populate(cache);
    const grant = bridge.mmap(9, { offset: 0n, length: 0x10000n, userAddress: 0n });
    inSecondProcess(grant.fd, [
      'write64be',
      '0',
      String(encodeLaunch({ prs: true, is: 1, pid: 6 })),
    ]);
    await until(
      'the launch to invalidate the pages of PID 6',
      () => left(cache) === 'abcdeghi',
      () => sleep(1),
    );
    await until(
      'LAUNCH and STAT to read 0 once done',
      () => readU64(bridge, 0x00) === 0n && readU64(bridge, 0x10) === 0n,
      tick,
    );
    assert.equal(left(cache), 'abcdeghi', 'only the pages of PID 6 went');
  });
});

describe('ATSD region bounds', () => {
  it('mmap must be exactly one 64 KiB page; rw past the page is EINVAL', () => {
    const f = fixture();
    try {
      const bridge = f.open(BRIDGE);
      const isErr = (code: string) => (e: unknown) => e instanceof VfioError && e.code === code;
      assert.throws(
        () => bridge.mmap(9, { offset: 0n, length: 0x1000n, userAddress: 0n }),
        isErr('EINVAL'),
      );
      assert.throws(
        () => bridge.mmap(9, { offset: 0n, length: 0x20000n, userAddress: 0n }),
        isErr('EINVAL'),
      );
      assert.throws(() => bridge.read(9, 0x10000, 8), isErr('EINVAL'));
      assert.equal(bridge.read(9, 0xfffc, 8).length, 4);
    } finally {
      f.done();
    }
  });
});

describe('ATSD region without an ATSD register', () => {
  it('size 0: every access and every mmap is EINVAL, the capabilities are still there', async () => {
    const { generateWitherspoon } = await import('../platform/index.ts');
    const f = fixture({}, generateWitherspoon({ atsdEntries: 0 }));
    try {
      const bridge = f.open(BRIDGE);
      const isErr = (code: string) => (e: unknown) => e instanceof VfioError && e.code === code;
      assert.equal(bridge.regions[0]?.size, 0n);
      assert.throws(() => bridge.read(9, 0, 8), isErr('EINVAL'));
      assert.throws(() => bridge.write(9, 0, new Uint8Array(8)), isErr('EINVAL'));
      assert.throws(
        () => bridge.mmap(9, { offset: 0n, length: 0x10000n, userAddress: 0n }),
        isErr('EINVAL'),
      );
      assert.deepEqual(
        bridge.describeRegion(9).caps.map((c) => c.id),
        [2, 4, 5],
      );
      assert.ok(f.logs.some((l) => l.device === BRIDGE && l.message === 'No available ATSD found'));
    } finally {
      f.done();
    }
  });
});
