/**
 * Both Grace machines over the wire: `dt generate --machine …` writes the tree, `serve --dt`
 * serves its GPUs, and a vfio-user client in this process (the server is a second process)
 * reads what a VMM reads: region info of the fake BARs byte for byte with their sparse-mmap
 * area, BAR sizing in config space by REGION_WRITE/REGION_READ, all-ones past the memory,
 * bytes written through the client's mapping of usemem read back by REGION_READ and the other
 * way, resmem after usemem in the same memory, and a failed probe leaving the GPU unserved
 * (devices.json says why).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  Command,
  DeviceFeature,
  DeviceFeatureFlag,
  ReplyError,
  VfioUserClient,
} from '../src/vfio-user/index.ts';
import { runCli } from './support/cli.ts';
import { FLAG_ERROR, frame, pack } from './support/frames.ts';
import {
  connectWhenFree,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';

const CONFIG = 7;
const GPU = '0009:01:00.0';
const MiB = 1n << 20n;
const work = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-grace-'));
after(() => rmSync(work, { recursive: true, force: true }));

function generate(name: string, ...flags: string[]): string {
  const file = join(work, name);
  const r = runCli(['dt', 'generate', ...flags, '-o', file]);
  assert.equal(r.status, 0, r.stderr);
  return file;
}

const u32 = (b: Uint8Array, at = 0) => new DataView(b.buffer, b.byteOffset).getUint32(at, true);
const ones = (n: number) => new Uint8Array(n).fill(0xff);

/** The 64 bytes of a fake BAR's region info as the kernel's driver builds them (by hand). */
function fakeBarInfo(index: number, barSize: bigint, memlength: bigint): Uint8Array {
  const b = new Uint8Array(64);
  const v = new DataView(b.buffer);
  v.setUint32(0, 64, true); // argsz
  v.setUint32(4, 0xf, true); // READ|WRITE|MMAP|CAPS
  v.setUint32(8, index, true);
  v.setUint32(12, 32, true); // cap_offset
  v.setBigUint64(16, barSize, true);
  v.setUint16(32, 1, true); // VFIO_REGION_INFO_CAP_SPARSE_MMAP
  v.setUint16(34, 1, true);
  v.setUint32(40, 1, true); // nr_areas
  v.setBigUint64(56, memlength, true); // areas[0] = {0, memlength}
  return b;
}

describe('grace-hopper over vfio-user', () => {
  // 2 GiB + 256 MiB: usemem 1 GiB in a 2 GiB BAR (rounded before the 512 MiB round-down),
  // resmem 1.25 GiB in a 2 GiB BAR
  const USEMEM = 1024n * MiB;
  const RESMEM = 1280n * MiB;
  let serve: ServeProcess;
  let gpu: VfioUserClient;
  before(async () => {
    serve = await startServe([
      '--dt',
      generate('gh.dtb', '--machine', 'grace-hopper', '--gpu-mem', '2304M'),
    ]);
    gpu = await VfioUserClient.connect(serve.socket(GPU));
  });
  after(async () => {
    gpu.close();
    await serve.stop();
  });

  it('devices.json: the GPU is nvgrace and served', () => {
    const [entry] = serve.devices();
    assert.equal(entry?.address, GPU);
    assert.equal(entry?.result, 'nvgrace');
    assert.ok(entry?.socket);
  });

  it('region info of BAR4 and BAR2: the fake BARs, byte for byte (offset: into the fd)', async () => {
    const use = await gpu.getRegionInfo(4, 64);
    assert.deepEqual(use.raw, fakeBarInfo(4, 2048n * MiB, USEMEM));
    assert.ok(use.fd !== null);
    const res = await gpu.getRegionInfo(2, 64);
    const expected = fakeBarInfo(2, 2048n * MiB, RESMEM);
    // resmem starts USEMEM bytes into the GPU's memory: the offset to give mmap()
    new DataView(expected.buffer).setBigUint64(24, USEMEM, true);
    assert.deepEqual(res.raw, expected);
  });

  it('BAR sizing in config space: all-ones written, the size mask and 64-bit prefetchable read', async () => {
    for (const at of [0x18, 0x1c, 0x20, 0x24]) {
      assert.equal(await gpu.regionWrite(CONFIG, BigInt(at), ones(4)), 4);
    }
    // 2 GiB BARs: low dword 0x8000000c, high dword 0xffffffff
    for (const at of [0x18, 0x20]) {
      assert.equal(u32(await gpu.regionRead(CONFIG, BigInt(at), 4)), 0x8000000c);
      assert.equal(u32(await gpu.regionRead(CONFIG, BigInt(at + 4), 4)), 0xffffffff);
    }
    // a guest address, then VFIO_DEVICE_RESET clears bar_val
    await gpu.regionWrite(CONFIG, 0x20n, Uint8Array.of(0x0c, 0, 0, 0x80));
    assert.equal(u32(await gpu.regionRead(CONFIG, 0x20n, 4)), 0x8000000c);
    await gpu.reset();
    assert.equal(u32(await gpu.regionRead(CONFIG, 0x20n, 4)), 0x0000000c);
    assert.equal(u32(await gpu.regionRead(CONFIG, 0x24n, 4)), 0);
  });

  it('usemem through the mapping and REGION_READ, both ways; all-ones past the memory', async () => {
    const mapped = await gpu.mapRegion(4);
    try {
      mapped.write(0x1000n, Uint8Array.of(0xde, 0xad, 0xbe, 0xef));
      assert.deepEqual(await gpu.regionRead(4, 0x1000n, 4), Uint8Array.of(0xde, 0xad, 0xbe, 0xef));
      assert.equal(await gpu.regionWrite(4, USEMEM - 2n, Uint8Array.of(1, 2, 3, 4)), 4);
      assert.deepEqual(mapped.read(USEMEM - 2n, 2), Uint8Array.of(1, 2));
      assert.deepEqual(await gpu.regionRead(4, USEMEM - 2n, 4), Uint8Array.of(1, 2, 0xff, 0xff));
    } finally {
      mapped.unmap();
    }
  });

  it('resmem: written by REGION_WRITE, seen through its own mapping at its offset', async () => {
    await gpu.regionWrite(2, 0n, Uint8Array.of(0x5a, 0xa5));
    const mapped = await gpu.mapRegion(2);
    try {
      assert.deepEqual(mapped.read(0n, 2), Uint8Array.of(0x5a, 0xa5));
    } finally {
      mapped.unmap();
    }
  });
});

describe('a Grace GPU does not migrate (nvgrace-gpu sets no mig_ops)', () => {
  const ENOTTY = 25;
  const { GET, SET } = DeviceFeatureFlag;
  let source: ServeProcess;
  let destination: ServeProcess;
  let gpu: VfioUserClient | undefined;
  let msgId = 0x7100;
  before(async () => {
    const dt = generate('gh-mig.dtb', '--machine', 'grace-hopper', '--gpu-mem', '2304M');
    source = await startServe(['--dt', dt]);
    destination = await startServe(['--dt', dt]);
  });
  after(async () => {
    gpu?.close();
    await source.stop();
    await destination.stop();
  });

  /** The errno (0: success) of a raw command's reply. */
  async function errnoOf(command: Command, payload: Uint8Array): Promise<number> {
    gpu ??= await connectWhenFree(source, GPU); // migrate's session may still be closing
    const id = msgId++;
    gpu.sendRaw(frame(id, command, payload));
    const m = await gpu.expectReply(id, command);
    return m.header.flags & FLAG_ERROR ? m.header.errno : 0;
  }

  it('migrate refuses in one ENOTTY line, exit 1, nothing migrated', () => {
    const from = source.socket(GPU);
    const r = runCli(['migrate', '--from', from, '--to', destination.socket(GPU)]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^vfio-nvlink2: migrate: ENOTTY: [^\n]*\n$/);
  });

  it('every migration and DMA-logging feature, MIG_DATA_READ and MIG_DATA_WRITE are ENOTTY', async () => {
    const feature = (flags: number, data = new Uint8Array(24)) =>
      errnoOf(Command.DEVICE_FEATURE, Buffer.concat([pack(8 + data.length, flags), data]));
    assert.equal(await feature(GET | DeviceFeature.MIGRATION), ENOTTY, 'MIGRATION');
    assert.equal(await feature(GET | DeviceFeature.MIG_DEVICE_STATE), ENOTTY, 'state GET');
    assert.equal(await feature(SET | DeviceFeature.MIG_DEVICE_STATE), ENOTTY, 'state SET');
    assert.equal(await feature(GET | DeviceFeature.MIG_DATA_SIZE), ENOTTY, 'MIG_DATA_SIZE');
    assert.equal(await feature(SET | DeviceFeature.DMA_LOGGING_START), ENOTTY, 'logging');
    assert.equal(await feature(SET | DeviceFeature.DMA_LOGGING_STOP), ENOTTY, 'logging stop');
    assert.equal(await feature(GET | DeviceFeature.DMA_LOGGING_REPORT), ENOTTY, 'report');
    assert.equal(await errnoOf(Command.MIG_DATA_READ, pack(8, 4096)), ENOTTY, 'MIG_DATA_READ');
    const write = Buffer.concat([pack(12, 4), new Uint8Array(4)]);
    assert.equal(await errnoOf(Command.MIG_DATA_WRITE, write), ENOTTY, 'MIG_DATA_WRITE');
  });
});

describe('grace-blackwell over vfio-user', () => {
  let serve: ServeProcess;
  let gpu: VfioUserClient;
  before(async () => {
    serve = await startServe([
      '--dt',
      generate('gb.dtb', '--machine', 'grace-blackwell', '--gpu-mem', '3M'),
    ]);
    gpu = await VfioUserClient.connect(serve.socket(GPU));
  });
  after(async () => {
    gpu.close();
    await serve.stop();
  });

  it('BAR4 is all of the memory; BAR2 the physical BAR1, a plain BAR', async () => {
    const use = await gpu.getRegionInfo(4, 64);
    assert.deepEqual(use.raw, fakeBarInfo(4, 4n * MiB, 3n * MiB));
    const bar1 = await gpu.getRegionInfo(2, 64);
    assert.equal(bar1.info.size, 256n * MiB);
    assert.equal(bar1.info.flags, 0x7, 'READ|WRITE|MMAP, no sparse-mmap');
    await gpu.regionWrite(CONFIG, 0x18n, ones(4));
    assert.equal(u32(await gpu.regionRead(CONFIG, 0x18n, 4)), 0xf000000c);
    await gpu.regionWrite(CONFIG, 0x20n, ones(4));
    assert.equal(u32(await gpu.regionRead(CONFIG, 0x20n, 4)), 0xffc0000c);
  });

  it('the DVSEC says the MIG bug is fixed (read in extended config space)', async () => {
    const dvsec = await gpu.regionRead(CONFIG, 0x100n, 16);
    assert.equal(u32(dvsec, 0), 0x00010023); // DVSEC, version 1, last
    assert.equal(u32(dvsec, 4), 0x010010de); // NVIDIA, length 0x10
    assert.equal(u32(dvsec, 8), 0x00010003); // id 3, bitmap bit 0
  });
});

describe('a probe that fails', () => {
  it('C2C link down: ETIME, the GPU is not served', async () => {
    const serve = await startServe([
      '--dt',
      generate('down.dtb', '--machine', 'grace-hopper', '--c2c-link', 'down'),
    ]);
    try {
      const [entry] = serve.devices();
      assert.equal(entry?.result, 'error');
      assert.equal(entry?.errno, 'ETIME');
      assert.equal(entry?.socket, undefined);
      assert.match(serve.stdout(), /error \(ETIME\)\s+-/);
    } finally {
      await serve.stop();
    }
  });

  it('serve --device of that GPU refuses in one line, exit 1', () => {
    const r = runCli([
      'serve',
      '--dt',
      join(work, 'down.dtb'),
      '--device',
      GPU,
      '--socket-path',
      join(work, 'down.sock'),
    ]);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^vfio-nvlink2: serve: PLATFORM: 0009:01:00\.0 is no vfio device: probe failed: ETIME: device not ready after 30 s/,
    );
  });
});

describe('guest: the QEMU options for Grace GPUs', () => {
  it('a root port per GPU sized for BAR2 + BAR4, 8 generic-initiator NUMA nodes each', async () => {
    const serve = await startServe([
      '--dt',
      generate('gh2.dtb', '--machine', 'grace-hopper', '--gpus', '2', '--gpu-mem', '2304M'),
    ]);
    try {
      const r = runCli(['guest', '--socket-dir', serve.dir, '--json']);
      assert.equal(r.status, 0, r.stderr);
      const plan = JSON.parse(r.stdout) as {
        args: string[];
        gpus: { address: string; pref64Reserve: string; nodes: number[]; args: string[] }[];
      };
      assert.deepEqual(
        plan.gpus.map((g) => [g.address, g.pref64Reserve, g.nodes.join(',')]),
        [
          [GPU, '0x100000000', '1,2,3,4,5,6,7,8'],
          ['0019:01:00.0', '0x100000000', '9,10,11,12,13,14,15,16'],
        ],
      );
      assert.ok(
        plan.args.includes(
          '-device pcie-root-port,id=rp1,bus=pcie.0,chassis=2,slot=2,pref64-reserve=4G',
        ),
      );
      assert.ok(plan.args.includes('-object acpi-generic-initiator,id=gi16,pci-dev=gpu1,node=16'));
      assert.ok(plan.args.includes('-numa node,nodeid=0,memdev=mem'));
      const text = runCli(['guest', '--socket-dir', serve.dir]);
      assert.match(text.stdout, /^# 0009:01:00\.0 GH200 120GB: root port rp0 with 4G/);
    } finally {
      await serve.stop();
    }
  });
});

describe('dt generate --machine and dt doctor on Grace trees', () => {
  it('options of another machine and bad values are usage errors (exit 2) naming the flag', () => {
    const cases: [string[], RegExp][] = [
      [['--machine', 'grace'], /--machine must be witherspoon, grace-hopper, grace-blackwell/],
      [
        ['--machine', 'grace-hopper', '--gpu-ram', '16'],
        /--gpu-ram is not an option of --machine grace-hopper/,
      ],
      [['--gpu-mem', '8G'], /--gpu-mem is not an option of --machine witherspoon/],
      [['--machine', 'grace-blackwell', '--gpus', '5'], /--gpus: must be 1\.\.4, not 5/],
      [
        ['--machine', 'grace-hopper', '--gpu-mem', 'lots'],
        /--gpu-mem: must be a size from 0 to 1P \(e\.g\. 96G, 1536M, 0x40000000\), not 'lots'/,
      ],
      [['--machine', 'grace-hopper', '--omit', 'x@GPU3'], /--omit: no GPU named GPU3 has x/],
    ];
    for (const [flags, message] of cases) {
      const r = runCli(['dt', 'generate', ...flags, '--dts']);
      assert.equal(r.status, 2, flags.join(' '));
      assert.match(r.stderr, message);
    }
  });

  it('doctor: the fake BARs of each GPU, the probe errno of a faulted one', () => {
    const ok = runCli([
      'dt',
      'doctor',
      generate('d1.dtb', '--machine', 'grace-hopper', '--gpus', '2'),
    ]);
    assert.match(
      ok.stdout,
      /0019:01:00\.0 {2}10de:2342 {2}gpu {3}1 {6}nvgrace {2}BAR4 usemem 95 GiB in 128 GiB at 0x410000000000; BAR2 resmem 1 GiB in 1 GiB at 0x4117c0000000/,
    );
    assert.match(ok.stdout, /2 functions: 0 nvlink2, 2 nvgrace, 0 plain, 0 error$/m);
    const bad = runCli([
      'dt',
      'doctor',
      '--json',
      generate('d2.dtb', '--machine', 'grace-hopper', '--gpu-mem', '1G'),
    ]);
    const [entry] = JSON.parse(bad.stdout) as { result: string; errno: string }[];
    assert.deepEqual([entry?.result, entry?.errno], ['error', 'EINVAL']);
  });
});

describe('inspect of a Grace GPU', () => {
  it('BAR4 is 64-bit prefetchable in process and over the wire, and both say the same', async () => {
    const dtb = generate('inspect.dtb', '--machine', 'grace-hopper');
    const local = runCli(['inspect', '--dt', dtb, GPU, '--json']);
    assert.equal(local.status, 0, local.stderr);
    type Bars = { config: { bars: { index: number; type: string; prefetchable: boolean }[] } };
    const bars = (JSON.parse(local.stdout) as Bars).config.bars;
    // read as one 4 KiB block, the driver patches BAR2/3 only (its else-if): BAR4 is read alone
    assert.deepEqual(
      bars.map((b) => `${b.index} ${b.type}${b.prefetchable ? ' pref' : ''}`),
      ['0 mem64', '2 mem64 pref', '4 mem64 pref'],
    );
    const serve = await startServe(['--dt', dtb]);
    try {
      const remote = runCli(['inspect', serve.socket(GPU), '--json']);
      assert.equal(remote.status, 0, remote.stderr);
      assert.deepEqual(JSON.parse(remote.stdout), JSON.parse(local.stdout));
    } finally {
      await serve.stop();
    }
  });
});

describe('the memory budget covers Grace device memory', () => {
  it('a usemem write past --memory-budget is ENOMEM; state.json counts the GPU memory', async () => {
    const serve = await startServe([
      '--dt',
      generate('budget.dtb', '--machine', 'grace-blackwell', '--gpu-mem', '64M'),
      '--memory-budget',
      '1M',
    ]);
    const gpu = await VfioUserClient.connect(serve.socket(GPU));
    try {
      const page = new Uint8Array(64 * 1024).fill(7);
      for (let i = 0n; i < 8n; i++) await gpu.regionWrite(4, i * 0x10000n, page);
      await assert.rejects(
        gpu.regionWrite(4, 0x800000n, new Uint8Array(1024 * 1024)),
        (e: unknown) => e instanceof ReplyError && e.remoteErrno === 12,
      );
      assert.deepEqual(await gpu.regionRead(4, 0x800000n, 4), new Uint8Array(4), 'nothing landed');
      await waitFor('state.json to count the GPU memory', () => {
        const g = serve.state().memory.gpus.find((x) => x.address === GPU);
        return g !== undefined && g.gpuRam === 8 * 64 * 1024 && serve.state().memory.refused === 1;
      });
    } finally {
      gpu.close();
      await serve.stop();
    }
  });
});
