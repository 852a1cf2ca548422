/**
 * nvgrace_gpu_probe() (drivers/vfio/pci/nvgrace-gpu/main.c:905-950) and the device ops it
 * installs (nvgrace_gpu_pci_ops :655-674, or nvgrace_gpu_pci_core_ops :676-695):
 * wait for BAR0's readiness registers (ETIME fails the probe); fetch the memory properties
 * (failure: nvgrace_gpu_pci_core_ops, a plain vfio-pci device); find the MIG bug in the DVSEC;
 * split the memory (EINVAL/EOVERFLOW fail the probe); then nvgrace_gpu_pci_ops: regions 2 and 4
 * are the fake BARs (read, write, mmap, get_region_info), their config-space registers are
 * emulated, bar_val is cleared at open and at VFIO_DEVICE_RESET. VFIO_DEVICE_IOEVENTFD (ENOTTY)
 * has no vfio-user command; migration and dirty logging are not there.
 */

import type { VariantDevice, VariantDeviceOps } from '../vfio/index.ts';
import { VfioError } from '../vfio/index.ts';
import type { NvgraceContext } from './context.ts';
import { FakeBarRegisters } from './fake-bars.ts';
import { GraceMemRegion } from './mem-region.ts';
import { initMemoryLayout } from './memory-layout.ts';
import { fetchMemoryProperty } from './memory-property.ts';
import { hasMigHwBug } from './mig-dvsec.ts';
import { hardwareStateProblem } from './profile.ts';
import { waitDeviceReady } from './readiness.ts';

/** RESMEM_REGION_INDEX (VFIO_PCI_BAR2_REGION_INDEX) and USEMEM_REGION_INDEX (BAR4). */
export const RESMEM_REGION_INDEX = 2;
/** USEMEM_REGION_INDEX: VFIO_PCI_BAR4_REGION_INDEX, usemem's fake BAR. */
export const USEMEM_REGION_INDEX = 4;

function read32(device: VariantDevice, offset: number): number {
  const b = device.read(0, offset, 4);
  return b.length === 4 ? new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true) : 0xffffffff;
}

/**
 * The probe of `device`; records its outcome in `ctx`.
 * @throws VfioError ETIME (not ready), EINVAL or EOVERFLOW (the memory cannot be split)
 */
export function probeNvgrace(
  ctx: NvgraceContext,
  device: VariantDevice,
): VariantDeviceOps | undefined {
  const name = device.fn.name;
  try {
    return probe(ctx, device);
  } catch (err) {
    if (err instanceof VfioError)
      ctx.record(name, { result: 'error', errno: err.code, reason: err.reason });
    throw err;
  }
}

function probe(ctx: NvgraceContext, device: VariantDevice): VariantDeviceOps | undefined {
  const fn = device.fn;
  const problem = hardwareStateProblem(fn);
  if (problem) throw new VfioError('EINVAL', problem);
  const ready = waitDeviceReady((offset) => read32(device, offset));
  let property: ReturnType<typeof fetchMemoryProperty>;
  try {
    property = fetchMemoryProperty(fn.node);
  } catch (err) {
    if (!(err instanceof VfioError)) throw err;
    ctx.record(fn.name, { result: 'plain', errno: err.code, reason: err.reason });
    return undefined;
  }
  const bug = hasMigHwBug(device.config);
  const layout = initMemoryLayout(property.memphys, property.memlength, bug);
  const memory = () => ctx.deviceMemory(fn.name, property.memlength);
  const made = () => ctx.peekMemory(fn.name);
  const usemem = new GraceMemRegion(
    `${fn.name} usemem`,
    USEMEM_REGION_INDEX,
    layout.usemem,
    0n,
    memory,
    made,
  );
  const resmem = layout.resmem
    ? new GraceMemRegion(
        `${fn.name} resmem`,
        RESMEM_REGION_INDEX,
        layout.resmem,
        layout.usemem.memlength,
        memory,
        made,
      )
    : undefined;
  ctx.record(fn.name, { result: 'nvgrace', layout, hasMigHwBug: bug, polls: ready.polls });
  const regions = new Map<number, GraceMemRegion>([[USEMEM_REGION_INDEX, usemem]]);
  if (resmem) regions.set(RESMEM_REGION_INDEX, resmem);
  const bars = new FakeBarRegisters(usemem, resmem);
  return {
    open: () => bars.clear(),
    reset: () => bars.clear(),
    describeRegion: (index) => regions.get(index)?.describe(),
    regionOps: (index) => regions.get(index),
    afterConfigRead: (offset, buf) => bars.afterRead(offset, buf),
    configWrite: (offset, data) => bars.write(offset, data),
  };
}
