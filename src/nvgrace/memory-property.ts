/**
 * Where a Grace GPU's coherent memory is: nvgrace_gpu_fetch_memory_property()
 * (drivers/vfio/pci/nvgrace-gpu/main.c:698-731) reads `nvidia,gpu-mem-base-pa` and
 * `nvidia,gpu-mem-size` with device_property_read_u64(), which on a device-tree node is
 * of_property_read_u64_array(np, name, val, 1) (drivers/of/property.c): missing is EINVAL,
 * shorter than 8 bytes EOVERFLOW, longer is fine (the first u64). Real machines carry them in
 * ACPI _DSD; here they sit on the PCI function's node. A size of 0 means the C2C link is down:
 * ENOMEM, and the function stays a plain vfio-pci device.
 */

import type { FdtNode } from '../fdt/index.ts';
import { FdtPropertyError, readU64 } from '../fdt/index.ts';
import { GPU_MEM_BASE_PA, GPU_MEM_SIZE } from '../platform/index.ts';
import { VfioError } from '../vfio/index.ts';

export { GPU_MEM_BASE_PA, GPU_MEM_SIZE };

/** The GPU's coherent memory: `nvidia,gpu-mem-base-pa` (memphys) and `nvidia,gpu-mem-size` (memlength), in bytes. */
export interface DeviceMemoryProperty {
  readonly memphys: bigint;
  readonly memlength: bigint;
}

function readProperty(node: FdtNode, name: string): bigint {
  try {
    return readU64(node, name);
  } catch (err) {
    if (err instanceof FdtPropertyError) {
      const code = err.errno === 'EILSEQ' ? 'EINVAL' : err.errno;
      throw new VfioError(code, `${node.path}: ${name}: ${err.detail}`);
    }
    throw err;
  }
}

/**
 * nvgrace_gpu_fetch_memory_property() on `node`.
 * @throws VfioError EINVAL (missing), EOVERFLOW (shorter than a u64), ENOMEM (size 0: C2C link down)
 */
export function fetchMemoryProperty(node: FdtNode): DeviceMemoryProperty {
  const memphys = readProperty(node, GPU_MEM_BASE_PA);
  const memlength = readProperty(node, GPU_MEM_SIZE);
  if (memlength === 0n) {
    throw new VfioError('ENOMEM', `${node.path}: ${GPU_MEM_SIZE} is 0: the C2C link is down`);
  }
  return { memphys, memlength };
}
