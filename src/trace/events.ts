/**
 * The tracepoints: the three the kernel defined for NVLink2 (drivers/vfio/pci/trace.h, v5.0–v5.12,
 * TRACE_SYSTEM vfio_pci) with their exact TP_printk formats, and our own events for what the
 * kernel did not trace (region accesses, LPID map/unmap, ATSD launches, the GPU RAM fence, writes
 * refused by the memory budget), in system `vfio_nvlink2`. Field order is the printf argument order.
 */
import type { PrintfArg } from './printf.ts';

/** Arguments of every event, by event name. */
export interface TraceEventArgs {
  /** trace.h TRACE_EVENT(vfio_pci_nvgpu_mmap_fault): device, hpa, user address, vm_fault_t. */
  vfio_pci_nvgpu_mmap_fault: { name: string; hpa: bigint; ua: bigint; ret: number };
  /** trace.h TRACE_EVENT(vfio_pci_nvgpu_mmap): device, hpa, user address, size, result. */
  vfio_pci_nvgpu_mmap: { name: string; hpa: bigint; ua: bigint; size: bigint; ret: number };
  /** trace.h TRACE_EVENT(vfio_pci_npu2_mmap): device, ATSD address, user address, size, result. */
  vfio_pci_npu2_mmap: { name: string; hpa: bigint; ua: bigint; size: bigint; ret: number };
  /** A region read (ours). */
  nvlink2_region_read: { name: string; index: number; offset: bigint; count: number };
  /** A region write (ours). */
  nvlink2_region_write: { name: string; index: number; offset: bigint; count: number };
  /** pnv_npu2_map_lpar_dev (ours): OPAL PHB id, GPU BDF, LPID, MSR, result. */
  nvlink2_lpid_map: {
    name: string;
    phb: bigint;
    bdf: number;
    lpid: number;
    msr: bigint;
    ret: number;
  };
  /** pnv_npu2_unmap_lpar_dev (ours). */
  nvlink2_lpid_unmap: { name: string; phb: bigint; bdf: number; ret: number };
  /** An ATSD launch completed (ours): register address, bound LPID, LAUNCH, AVA, entries dropped. */
  nvlink2_atsd_launch: {
    name: string;
    atsd: bigint;
    lpid: number;
    launch: bigint;
    ava: bigint;
    invalidated: number;
  };
  /** An access to GPU RAM beyond the real RAM (ours): the NVLink fence of the hardware. */
  nvlink2_gpu_ram_fence: { name: string; hpa: bigint; offset: bigint; count: bigint; ram: bigint };
  /**
   * A write refused by the memory budget (ours): the memory, the write, the bytes it would have
   * populated, the bytes in use and the budget.
   */
  nvlink2_memory_budget: {
    name: string;
    offset: bigint;
    count: number;
    need: bigint;
    inUse: bigint;
    budget: bigint;
  };
}

/** The name of a tracepoint (a key of `TraceEventArgs`). */
export type TraceEventName = keyof TraceEventArgs;

/** One tracepoint: name, system, the kernel's TP_printk format and how its arguments fill it. */
export interface TraceEventDefinition<E extends TraceEventName> {
  readonly name: E;
  readonly system: 'vfio_pci' | 'vfio_nvlink2';
  /** TP_printk format. */
  readonly format: string;
  /** Argument names in printf order. */
  readonly fields: readonly (keyof TraceEventArgs[E] & string)[];
}

type Definitions = { readonly [E in TraceEventName]: TraceEventDefinition<E> };

const MMAP_FIELDS = ['name', 'hpa', 'ua', 'size', 'ret'] as const;
const RW_FIELDS = ['name', 'index', 'offset', 'count'] as const;
const RW_FORMAT = '%s: region %u offset %llx count %u';

/** Every tracepoint, with the format of drivers/vfio/pci/trace.h where the kernel has one. */
export const TRACE_EVENTS: Definitions = {
  // drivers/vfio/pci/trace.h (v5.0–v5.12): TP_printk("%s: %lx -> %lx ret=%d", ...)
  vfio_pci_nvgpu_mmap_fault: {
    name: 'vfio_pci_nvgpu_mmap_fault',
    system: 'vfio_pci',
    format: '%s: %lx -> %lx ret=%d',
    fields: ['name', 'hpa', 'ua', 'ret'],
  },
  // drivers/vfio/pci/trace.h: TP_printk("%s: %lx -> %lx size=%lx ret=%d", ...)
  vfio_pci_nvgpu_mmap: {
    name: 'vfio_pci_nvgpu_mmap',
    system: 'vfio_pci',
    format: '%s: %lx -> %lx size=%lx ret=%d',
    fields: MMAP_FIELDS,
  },
  // drivers/vfio/pci/trace.h: same shape as vfio_pci_nvgpu_mmap
  vfio_pci_npu2_mmap: {
    name: 'vfio_pci_npu2_mmap',
    system: 'vfio_pci',
    format: '%s: %lx -> %lx size=%lx ret=%d',
    fields: MMAP_FIELDS,
  },
  nvlink2_region_read: {
    name: 'nvlink2_region_read',
    system: 'vfio_nvlink2',
    format: RW_FORMAT,
    fields: RW_FIELDS,
  },
  nvlink2_region_write: {
    name: 'nvlink2_region_write',
    system: 'vfio_nvlink2',
    format: RW_FORMAT,
    fields: RW_FIELDS,
  },
  nvlink2_lpid_map: {
    name: 'nvlink2_lpid_map',
    system: 'vfio_nvlink2',
    format: '%s: phb %llx bdf %x lpid %u msr %llx ret=%d',
    fields: ['name', 'phb', 'bdf', 'lpid', 'msr', 'ret'],
  },
  nvlink2_lpid_unmap: {
    name: 'nvlink2_lpid_unmap',
    system: 'vfio_nvlink2',
    format: '%s: phb %llx bdf %x ret=%d',
    fields: ['name', 'phb', 'bdf', 'ret'],
  },
  nvlink2_atsd_launch: {
    name: 'nvlink2_atsd_launch',
    system: 'vfio_nvlink2',
    format: '%s: atsd %llx lpid %u launch %llx ava %llx invalidated=%u',
    fields: ['name', 'atsd', 'lpid', 'launch', 'ava', 'invalidated'],
  },
  nvlink2_gpu_ram_fence: {
    name: 'nvlink2_gpu_ram_fence',
    system: 'vfio_nvlink2',
    format: '%s: hpa %llx offset %llx count %llx is beyond real RAM %llx',
    fields: ['name', 'hpa', 'offset', 'count', 'ram'],
  },
  nvlink2_memory_budget: {
    name: 'nvlink2_memory_budget',
    system: 'vfio_nvlink2',
    format: '%s: write offset %llx count %u needs %llx more bytes, %llx of budget %llx in use',
    fields: ['name', 'offset', 'count', 'need', 'inUse', 'budget'],
  },
};

/** The event's arguments in printf order. */
export function printfArgs<E extends TraceEventName>(
  event: E,
  args: TraceEventArgs[E],
): PrintfArg[] {
  const def = TRACE_EVENTS[event] as TraceEventDefinition<E>;
  return def.fields.map((f) => args[f] as PrintfArg);
}
