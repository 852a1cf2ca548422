/**
 * kernelIommuGroups on small hosts, expected values worked out by hand from Linux 5.12
 * (powernv/pci-ioda.c pnv_pci_ioda_dma_dev_setup, npu-dma.c pnv_try_setup_npu_table_group and
 * pnv_npu_compound_attach; iommu_group_alloc takes the lowest free id).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type GroupingFunction, kernelIommuGroups } from './iommu-groups.ts';

const fn = (f: Partial<GroupingFunction> & { phb: number }): GroupingFunction => ({
  bus: 0,
  devfn: 0,
  isBridge: false,
  npu0: undefined,
  gpu: undefined,
  ...f,
});

test('POWER8 NPU (no hose->npu): one compound group per GPU PE, registered before the PE group dies', () => {
  // GPUs on PHB 0 and 1 take PE groups 0 and 1. GPU 0's compound group is registered while
  // both live (id 2), then PE group 0 dies; GPU 1's compound group takes the freed 0.
  const groups = kernelIommuGroups(
    [
      { npu: false, npu2: false, rootBus: 0 },
      { npu: false, npu2: false, rootBus: 0 },
      { npu: true, npu2: false, rootBus: 0 },
    ],
    [
      fn({ phb: 0, bus: 1, npu0: 2 }),
      fn({ phb: 1, bus: 1, npu0: 4 }),
      fn({ phb: 2, devfn: 0, gpu: 0 }),
      fn({ phb: 2, devfn: 1, gpu: 0 }),
      fn({ phb: 2, devfn: 8, gpu: 1 }),
    ],
  );
  assert.deepEqual(groups, [2, 0, 2, 2, 0]);
});

test('a second function in the GPU PE keeps the PE group alive', () => {
  // GPU and its audio function share PE group 0; the GPU moves to the NPU2 group 1, the audio
  // function keeps 0 (iommu_group_put drops only the PE's reference).
  const groups = kernelIommuGroups(
    [
      { npu: false, npu2: false, rootBus: 0 },
      { npu: true, npu2: true, rootBus: 0 },
    ],
    [
      fn({ phb: 0, bus: 0, devfn: 0, isBridge: true }),
      fn({ phb: 0, bus: 1, devfn: 0, npu0: 3 }),
      fn({ phb: 0, bus: 1, devfn: 1 }),
      fn({ phb: 1, devfn: 0, gpu: 1 }),
    ],
  );
  assert.deepEqual(groups, [null, 1, 0, 1]);
});

test('a bridge whose ibm,gpu names a function without a group gets none', () => {
  const groups = kernelIommuGroups(
    [
      { npu: false, npu2: false, rootBus: 0 },
      { npu: true, npu2: true, rootBus: 0 },
    ],
    [fn({ phb: 0, devfn: 0, isBridge: true }), fn({ phb: 1, gpu: 0 })],
  );
  assert.deepEqual(groups, [null, null]);
});
