/**
 * describeDevice: the description is a pure function of the replies (so a vfio-user client
 * asking the same questions gets the same description), and it decodes regions, IRQs and
 * config space as the reference says.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  buildFakeHost,
  fakeFunction,
  fakeVariant,
} from '../../../test/support/nvlink2/fake-host.ts';
import type { VariantHook } from '../../vfio/index.ts';
import {
  type DeviceSnapshot,
  describeAsText,
  describeDevice,
  describeSnapshot,
  hexdump,
  PCI_VENDOR_TYPE,
  queryErrorOf,
  RegionFlag,
  VfioPciDevice,
} from '../../vfio/index.ts';
import { encodeSsatgtCap } from '../region-caps.ts';
import { NVLINK2_VOCABULARY } from '../variant.ts';

const host = buildFakeHost();
const hook: VariantHook = {
  vendor: 0x10de,
  name: 'NVIDIA NV2 RAM',
  init: (d) => {
    const ops = {
      rw: (_o: bigint, b: Uint8Array) => b.length,
      capabilities: () => [encodeSsatgtCap(0x1234n)],
    };
    d.registerDeviceRegion(
      PCI_VENDOR_TYPE | 0x10de,
      1,
      128n << 30n,
      RegionFlag.READ | RegionFlag.WRITE,
      () => ops,
    );
  },
};
const gpu = new VfioPciDevice(fakeFunction(host, 0x1db1), host, fakeVariant(host, [hook]));
gpu.open();
after(() => gpu.dispose());

/** What a client does over the wire: ask argsz 32, then the argsz the reply names. */
function clientSnapshot(): DeviceSnapshot {
  const info = gpu.info();
  const regions = Array.from({ length: info.numRegions }, (_, i) => {
    try {
      const first = gpu.regionInfo(i, 32).bytes;
      const need = new DataView(first.buffer).getUint32(0, true);
      return { reply: need > 32 ? gpu.regionInfo(i, need).bytes : first };
    } catch (err) {
      return { error: queryErrorOf((err as { errno: number }).errno) };
    }
  });
  const irqs = [0, 1, 2, 3, 4].map((i) => ({ info: gpu.irqInfo(i) }));
  return { name: gpu.name, info, regions, irqs, config: gpu.read(7, 0, 4096) };
}

describe('describeDevice', () => {
  it('equals the description of the replies a client collects', () => {
    assert.deepEqual(describeSnapshot(clientSnapshot(), [NVLINK2_VOCABULARY]), describeDevice(gpu));
  });

  it('names regions, decodes capabilities and the config space', () => {
    const d = describeDevice(gpu);
    assert.equal(d.model, 'Tesla V100 SXM2 16GB');
    assert.deepEqual(
      d.regions.map((r) => r.name),
      ['BAR0', 'BAR1', 'BAR2', 'BAR3', 'BAR4', 'BAR5', 'ROM', 'CONFIG', 'VGA', 'NVLINK2 RAM'],
    );
    const ram = d.regions[9];
    assert.equal(ram?.argsz, 64);
    assert.equal(ram?.size, '0x2000000000');
    assert.deepEqual(ram?.caps?.[0]?.value, { type: '0x800010de', subtype: 1 });
    assert.deepEqual(ram?.caps?.[1]?.value, { tgt: '0x1234' });
    assert.equal(d.regions[8]?.error?.errno, 'EINVAL');
    assert.equal(d.regions[8]?.error?.message, 'EINVAL (errno 22)');
    assert.deepEqual(
      d.irqs.map((i) => i.count),
      [1, 1, 6, 1, 1],
    );
    assert.deepEqual(
      d.config.bars.map((b) => [b.index, b.type, b.prefetchable, b.size]),
      [
        [0, 'mem32', false, '0x1000000'],
        [1, 'mem64', true, '0x400000000'],
        [3, 'mem64', true, '0x2000000'],
      ],
    );
    assert.deepEqual(
      d.config.capabilities.map((c) => c.offset),
      ['0x60', '0x68', '0x78', '0xb4', '0xc8'],
    );
    assert.doesNotThrow(() => JSON.stringify(d));
  });

  it('renders as text, with a hexdump of the reply when asked', () => {
    const text = describeAsText(describeDevice(gpu), { hex: true }).join('\n');
    assert.match(text, /9 NVLINK2 RAM +flags READ\|WRITE\|CAPS/);
    assert.match(text, /cap NVLINK2_SSATGT \(id 4\) v1 @48 next 0: tgt 0x1234/);
    assert.match(text, /0030: 04 00 01 00 00 00 00 00 34 12 00 00 00 00 00 00/);
    assert.deepEqual(hexdump('00112233'), ['0000: 00 11 22 33']);
  });
});
