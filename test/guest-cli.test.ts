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
import { hasDtc, runDtc } from '../src/fdt/testing/dtc.ts';
import { runCli } from './support/cli.ts';
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

function guest(...args: string[]) {
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
  it('--phb-per-group --json: one vPHB per GPU group, RAM from 64 TiB, ATSD from 128 TiB', () => {
    const r = guest('--socket-dir', serve.dir, '--phb-per-group', '--numa-nodes', '2', '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as GuestJson;
    assert.equal(out.numaNodes, 2);
    assert.equal(out.vphbs.length, 6);
    out.vphbs.forEach((v, k) => {
      const ram = 0x4000_0000_0000n + BigInt(k) * 0x200_0000_0000n;
      const atsd = 0x8000_0000_0000n + BigInt(k) * 0x12_0000n;
      assert.equal(v.index, k);
      assert.equal(v.node, `pci@80000002000000${k}`);
      assert.deepEqual(v.errors, []);
      assert.equal(v.gpus.length, 1);
      const g = v.gpus[0]!;
      assert.equal(g.address, GPUS[k]);
      assert.equal(g.gpa, `0x${ram.toString(16)}`);
      assert.equal(g.size, '0x2000000000');
      assert.equal(g.numaId, 2 + k);
      assert.equal(g.ramPhandle, `0x${(0x110000ff | (k << 16)).toString(16)}`);
      assert.deepEqual(
        g.links.map((l) => [l.atsdGpa, l.linkSpeed]),
        [
          [`0x${atsd.toString(16)}`, 8],
          [`0x${(atsd + 0x10000n).toString(16)}`, 8],
        ],
      );
      assert.deepEqual(v.mmioAtsd, [
        `0x${atsd.toString(16)}`,
        `0x${(atsd + 0x10000n).toString(16)}`,
      ]);
    });
  });

  it('one vPHB (default): six GPUs back to back, and QEMU’s IOMMU-group error (exit 1)', () => {
    const r = guest('--socket-dir', serve.dir, '--json');
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^vfio-nvlink2: guest: PLACEMENT: vPHB 0: ATSD requires separate vPHB per GPU IOMMU group/m,
    );
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

  it('the table names every device with its role and guest address', () => {
    const r = guest('--socket-dir', serve.dir, '--phb', '3', '--phb-per-group');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^vPHB 3 \(pci@800000020000003\): GPU RAM window 0x460000000000/m);
    assert.match(r.stdout, /0002:01:00\.0 +02\.0 +gpu +0x3e000000000 +0x460000000000 +128 GiB +1/);
    assert.match(
      r.stdout,
      /0000:00:00\.1 +01\.0 +bridge \(link 1\) +0x3e000000000 +0x800000370000 +64 KiB/,
    );
  });

  it('--dts is accepted by dtc -I dts -O dtb, and -o FILE.dtb is the same blob', {
    skip: hasDtc() ? false : 'dtc is not installed',
  }, () => {
    const dtb = join(tmp, 'guest.dtb');
    const r = guest('--socket-dir', serve.dir, '--phb-per-group', '--dts', '-o', dtb);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /memory@400000000000 \{/);
    assert.match(r.stdout, /ibm,associativity = <0x4 0x1 0x1 0x1 0x1>;/);
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
  it('a missing socket', () => {
    const r = guest(join(tmp, '0002:01:00.0.sock'));
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^vfio-nvlink2: guest: ENOENT: 0002:01:00\.0: cannot connect to .*0002:01:00\.0\.sock: .*ENOENT/,
    );
  });

  it('a device another client holds', async () => {
    const holder = await connectWhenFree(serve, GPU);
    try {
      const r = guest(serve.socket(GPU));
      assert.equal(r.status, 1);
      assert.match(
        r.stderr,
        /^vfio-nvlink2: guest: EBUSY: 0002:01:00\.0: cannot connect to .*: another client holds it$/m,
      );
    } finally {
      holder.close();
    }
  });

  it('a directory without devices.json; bad usage', () => {
    assert.match(guest('--socket-dir', tmp).stderr, /no .*devices\.json/);
    const r = guest('--socket-dir', tmp, '--dts', '--json');
    assert.equal(r.status, 2);
    assert.equal(guest('--socket-dir', serve.dir, '--phb', '31').status, 2);
  });
});
