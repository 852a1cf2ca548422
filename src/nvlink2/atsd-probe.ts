/**
 * The NPU2 ATSD init's device-tree steps (Linux v5.12 drivers/vfio/pci/vfio_pci_nvlink2.c
 * vfio_pci_ibm_npu2_init), with every errno and a reason:
 * 1. bridge `ibm,gpu` → GPU (pnv_pci_get_gpu_dev): none → ENODEV. From 5.2 also `memory-region`
 *    (u32), else ENODEV.
 * 2. `ibm,nvlink` → link node → `ibm,npu-link-index` (u32): unreadable → WARN_ON, ENODEV.
 * 3. ATSD = the NPU PHB's `ibm,mmio-atsd[link-index]`; 5.7+ falls back to entry 0 with the
 *    warning "Using fallback ibm,mmio-atsd[0] for ATSD."; nothing → address 0 and the warning
 *    "No available ATSD found" (a zero-size region, capabilities still reported).
 * 4. `ibm,device-tgt-addr` (u64) and `ibm,nvlink-speed` (u32) on the bridge; either missing →
 *    warning "No … found", EFAULT.
 */
import { readPhandleValue, tryRead } from '../fdt/index.ts';
import type { PciFunction } from '../platform/index.ts';
import { hex } from '../text/index.ts';
import { VfioError } from '../vfio/index.ts';
import { readU32Prop, readU64IndexProp, readU64Prop } from './dt-read.ts';
import type { Nvlink2Context } from './types.ts';

/**
 * What the ATSD init found for a bridge (vfio_pci_nvlink2.c vfio_pci_ibm_npu2_init): the bridge,
 * its GPU, the link index, the ATSD register address and entry, tgt and link speed.
 */
export interface AtsdConfig {
  readonly bridge: PciFunction;
  readonly gpu: PciFunction;
  readonly linkIndex: number;
  /** ATSD register address; 0 when there is none. */
  readonly mmioAtsd: bigint;
  /** Which `ibm,mmio-atsd` entry it came from (undefined with no ATSD). */
  readonly atsdEntry: number | undefined;
  readonly tgt: bigint;
  readonly linkSpeed: number;
}

type ProbeContext = Pick<Nvlink2Context, 'host' | 'kernel' | 'log'>;

function whyNoGpu(bridge: PciFunction, ctx: ProbeContext): string {
  const read = tryRead(() => readPhandleValue(bridge.node, 'ibm,gpu', 0));
  if (!read.ok && read.error.errno === 'EINVAL') {
    return bridge.role === 'bridge'
      ? `bridge ${bridge.name} has no ibm,gpu`
      : `device ${bridge.name} has no ibm,gpu (not an NVLink bridge)`;
  }
  if (!read.ok) return `bridge ${bridge.name} ibm,gpu is ${read.error.size} bytes, no phandle`;
  const phandle = read.value;
  const node = ctx.host.fdt.findByPhandle(phandle);
  if (!node) return `bridge ${bridge.name} ibm,gpu phandle ${hex(phandle)} points to no node`;
  return `bridge ${bridge.name} ibm,gpu ${node.path} is not a PCI function`;
}

/** Step 3: the ATSD address, with the kernel's warnings. */
function findAtsd(
  ctx: ProbeContext,
  bridge: PciFunction,
  linkIndex: number,
): { address: bigint; entry: number | undefined } {
  const phb = bridge.phb.node;
  const own = readU64IndexProp(phb, 'ibm,mmio-atsd', linkIndex);
  if (own.ok) return { address: own.value, entry: linkIndex };
  if (ctx.kernel.atsdFallbackToEntry0) {
    const first = readU64IndexProp(phb, 'ibm,mmio-atsd', 0);
    if (first.ok) {
      ctx.log({
        level: 'warn',
        device: bridge.name,
        message: 'Using fallback ibm,mmio-atsd[0] for ATSD.',
      });
      return { address: first.value, entry: 0 };
    }
  }
  ctx.log({ level: 'warn', device: bridge.name, message: 'No available ATSD found' });
  return { address: 0n, entry: undefined };
}

/**
 * Steps 1–4 for `bridge`.
 * @throws VfioError ENODEV (plain device) or EFAULT (enabling fails), with the reason.
 */
export function probeAtsd(ctx: ProbeContext, bridge: PciFunction): AtsdConfig {
  const gpu = ctx.host.gpuOfBridge(bridge);
  if (!gpu) throw new VfioError('ENODEV', whyNoGpu(bridge, ctx));
  if (ctx.kernel.atsdNeedsMemoryRegion) {
    const mem = readU32Prop(bridge.node, 'memory-region');
    if (!mem.ok) throw new VfioError('ENODEV', `bridge ${bridge.name} ${mem.why}`);
  }
  const link = ctx.host.nvlinkOfBridge(bridge);
  if (link.linkIndex === undefined) {
    ctx.log({
      level: 'warn',
      device: bridge.name,
      message: `WARN_ON: ${link.problem ?? 'no ibm,npu-link-index'}`,
    });
    throw new VfioError('ENODEV', link.problem ?? `bridge ${bridge.name} has no NVLink index`);
  }
  const atsd = findAtsd(ctx, bridge, link.linkIndex);
  const tgt = readU64Prop(bridge.node, 'ibm,device-tgt-addr');
  if (!tgt.ok) {
    ctx.log({ level: 'warn', device: bridge.name, message: 'No ibm,device-tgt-addr found' });
    throw new VfioError('EFAULT', `bridge ${bridge.name} ${tgt.why}`);
  }
  const speed = readU32Prop(bridge.node, 'ibm,nvlink-speed');
  if (!speed.ok) {
    ctx.log({ level: 'warn', device: bridge.name, message: 'No ibm,nvlink-speed found' });
    throw new VfioError('EFAULT', `bridge ${bridge.name} ${speed.why}`);
  }
  return {
    bridge,
    gpu,
    linkIndex: link.linkIndex,
    mmioAtsd: atsd.address,
    atsdEntry: atsd.entry,
    tgt: tgt.value,
    linkSpeed: speed.value,
  };
}
