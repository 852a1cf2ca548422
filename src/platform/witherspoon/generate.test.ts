import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dtc, runDtc } from '../../../test/support/fdt/dtc.ts';
import {
  type Fdt,
  type FdtNode,
  parseFdt,
  readAllU32,
  readAllU64,
  readString,
  readU32,
  readU64,
  serializeFdt,
  toDts,
} from '../../fdt/index.ts';
import { generateWitherspoon, type WitherspoonOptions } from './index.ts';
import { tgtFromSystemAddress } from './phys-map.ts';

const VARIANTS: Partial<WitherspoonOptions>[] = [
  { gpus: 6, gpuRamGiB: 16, memoryMap: '4t-down' },
  { gpus: 6, gpuRamGiB: 32, memoryMap: '4t-down' },
  { gpus: 4, gpuRamGiB: 16, memoryMap: '4t-down' },
  { gpus: 4, gpuRamGiB: 32, memoryMap: '4t-down' },
  { gpus: 4, gpuRamGiB: 16, memoryMap: '4t-up' },
  { gpus: 4, gpuRamGiB: 32, memoryMap: '4t-up' },
];

/** The same nodes, in order, with the same property names and bytes. */
function assertSameTree(a: Fdt, b: Fdt): void {
  const flat = (f: Fdt) =>
    [...f.root.walk()].map((n) => ({
      path: n.path,
      props: n.properties.map((p) => [p.name, Buffer.from(p.value).toString('hex')]),
    }));
  assert.deepEqual(flat(b), flat(a));
}

const pciNodes = (fdt: Fdt, vendor: number) =>
  [...fdt.root.walk()].filter(
    (n) => n.hasProperty('vendor-id') && readU32(n, 'vendor-id') === vendor,
  );
const bridges = (fdt: Fdt) =>
  pciNodes(fdt, 0x1014).filter((n) => readU32(n, 'device-id') === 0x04ea);
const gpus = (fdt: Fdt) => pciNodes(fdt, 0x10de);
const phandle = (n: FdtNode) => readU32(n, 'phandle');

for (const v of VARIANTS) {
  const label = `${v.gpus} GPUs, ${v.gpuRamGiB} GiB, ${v.memoryMap}`;
  test(`${label}: dtc accepts the blob and the tree survives dtb → dts → dtb`, () => {
    const fdt = generateWitherspoon(v);
    const blob = serializeFdt(fdt);
    const dts = new TextDecoder().decode(dtc(blob, 'dtb', 'dts'));
    const again = parseFdt(dtc(dts, 'dts', 'dtb'), 'dtc');
    assertSameTree(fdt, again);
    assert.equal(toDts(again), toDts(fdt));
    // Our own DTS text compiles too.
    assert.ok(runDtc(toDts(fdt), 'dts', 'dtb').ok);
  });

  test(`${label}: GPUs, bridges per GPU, IDs and cross links`, () => {
    const fdt = generateWitherspoon(v);
    const perGpu = v.gpus === 6 ? 2 : 3;
    assert.equal(gpus(fdt).length, v.gpus);
    assert.equal(bridges(fdt).length, v.gpus! * perGpu);
    for (const gpu of gpus(fdt)) {
      assert.equal(readU32(gpu, 'device-id'), v.gpuRamGiB === 32 ? 0x1db5 : 0x1db1);
      assert.equal(readU32(gpu, 'class-code'), 0x030200);
      for (const p of [
        'revision-id',
        'subsystem-vendor-id',
        'subsystem-id',
        'ibm,loc-code',
        'phandle',
      ]) {
        assert.ok(gpu.hasProperty(p), `${gpu.path} ${p}`);
      }
      const npu = readAllU32(gpu, 'ibm,npu');
      assert.equal(npu.length, perGpu);
      npu.forEach((ph, n) => {
        const bridge = fdt.findByPhandle(ph)!;
        assert.equal(readU32(bridge, 'ibm,gpu'), phandle(gpu));
        assert.equal(readString(bridge, 'ibm,loc-code'), readString(gpu, 'ibm,loc-code'));
        // GPU k's n-th bridge is devfn (k << 3) + n.
        const devfn = (readU32(bridge, 'reg') >> 8) & 0xff;
        assert.equal(devfn & 7, n);
      });
    }
    for (const b of bridges(fdt)) {
      assert.equal(readU32(b, 'class-code'), 0x068001);
      const mem = fdt.findByPhandle(readU32(b, 'memory-region'))!;
      const [base, size] = readAllU64(mem, 'reg');
      assert.equal(size, 0x20_0000_0000n);
      assert.equal(readU64(b, 'ibm,device-tgt-addr'), tgtFromSystemAddress(base!));
      assert.equal(readU32(b, 'ibm,nvlink-speed'), 0x8);
      const link = fdt.findByPhandle(readU32(b, 'ibm,nvlink'))!;
      assert.equal(link.parent?.name, 'npu@5011000');
    }
  });
}

test('6-GPU link table and slot labels per socket (witherspoon.c Sequoia)', () => {
  const fdt = generateWitherspoon({ gpus: 6 });
  const npu = fdt.findNode('/xscom@603fc00000000/npu@5011000')!;
  assert.deepEqual(
    npu.children.map((l) => [
      readU32(l, 'ibm,npu-link-index'),
      readU32(l, 'ibm,npu-group-id'),
      readString(l, 'ibm,slot-label'),
    ]),
    [
      [0, 0, 'GPU0'],
      [1, 0, 'GPU0'],
      [2, 1, 'GPU1'],
      [3, 1, 'GPU1'],
      [4, 2, 'GPU2'],
      [5, 2, 'GPU2'],
    ],
  );
  const labels = fdt
    .findNode('/xscom@623fc00000000/npu@5011000')!
    .children.map((l) => readString(l, 'ibm,slot-label'));
  assert.deepEqual(labels, ['GPU3', 'GPU3', 'GPU4', 'GPU4', 'GPU5', 'GPU5']);
  // g2: g1, g0, g1, n4, g0, n5
  const byLabel = new Map(gpus(fdt).map((g) => [readString(g, 'ibm,loc-code'), g]));
  const g2 = byLabel.get('GPU2')!;
  const peers = readAllU32(g2, 'ibm,nvlink-peers').map((p) => fdt.findByPhandle(p)!);
  const name = (n: FdtNode) =>
    n.hasProperty('ibm,gpu')
      ? `n${readU32(fdt.findByPhandle(readU32(n, 'ibm,nvlink'))!, 'ibm,npu-link-index')}`
      : readString(n, 'ibm,loc-code');
  assert.deepEqual(peers.map(name), ['GPU1', 'GPU0', 'GPU1', 'n4', 'GPU0', 'n5']);
});

test('4-GPU link table: three links per GPU, slots GPU0 GPU1 GPU3 GPU4 (Redbud)', () => {
  const fdt = generateWitherspoon({ gpus: 4 });
  const npu = fdt.findNode('/xscom@603fc00000000/npu@5011000')!;
  assert.deepEqual(
    npu.children.map((l) => readU32(l, 'ibm,npu-group-id')),
    [0, 0, 0, 1, 1, 1],
  );
  assert.deepEqual(
    gpus(fdt).map((g) => readString(g, 'ibm,loc-code')),
    ['GPU0', 'GPU1', 'GPU3', 'GPU4'],
  );
  const g1 = gpus(fdt)[1]!;
  const peers = readAllU32(g1, 'ibm,nvlink-peers').map((p) => fdt.findByPhandle(p)!);
  assert.deepEqual(
    peers.map((p) => p.hasProperty('ibm,gpu')),
    [false, true, false, true, false, true],
  );
});

test('NPU PHB: compatible, ATSD entries, npcq, chip and PHB index', () => {
  const fdt = generateWitherspoon();
  const phb = fdt.findNode('/pciex@6030200000000')!;
  assert.equal(readString(phb, 'device_type'), 'pciex');
  assert.deepEqual(
    readAllU64(phb, 'ibm,mmio-atsd'),
    Array.from({ length: 8 }, (_, n) => 0x6030200800000n + BigInt(n) * 0x10000n),
  );
  assert.equal(
    fdt.findByPhandle(readU32(phb, 'ibm,npcq'))?.path,
    '/xscom@603fc00000000/npu@5011000',
  );
  assert.equal(readU32(phb, 'ibm,chip-id'), 0);
  assert.equal(readU32(phb, 'ibm,phb-index'), 7);
  assert.deepEqual(readAllU32(phb, '#address-cells'), [3]);
  assert.equal(readU32(fdt.findNode('/pciex@6230200000000')!, 'ibm,chip-id'), 8);
  assert.equal(phb.hasProperty('linux,pci-domain'), false);
  assert.equal(
    readU32(
      generateWitherspoon({ linuxPciDomain: true }).findNode('/pciex@6230200000000')!,
      'linux,pci-domain',
    ),
    55,
  );
});

test('memory nodes: aperture reg, chip ids 255 down, usable-memory and associativity', () => {
  const fdt = generateWitherspoon({ gpus: 4, gpuRamGiB: 32, memoryMap: '4t-up' });
  const mems = fdt.root.children.filter((n) => n.baseName === 'memory');
  assert.deepEqual(
    mems.map((m) => m.name),
    ['memory@40000000000', 'memory@42000000000', 'memory@240000000000', 'memory@242000000000'],
  );
  mems.forEach((m, i) => {
    const id = 255 - i;
    const [base, size] = readAllU64(m, 'reg');
    assert.equal(m.unitAddress, base!.toString(16));
    assert.equal(size, 0x20_0000_0000n);
    assert.equal(readU32(m, 'ibm,chip-id'), id);
    assert.deepEqual(readAllU64(m, 'linux,usable-memory'), [base, 0n]);
    assert.deepEqual(readAllU32(m, 'ibm,associativity'), [4, id, id, id, id]);
    assert.equal(readString(m, 'compatible'), 'ibm,coherent-device-memory');
  });
  const tgts = bridges(fdt).map((b) => readU64(b, 'ibm,device-tgt-addr'));
  assert.ok(tgts.includes(0xc0000000000n));
});

test('every PCI node has an OF reg with bus/device/function in phys.hi', () => {
  const fdt = generateWitherspoon();
  for (const n of fdt.root.walk()) {
    if (!n.hasProperty('vendor-id')) continue;
    const reg = readAllU32(n, 'reg');
    assert.equal(reg.length, 5, n.path);
    const physHi = reg[0]!;
    const dev = (physHi >> 11) & 0x1f;
    const fn = (physHi >> 8) & 7;
    assert.equal(n.unitAddress, fn === 0 ? dev.toString(16) : `${dev.toString(16)},${fn}`, n.path);
    for (const p of ['device-id', 'class-code', 'revision-id'])
      assert.ok(n.hasProperty(p), `${n.path} ${p}`);
  }
});

test('link speed code is copied; absent link speed leaves out both properties', () => {
  const fast = generateWitherspoon({ linkSpeed: 0x9 });
  assert.ok(bridges(fast).every((b) => readU32(b, 'ibm,nvlink-speed') === 0x9));
  const none = generateWitherspoon({ linkSpeed: undefined });
  assert.ok(bridges(none).every((b) => !b.hasProperty('ibm,nvlink-speed')));
  assert.ok([...none.root.walk()].every((n) => !n.hasProperty('nvidia,link-speed')));
});
