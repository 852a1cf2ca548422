import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_WITHERSPOON_OPTIONS,
  parseOmitSpec,
  resolveWitherspoonOptions,
  WitherspoonOptionError,
  witherspoonOptionsFromFlags,
} from './options.ts';

test('omit spec: property before the first @, target after (paths may hold @)', () => {
  assert.deepEqual(parseOmitSpec('ibm,device-tgt-addr@0001:00:01.1'), {
    property: 'ibm,device-tgt-addr',
    target: '0001:00:01.1',
  });
  assert.deepEqual(parseOmitSpec('reg@/memory@3e000000000'), {
    property: 'reg',
    target: '/memory@3e000000000',
  });
  for (const bad of ['ibm,npu', '@GPU0', 'ibm,npu@'])
    assert.throws(() => parseOmitSpec(bad), WitherspoonOptionError);
});

test('flags to options: defaults, hex and decimal numbers, link speed none', () => {
  assert.deepEqual(witherspoonOptionsFromFlags({}), DEFAULT_WITHERSPOON_OPTIONS);
  const o = witherspoonOptionsFromFlags({
    gpus: '4',
    'gpu-ram': '32',
    'link-speed': '0x9',
    'memory-map': '4t-up',
    'pci-domains': true,
    omit: ['ibm,npu@GPU0', 'memory-region@*'],
    'atsd-entries': '1',
    'memory-reg-u64s': '3',
    p100: 'nvlink1',
  });
  assert.equal(o.gpus, 4);
  assert.equal(o.gpuRamGiB, 32);
  assert.equal(o.linkSpeed, 9);
  assert.equal(o.memoryMap, '4t-up');
  assert.equal(o.linuxPciDomain, true);
  assert.deepEqual(o.omit, [
    { property: 'ibm,npu', target: 'GPU0' },
    { property: 'memory-region', target: '*' },
  ]);
  assert.equal(o.atsdEntries, 1);
  assert.equal(o.memoryRegU64s, 3);
  assert.equal(o.p100, 'nvlink1');
  assert.equal(witherspoonOptionsFromFlags({ 'link-speed': 'none' }).linkSpeed, undefined);
});

test('bad values name their option', () => {
  const cases: [Parameters<typeof witherspoonOptionsFromFlags>[0], string][] = [
    [{ gpus: '5' }, 'gpus'],
    [{ gpus: 'six' }, 'gpus'],
    [{ 'gpu-ram': '24' }, 'gpu-ram'],
    [{ 'memory-map': '4t-up' }, 'memory-map'],
    [{ 'memory-map': 'sideways' }, 'memory-map'],
    [{ 'link-speed': 'fast' }, 'link-speed'],
    [{ 'atsd-entries': '-1' }, 'atsd-entries'],
    [{ p100: 'yes' }, 'p100'],
  ];
  for (const [flags, option] of cases) {
    assert.throws(
      () => witherspoonOptionsFromFlags(flags),
      (e: unknown) => e instanceof WitherspoonOptionError && e.option === option,
      option,
    );
  }
  assert.equal(resolveWitherspoonOptions({ gpus: 4, memoryMap: '4t-up' }).memoryMap, '4t-up');
});
