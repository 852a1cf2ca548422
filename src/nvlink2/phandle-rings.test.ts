/**
 * Phandles that point back (ibm,npu, ibm,gpu, memory-region, ibm,nvlink to themselves or in a
 * ring): the host's bridge lookups end, and the subdriver's init (the doctor's verdict) turns
 * the broken links into a `plain` result with the reason, as vfio_pci_nvlink2.c's -ENODEV
 * paths do. Moved from platform/host-depth.test.ts: platform may not import the variant.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cells, type FdtNode, readU32 } from '../fdt/index.ts';
import { buildHost, generateWitherspoon } from '../platform/index.ts';
import { runDoctorOnHost } from './doctor.ts';

test('phandles that point back: ibm,npu to itself, ibm,gpu to itself, memory-region in a ring', () => {
  const fdt = generateWitherspoon();
  const before = buildHost(fdt);
  const gpu = before.functionByName('0002:01:00.0')!;
  const [b1, b2] = [before.npuBridgeOfGpu(gpu, 0)!, before.npuBridgeOfGpu(gpu, 1)!];
  const phandle = (n: FdtNode) => readU32(n, 'phandle');
  gpu.node.setProperty('ibm,npu', cells.u32(phandle(gpu.node), phandle(b1.node)));
  b1.node
    .setProperty('ibm,gpu', cells.u32(phandle(b1.node)))
    .setProperty('ibm,nvlink', cells.u32(phandle(b1.node)))
    .setProperty('memory-region', cells.u32(phandle(b2.node)));
  b2.node.setProperty('memory-region', cells.u32(phandle(b1.node)));
  fdt.invalidatePhandles();
  const host = buildHost(fdt);
  assert.equal(host.npuBridgeOfGpu(host.functionByName(gpu.name)!, 0)?.name, gpu.name);
  const entries = runDoctorOnHost(host);
  assert.equal(entries.length, 24);
  const byName = new Map(entries.map((e) => [e.address, e]));
  assert.deepEqual(
    [byName.get(gpu.name)?.result, byName.get(gpu.name)?.reason],
    ['plain', `bridge ${gpu.name} has no memory-region`],
  );
  assert.equal(byName.get(b1.name)?.result, 'plain');
  assert.match(byName.get(b1.name)?.reason ?? '', /has no ibm,npu-link-index/);
});
