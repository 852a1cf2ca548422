/**
 * Every outcome of the two inits, produced from device trees (the Witherspoon generator's fault
 * options, plus hand edits where no option exists) and observed through the doctor, which runs
 * the same hooks through the vfio-pci core.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cells, type Fdt } from '../fdt/index.ts';
import type { WitherspoonOptions } from '../platform/index.ts';
import { buildHost, generateWitherspoon } from '../platform/index.ts';
import { type DoctorEntry, type DoctorOptions, runDoctorOnHost } from './doctor.ts';

function doctor(
  tree: Partial<WitherspoonOptions> | Fdt,
  options: DoctorOptions = {},
): Map<string, DoctorEntry> {
  const fdt = 'root' in tree ? tree : generateWitherspoon(tree);
  return new Map(runDoctorOnHost(buildHost(fdt), options).map((e) => [e.address, e]));
}

function entry(report: Map<string, DoctorEntry>, address: string): DoctorEntry {
  const e = report.get(address);
  assert.ok(e, `no function ${address}`);
  return e;
}

const omit = (property: string, target: string) => ({ omit: [{ property, target }] });
const GPU0 = '0002:01:00.0';
const BRIDGE0 = '0000:00:00.0';
const BRIDGE1 = '0000:00:00.1';

describe('healthy 6-GPU Witherspoon', () => {
  const r = doctor({});
  it('a GPU gets the GPU RAM region with its tgt', () => {
    assert.deepEqual(entry(r, GPU0), {
      address: GPU0,
      vendor: '0x10de',
      device: '0x1db1',
      role: 'gpu',
      // chip 0's NPU compound group (src/platform/host.test.ts derives the numbers)
      iommuGroup: 6,
      result: 'nvlink2',
      errno: null,
      reason: null,
      regions: [
        {
          index: 9,
          type: '0x800010de',
          subtype: 1,
          size: '0x2000000000',
          flags: 7,
          caps: { tgt: '0x3e000000000' },
        },
      ],
      warnings: [],
    });
  });
  it('a bridge gets the ATSD page with tgt and link speed; chip 8 tgt is compressed', () => {
    assert.deepEqual(entry(r, BRIDGE1).regions, [
      {
        index: 9,
        type: '0x80001014',
        subtype: 1,
        size: '0x10000',
        flags: 7,
        caps: { tgt: '0x3e000000000', linkSpeed: 8 },
      },
    ]);
    assert.equal(entry(r, '0001:00:00.0').regions[0]?.caps.tgt, '0xbe000000000');
  });
  it('an IBM root port stays plain', () => {
    assert.deepEqual(
      [
        entry(r, '0002:00:00.0').result,
        entry(r, '0002:00:00.0').errno,
        entry(r, '0002:00:00.0').reason,
      ],
      ['plain', 'ENODEV', 'device 0002:00:00.0 has no ibm,gpu (not an NVLink bridge)'],
    );
  });
});

describe('GPU RAM init errors', () => {
  it('no ibm,npu: ENODEV, plain', () => {
    const e = entry(doctor(omit('ibm,npu', GPU0)), GPU0);
    assert.deepEqual(
      [e.result, e.errno, e.reason, e.regions],
      ['plain', 'ENODEV', `GPU ${GPU0} has no ibm,npu`, []],
    );
  });
  it('no memory-region on bridge 0: ENODEV (5.12), EINVAL (5.1)', () => {
    const tree = omit('memory-region', BRIDGE0);
    const e = entry(doctor(tree), GPU0);
    assert.deepEqual(
      [e.result, e.errno, e.reason],
      ['plain', 'ENODEV', `bridge ${BRIDGE0} has no memory-region`],
    );
    const old = entry(doctor(tree, { kernel: '5.1' }), GPU0);
    assert.deepEqual(
      [old.result, old.errno, old.reason],
      ['error', 'EINVAL', `bridge ${BRIDGE0} has no memory-region`],
    );
  });
  it('a memory-region pointing to no node: EINVAL', () => {
    const fdt = generateWitherspoon({});
    const bridge = buildHost(fdt).functionByName(BRIDGE0);
    bridge?.node.setProperty('memory-region', cells.u32(0xdead));
    fdt.invalidatePhandles();
    const e = entry(doctor(fdt), GPU0);
    assert.deepEqual(
      [e.result, e.errno, e.reason],
      ['error', 'EINVAL', `bridge ${BRIDGE0} memory-region phandle 0xdead points to no node`],
    );
  });
  it('reg of the memory node not exactly two u64: EINVAL', () => {
    for (const n of [1, 3]) {
      const e = entry(doctor({ memoryRegU64s: n }), GPU0);
      assert.deepEqual(
        [e.result, e.errno, e.reason],
        ['error', 'EINVAL', 'memory node /memory@3e000000000 reg is not exactly two u64'],
      );
    }
  });
  it('no ibm,device-tgt-addr on bridge 0: EFAULT with the kernel warning', () => {
    const e = entry(doctor(omit('ibm,device-tgt-addr', BRIDGE0)), GPU0);
    assert.deepEqual(
      [e.result, e.errno, e.reason, e.warnings],
      [
        'error',
        'EFAULT',
        `bridge ${BRIDGE0} has no ibm,device-tgt-addr`,
        ['No ibm,device-tgt-addr found'],
      ],
    );
  });
  it('a P100 stays plain either way', () => {
    const plain = entry(doctor({ p100: 'plain' }), GPU0);
    assert.deepEqual([plain.device, plain.result, plain.errno], ['0x15f9', 'plain', 'ENODEV']);
    const nv1 = entry(doctor({ p100: 'nvlink1' }), GPU0);
    assert.deepEqual(
      [nv1.result, nv1.errno, nv1.reason],
      ['plain', 'ENODEV', `bridge ${BRIDGE0} has no memory-region`],
    );
  });
});

describe('NPU2 ATSD init', () => {
  it('no ibm,gpu: ENODEV, plain', () => {
    const e = entry(doctor(omit('ibm,gpu', BRIDGE1)), BRIDGE1);
    assert.deepEqual(
      [e.result, e.errno, e.reason],
      ['plain', 'ENODEV', `bridge ${BRIDGE1} has no ibm,gpu`],
    );
  });
  it('no memory-region: ENODEV from 5.2, ignored before', () => {
    const tree = omit('memory-region', BRIDGE1);
    const e = entry(doctor(tree), BRIDGE1);
    assert.deepEqual(
      [e.result, e.errno, e.reason],
      ['plain', 'ENODEV', `bridge ${BRIDGE1} has no memory-region`],
    );
    assert.equal(entry(doctor(tree, { kernel: '5.1' }), BRIDGE1).result, 'nvlink2');
  });
  it('no ibm,nvlink: ENODEV with the WARN_ON', () => {
    const e = entry(doctor(omit('ibm,nvlink', BRIDGE1)), BRIDGE1);
    assert.deepEqual(
      [e.result, e.errno, e.reason],
      ['plain', 'ENODEV', `bridge ${BRIDGE1} ibm,nvlink is missing`],
    );
  });
  it('no ibm,device-tgt-addr or no ibm,nvlink-speed: EFAULT', () => {
    const t = entry(doctor(omit('ibm,device-tgt-addr', BRIDGE1)), BRIDGE1);
    assert.deepEqual(
      [t.result, t.errno, t.reason, t.warnings],
      [
        'error',
        'EFAULT',
        `bridge ${BRIDGE1} has no ibm,device-tgt-addr`,
        ['No ibm,device-tgt-addr found'],
      ],
    );
    const s = entry(doctor({ linkSpeed: undefined }), BRIDGE1);
    assert.deepEqual(
      [s.result, s.errno, s.reason, s.warnings],
      [
        'error',
        'EFAULT',
        `bridge ${BRIDGE1} has no ibm,nvlink-speed`,
        ['No ibm,nvlink-speed found'],
      ],
    );
  });
  it('fewer ibm,mmio-atsd entries: 5.12 falls back to entry 0, 5.2 registers a zero-size region', () => {
    const r = doctor({ atsdEntries: 4 });
    const e = entry(r, '0000:00:02.1'); // link index 5
    assert.deepEqual(
      [e.result, e.regions[0]?.size, e.warnings],
      ['nvlink2', '0x10000', ['Using fallback ibm,mmio-atsd[0] for ATSD.']],
    );
    assert.deepEqual(entry(r, '0000:00:01.1').warnings, []);
    const old = entry(doctor({ atsdEntries: 4 }, { kernel: '5.2' }), '0000:00:02.1');
    assert.deepEqual(
      [old.result, old.regions[0]?.size, old.warnings],
      ['nvlink2', '0x0', ['No available ATSD found']],
    );
  });
  it('no ATSD at all: a zero-size region that still has both capabilities', () => {
    const e = entry(doctor({ atsdEntries: 0 }), BRIDGE1);
    assert.deepEqual(e.regions, [
      {
        index: 9,
        type: '0x80001014',
        subtype: 1,
        size: '0x0',
        flags: 7,
        caps: { tgt: '0x3e000000000', linkSpeed: 8 },
      },
    ]);
    assert.deepEqual(e.warnings, ['No available ATSD found']);
  });
});
