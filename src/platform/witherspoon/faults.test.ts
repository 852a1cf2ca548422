import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runDtc } from '../../../test/support/fdt/dtc.ts';
import { type Fdt, readAllU64, readU32, serializeFdt } from '../../fdt/index.ts';
import { generateWitherspoon, WitherspoonOptionError, type WitherspoonOptions } from './index.ts';

/** Every (node, property) whose presence or bytes differ, as "path property". */
function diff(a: Fdt, b: Fdt): string[] {
  const props = (f: Fdt) => {
    const m = new Map<string, string>();
    for (const n of f.root.walk()) {
      m.set(`${n.path} (node)`, '');
      for (const p of n.properties)
        m.set(`${n.path} ${p.name}`, Buffer.from(p.value).toString('hex'));
    }
    return m;
  };
  const pa = props(a);
  const pb = props(b);
  const keys = new Set([...pa.keys(), ...pb.keys()]);
  return [...keys].filter((k) => pa.get(k) !== pb.get(k)).sort();
}

const base = generateWitherspoon();
const changed = (o: Partial<WitherspoonOptions>) => diff(base, generateWitherspoon(o));

test('omit by PCI name removes that one property of that one bridge', () => {
  const b = '/pciex@6230200000000/unknown-bridge@1,1';
  assert.deepEqual(
    changed({ omit: [{ property: 'ibm,device-tgt-addr', target: '0001:00:01.1' }] }),
    [`${b} ibm,device-tgt-addr`],
  );
  assert.deepEqual(changed({ omit: [{ property: 'ibm,nvlink-speed', target: '0001:00:01.1' }] }), [
    `${b} ibm,nvlink-speed`,
  ]);
  assert.deepEqual(changed({ omit: [{ property: 'memory-region', target: b }] }), [
    `${b} memory-region`,
  ]);
  assert.deepEqual(changed({ omit: [{ property: 'ibm,gpu', target: '0000:00:00.0' }] }), [
    '/pciex@6030200000000/unknown-bridge@0 ibm,gpu',
  ]);
  assert.deepEqual(changed({ omit: [{ property: 'ibm,nvlink', target: '0000:00:02.1' }] }), [
    '/pciex@6030200000000/unknown-bridge@2,1 ibm,nvlink',
  ]);
});

test('omit by GPU slot, by path, and everywhere', () => {
  const gpu = '/pciex@620c3c0000000/pci@0/3d-controller@0';
  assert.deepEqual(changed({ omit: [{ property: 'ibm,npu', target: 'GPU3' }] }), [
    `${gpu} ibm,npu`,
  ]);
  assert.deepEqual(changed({ omit: [{ property: 'ibm,npu', target: gpu }] }), [`${gpu} ibm,npu`]);
  const all = changed({ omit: [{ property: 'ibm,nvlink-speed', target: '*' }] });
  assert.equal(all.length, 12);
  assert.ok(all.every((k) => k.endsWith(' ibm,nvlink-speed')));
});

test('omit that matches nothing is an error naming the fault', () => {
  assert.throws(
    () => generateWitherspoon({ omit: [{ property: 'ibm,gpu', target: '0009:00:00.0' }] }),
    (e: unknown) => {
      assert.ok(e instanceof WitherspoonOptionError);
      assert.match(e.message, /ibm,gpu@0009:00:00.0: no node/);
      return true;
    },
  );
  assert.throws(
    () => generateWitherspoon({ omit: [{ property: 'ibm,gpu', target: 'GPU0' }] }),
    /has no ibm,gpu/,
  );
});

test('atsd entries: fewer entries, or none at all', () => {
  const three = generateWitherspoon({ atsdEntries: 3 });
  const keys = diff(base, three);
  assert.deepEqual(keys, [
    '/pciex@6030200000000 ibm,mmio-atsd',
    '/pciex@6230200000000 ibm,mmio-atsd',
  ]);
  assert.deepEqual(readAllU64(three.findNode('/pciex@6030200000000')!, 'ibm,mmio-atsd'), [
    0x6030200800000n,
    0x6030200810000n,
    0x6030200820000n,
  ]);
  const none = generateWitherspoon({ atsdEntries: 0 });
  assert.equal(none.findNode('/pciex@6030200000000')!.hasProperty('ibm,mmio-atsd'), false);
  assert.throws(() => generateWitherspoon({ atsdEntries: 9 }), /atsd-entries/);
});

test('memory reg with 3 or 1 u64 changes only the GPU memory nodes', () => {
  const three = generateWitherspoon({ memoryRegU64s: 3 });
  const keys = diff(base, three);
  assert.equal(keys.length, 6);
  assert.ok(keys.every((k) => /^\/memory@[0-9a-f]+ reg$/.test(k)));
  assert.deepEqual(readAllU64(three.findNode('/memory@3e000000000')!, 'reg'), [
    0x3e000000000n,
    0x2000000000n,
    0n,
  ]);
  assert.deepEqual(
    readAllU64(generateWitherspoon({ memoryRegU64s: 1 }).findNode('/memory@3e000000000')!, 'reg'),
    [0x3e000000000n],
  );
});

test('p100 plain: device 15f9, no ibm,npu / ibm,nvlink-peers on GPUs, no ibm,gpu on bridges', () => {
  const keys = changed({ p100: 'plain' });
  const gpuKeys = keys.filter((k) => k.includes('3d-controller'));
  const bridgeKeys = keys.filter((k) => k.includes('unknown-bridge'));
  assert.equal(gpuKeys.length + bridgeKeys.length, keys.length);
  const perGpu = new Set(gpuKeys.map((k) => k.split(' ')[1]));
  assert.deepEqual([...perGpu].sort(), [
    'compatible',
    'device-id',
    'ibm,npu',
    'ibm,nvlink-peers',
    'subsystem-id',
  ]);
  assert.equal(gpuKeys.length, 6 * perGpu.size);
  assert.ok(bridgeKeys.every((k) => k.endsWith(' ibm,gpu')));
  const tree = generateWitherspoon({ p100: 'plain' });
  const gpu = tree.findNode('/pciex@600c3c0000000/pci@0/3d-controller@0')!;
  assert.equal(readU32(gpu, 'device-id'), 0x15f9);
  assert.equal(gpu.hasProperty('ibm,npu'), false);
});

test('p100 nvlink1: ibm,npu and ibm,gpu stay, the NVLink2 bridge properties and memory nodes go', () => {
  const tree = generateWitherspoon({ p100: 'nvlink1' });
  const gpu = tree.findNode('/pciex@600c3c0000000/pci@0/3d-controller@0')!;
  assert.equal(readU32(gpu, 'device-id'), 0x15f9);
  assert.ok(gpu.hasProperty('ibm,npu'));
  const bridge = tree.findByPhandle(readU32(gpu, 'ibm,npu'))!;
  assert.ok(bridge.hasProperty('ibm,gpu'));
  for (const p of ['memory-region', 'ibm,device-tgt-addr', 'ibm,nvlink-speed', 'ibm,nvlink']) {
    assert.equal(bridge.hasProperty(p), false, p);
  }
  assert.equal(tree.root.children.filter((n) => n.baseName === 'memory').length, 0);
});

test('every faulted tree is still a blob dtc accepts', () => {
  const variants: Partial<WitherspoonOptions>[] = [
    { atsdEntries: 0 },
    { atsdEntries: 1 },
    { memoryRegU64s: 3 },
    { memoryRegU64s: 1 },
    { p100: 'plain' },
    { p100: 'nvlink1' },
    { linkSpeed: undefined },
    {
      omit: [
        { property: 'ibm,npu', target: '*' },
        { property: 'memory-region', target: '0000:00:01.0' },
      ],
    },
  ];
  for (const v of variants) {
    const r = runDtc(serializeFdt(generateWitherspoon(v)), 'dtb', 'dts');
    assert.ok(r.ok, `${JSON.stringify(v)}: ${r.stderr}`);
  }
});
