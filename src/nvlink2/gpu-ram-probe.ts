/**
 * The GPU RAM init's device-tree steps (Linux v5.12 drivers/vfio/pci/vfio_pci_nvlink2.c
 * vfio_pci_nvidia_v100_nvlink2_init, steps 1–4 of the reference), with every errno and a
 * reason naming the device, bridge, node or property:
 * 1. GPU `ibm,npu[0]` → bridge (pnv_pci_get_npu_dev): none → ENODEV (a plain device).
 * 2. bridge `memory-region` (u32 phandle): missing → ENODEV (EINVAL in 5.0/5.1, see
 *    kernel-version.ts); a phandle that resolves to no node → EINVAL.
 * 3. memory node `reg`: exactly two u64 (hpa, size), else EINVAL.
 * 4. bridge `ibm,device-tgt-addr` (u64): missing → warning "No ibm,device-tgt-addr found", EFAULT.
 */
import { type FdtNode, readPhandleValue, tryRead } from '../fdt/index.ts';
import type { PciFunction } from '../platform/index.ts';
import { hex } from '../text/index.ts';
import { VfioError } from '../vfio/index.ts';
import { readExactU64s, readU32Prop, readU64Prop } from './dt-read.ts';
import type { Nvlink2Context } from './types.ts';

/**
 * What the GPU RAM init found (vfio_pci_nvlink2.c vfio_pci_nvdia_v100_nvlink2_init): the GPU, its
 * bridge 0, its memory node, the aperture's host physical address and size (bytes), and tgt.
 */
export interface GpuRamConfig {
  readonly gpu: PciFunction;
  /** NVLink bridge 0 of the GPU. */
  readonly bridge: PciFunction;
  readonly memoryNode: FdtNode;
  /** GPU RAM host physical address (reg[0]). */
  readonly hpa: bigint;
  /** The aperture (reg[1]): the region size, normally 128 GiB. */
  readonly size: bigint;
  /** `ibm,device-tgt-addr` of the bridge. */
  readonly tgt: bigint;
}

type ProbeContext = Pick<Nvlink2Context, 'host' | 'kernel' | 'log'>;

/** Why pnv_pci_get_npu_dev(gpu, 0) found nothing. */
function whyNoBridge(ctx: ProbeContext, gpu: PciFunction): string {
  const read = tryRead(() => readPhandleValue(gpu.node, 'ibm,npu', 0));
  if (!read.ok) {
    return read.error.errno === 'EINVAL'
      ? `GPU ${gpu.name} has no ibm,npu`
      : `GPU ${gpu.name} ibm,npu is ${read.error.size} bytes, no phandle`;
  }
  const phandle = read.value;
  const node = ctx.host.fdt.findByPhandle(phandle);
  if (!node) return `GPU ${gpu.name} ibm,npu[0] phandle ${hex(phandle)} points to no node`;
  return `GPU ${gpu.name} ibm,npu[0] ${node.path} is not a PCI function`;
}

/**
 * Steps 1–4 for `gpu`.
 * @throws VfioError ENODEV (plain device), EINVAL or EFAULT (enabling fails), with the reason.
 */
export function probeGpuRam(ctx: ProbeContext, gpu: PciFunction): GpuRamConfig {
  const bridge = ctx.host.npuBridgeOfGpu(gpu, 0);
  if (!bridge) throw new VfioError('ENODEV', whyNoBridge(ctx, gpu));
  const phandle = readU32Prop(bridge.node, 'memory-region');
  if (!phandle.ok)
    throw new VfioError(ctx.kernel.gpuMissingMemoryRegion, `bridge ${bridge.name} ${phandle.why}`);
  const memoryNode = ctx.host.fdt.findByPhandle(phandle.value);
  if (!memoryNode) {
    throw new VfioError(
      'EINVAL',
      `bridge ${bridge.name} memory-region phandle ${hex(phandle.value)} points to no node`,
    );
  }
  const reg = readExactU64s(memoryNode, 'reg', 2);
  if (!reg.ok) throw new VfioError('EINVAL', `memory node ${memoryNode.path} ${reg.why}`);
  const tgt = readU64Prop(bridge.node, 'ibm,device-tgt-addr');
  if (!tgt.ok) {
    ctx.log({ level: 'warn', device: gpu.name, message: 'No ibm,device-tgt-addr found' });
    throw new VfioError('EFAULT', `bridge ${bridge.name} ${tgt.why}`);
  }
  const [hpa, size] = reg.value as [bigint, bigint];
  ctx.log({
    level: 'dbg',
    device: gpu.name,
    message: `${hpa.toString(16)}..${(hpa + size - 1n).toString(16)}`,
  });
  return { gpu, bridge, memoryNode, hpa, size, tgt: tgt.value };
}
