/**
 * `vfio-nvlink2 guest` against the real server in a second process: the placement QEMU 4.1–8.1
 * would have built from what the sockets report (JSON, exit status, QEMU's errors on stderr),
 * a DTS fragment that dtc accepts and whose DTB equals `-o FILE.dtb`, clear errors naming the
 * device for a missing or busy socket, and every connection released afterwards.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, runCliInProcess } from './support/cli.ts';
import { hasDtc, runDtc } from './support/fdt/dtc.ts';
import { connectWhenFree, GPU, type ServeProcess, startServe } from './support/serve-process.ts';

const GPUS = [
  '0002:01:00.0',
  '0003:02:00.0',
  '0004:03:00.0',
  '0005:01:00.0',
  '0006:02:00.0',
  '0007:03:00.0',
];

interface GuestJson {
  numaNodes: number;
  vphbs: {
    index: number;
    node: string;
    ramWindow: string;
    atsdWindow: string;
    mmioAtsd: string[] | null;
    errors: string[];
    gpus: {
      address: string;
      gpa: string;
      size: string;
      numaId: number;
      ramPhandle: string;
      links: { address: string; atsdGpa: string | null; linkSpeed: number }[];
    }[];
  }[];
}

/** `guest ...args` in this process, a client of the spawned server. */
function guest(...args: string[]) {
  return runCliInProcess(['guest', ...args]);
}

/** `guest ...args` spawned as the bin (the real process path: exit status, both streams). */
function guestSpawned(...args: string[]) {
  return runCli(['guest', ...args]);
}

let serve: ServeProcess;
let tmp: string;
before(async () => {
  serve = await startServe();
  tmp = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-guest-'));
});
after(async () => {
  await serve.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('guest --socket-dir over the real server', () => {
  // Linux 5.12 put each chip's 3 GPUs and 6 bridges in one IOMMU group (npu-dma.c, see
  // src/platform/host.test.ts): two vPHBs, chip 0's group first (devices.json order). QEMU
  // 8.1 then, per vPHB: devfns slot 0..8 in list order (6 bridges, then 3 GPUs), slots by tgt in
  // devfn order (spapr_phb_pci_collect_nvgpu), GPU RAM from 64 TiB + 2 TiB × index, ATSD from
  // 128 TiB + 0x120000 × index; NUMA ids from MAX(1, 2) = 2 in reset order, newest vPHB first
  // (vPHB 1's GPUs 2, 3, 4; vPHB 0's 5, 6, 7).
  it('--phb-per-group --json: one vPHB per NPU group, RAM from 64 TiB, ATSD from 128 TiB', async () => {
    const r = await guest(
      '--socket-dir',
      serve.dir,
      '--phb-per-group',
      '--numa-nodes',
      '2',
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as GuestJson;
    assert.equal(out.numaNodes, 2);
    assert.equal(out.vphbs.length, 2);
    out.vphbs.forEach((v, phb) => {
      const ram = 0x4000_0000_0000n + BigInt(phb) * 0x200_0000_0000n;
      const atsd = 0x8000_0000_0000n + BigInt(phb) * 0x12_0000n;
      const hex = (n: bigint) => `0x${n.toString(16)}`;
      assert.equal(v.index, phb);
      assert.equal(v.node, `pci@80000002000000${phb}`);
      assert.deepEqual(v.errors, []);
      assert.deepEqual(
        v.gpus.map((g) => [g.address, g.gpa, g.size, g.numaId, g.ramPhandle]),
        [0, 1, 2].map((k) => [
          GPUS[3 * phb + k],
          hex(ram + BigInt(k) * 0x20_0000_0000n),
          '0x2000000000',
          phb === 0 ? 5 + k : 2 + k,
          hex(BigInt((0x110000ff | (k << 8) | (phb << 16)) >>> 0)),
        ]),
      );
      const pages = [0, 1, 2, 3, 4, 5].map((m) => hex(atsd + BigInt(m) * 0x10000n));
      assert.deepEqual(
        v.gpus.flatMap((g) => g.links.map((l) => [l.atsdGpa, l.linkSpeed])),
        pages.map((a) => [a, 8]),
      );
      assert.deepEqual(v.mmioAtsd, pages);
    });
  });

  it('one vPHB (default): six GPUs back to back, and QEMU’s IOMMU-group error (exit 1)', () => {
    const r = guestSpawned('--socket-dir', serve.dir, '--json');
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^vfio-nvlink2: guest: PLACEMENT: vPHB 0: ATSD requires separate vPHB per GPU IOMMU group/m,
    );
    // 2 links per GPU: QEMU's loop stops at 8 before reaching its "Only 8" line.
    assert.doesNotMatch(r.stderr, /Only 8 ATSD registers supported/);
    const v = (JSON.parse(r.stdout) as GuestJson).vphbs[0]!;
    assert.deepEqual(
      v.gpus.map((g) => [g.address, g.gpa, g.numaId]),
      GPUS.map((a, k) => [
        a,
        `0x${(0x4000_0000_0000n + BigInt(k) * 0x20_0000_0000n).toString(16)}`,
        k + 1,
      ]),
    );
    assert.equal(v.mmioAtsd, null);
  });

  // --phb 3: vPHBs 3 and 4 both come from -device; 4 is reset first (NUMA 1-3), 3 gets 4-6.
  it('the table names every device with its role and guest address', async () => {
    const r = await guest('--socket-dir', serve.dir, '--phb', '3', '--phb-per-group');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^vPHB 3 \(pci@800000020000003\): GPU RAM window 0x460000000000/m);
    assert.match(r.stdout, /0002:01:00\.0 +06\.0 +gpu +0x3e000000000 +0x460000000000 +128 GiB +4/);
    assert.match(
      r.stdout,
      /0000:00:00\.1 +01\.0 +bridge \(link 1\) +0x3e000000000 +0x800000370000 +64 KiB/,
    );
  });

  it('--dts is accepted by dtc -I dts -O dtb, and -o FILE.dtb is the same blob', {
    skip: hasDtc() ? false : 'dtc is not installed',
  }, async () => {
    const dtb = join(tmp, 'guest.dtb');
    const r = await guest('--socket-dir', serve.dir, '--phb-per-group', '--dts', '-o', dtb);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /memory@400000000000 \{/);
    assert.match(r.stdout, /ibm,associativity = <0x4 0x4 0x4 0x4 0x4>;/);
    // The GPU at guest devfn 0x30: populate_resource_props' config entry, then BAR0 (0x10,
    // 32-bit, 16 MiB), BAR1 (0x14, 64-bit, 16 GiB), BAR3 (0x1c, 64-bit, 32 MiB), sizes as the
    // server's region info reports them.
    assert.match(
      r.stdout,
      /3d-controller@6 \{\n\t+reg = <0x3000 0x0 0x0 0x0 0x0 0x2003010 0x0 0x0 0x0 0x1000000 0x3003014 0x0 0x0 0x4 0x0 0x300301c 0x0 0x0 0x0 0x2000000>;/,
    );
    const compiled = runDtc(r.stdout, 'dts', 'dtb');
    assert.ok(compiled.ok, compiled.stderr);
    assert.deepEqual(compiled.output, new Uint8Array(readFileSync(dtb)));
  });

  it('connections are released: the GPU takes a new client afterwards', async () => {
    const client = await connectWhenFree(serve, GPU);
    client.close();
  });
});

describe('guest errors name the device', () => {
  it('a missing socket', async () => {
    const r = await guest(join(tmp, '0002:01:00.0.sock'));
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^vfio-nvlink2: guest: ENOENT: 0002:01:00\.0: cannot connect to .*0002:01:00\.0\.sock: .*ENOENT/,
    );
  });

  it('a device another client holds', async () => {
    const holder = await connectWhenFree(serve, GPU);
    try {
      const r = await guest(serve.socket(GPU));
      assert.equal(r.status, 1);
      assert.match(
        r.stderr,
        /^vfio-nvlink2: guest: EBUSY: 0002:01:00\.0: cannot connect to .*: another client holds it$/m,
      );
    } finally {
      holder.close();
    }
  });

  it('a directory without devices.json; bad usage', async () => {
    assert.match((await guest('--socket-dir', tmp)).stderr, /no .*devices\.json/);
    const r = await guest('--socket-dir', tmp, '--dts', '--json');
    assert.equal(r.status, 2);
    assert.equal((await guest('--socket-dir', serve.dir, '--phb', '31')).status, 2);
  });
});
