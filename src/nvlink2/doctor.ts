/**
 * `dt doctor`: for every PCI function of a host, what the NVLink2 subdriver's init does to it,
 * found by doing it: each function is opened as a vfio-pci core device (src/vfio/device.ts)
 * with the subdriver's hooks (the same init code the server runs), and we report the
 * device-specific regions it registered with their capabilities (read back through the
 * region-info encoder), or the errno and reason of the failure, or that it stayed a plain
 * vfio-pci device and why. The hooks are only wrapped to record an ENODEV's reason, which the
 * core swallows; kernel warnings (dev_warn) of the init are collected too.
 */
import type { Host, PciFunction } from '../platform/index.ts';
import { hex, layoutTable } from '../text/index.ts';
import {
  createProbeMemory,
  type DoctorRow,
  decodeRegionInfo,
  doctorRowIdentity,
  type SharedMemoryFactory,
  type VariantDevice,
  VfioError,
  VfioPciDevice,
  type VfioPciVariant,
  variantFor,
} from '../vfio/index.ts';
import { createNvlink2Context, type KernelLogLine } from './context.ts';
import { DeviceMemoryStore } from './device-memory.ts';
import { NVLINK2_ATSD_REGION_TYPE, NVLINK2_RAM_REGION_TYPE } from './hooks.ts';
import type { KernelVersion } from './kernel-version.ts';
import type { Nvlink2CapabilityValue } from './region-caps.ts';
import { nvlink2Variant } from './variant.ts';

/**
 * One region the init registered: index, type ("0x800010de", as inspect's TYPE capability),
 * subtype, size in bytes as a hex string (as inspect's region size) and its capabilities.
 */
export interface DoctorRegion {
  readonly index: number;
  readonly type: string;
  readonly subtype: number;
  readonly size: string;
  /** The flags the subdriver registered (READ 1 | WRITE 2 | MMAP 4). */
  readonly flags: number;
  readonly caps: { readonly tgt?: string; readonly linkSpeed?: number };
}

/**
 * One PCI function in `dt doctor`'s report: address, IDs, role, IOMMU group and what the init did
 * (regions, or errno and reason), with warnings.
 */
export type DoctorEntry = DoctorRow<'nvlink2', DoctorRegion>;

/** One function: open it with the variant (if it drives it), report, close, discard. */
function examine(
  host: Host,
  fn: PciFunction,
  variant: VfioPciVariant<Nvlink2CapabilityValue>,
  warnings: string[],
  memory: SharedMemoryFactory,
  listRegions: boolean,
): DoctorEntry {
  const declined: VfioError[] = [];
  const observed: VfioPciVariant<Nvlink2CapabilityValue> = {
    ...variant,
    hooks: variant.hooks.map((h) => ({
      ...h,
      init: (device: VariantDevice) => {
        try {
          h.init(device);
        } catch (err) {
          if (err instanceof VfioError) declined.push(err);
          throw err;
        }
      },
    })),
  };
  const base = doctorRowIdentity(fn);
  const device = new VfioPciDevice(fn, host, variantFor([observed], fn), { memory });
  try {
    device.open();
  } catch (err) {
    device.dispose();
    if (!(err instanceof VfioError)) throw err;
    const cause = declined.at(-1);
    return {
      ...base,
      result: 'error',
      errno: err.code,
      reason: cause?.reason ?? err.reason,
      regions: [],
      warnings,
    };
  }
  try {
    const regions = (listRegions ? device.regions : []).map((r): DoctorRegion => {
      const info = decodeRegionInfo(device.regionInfo(r.index).bytes, variant.regionCapabilities);
      const caps: { tgt?: string; linkSpeed?: number } = {};
      for (const c of info.caps) {
        if (c.value.kind === 'nvlink2-ssatgt') caps.tgt = hex(c.value.tgt);
        if (c.value.kind === 'nvlink2-lnkspd') caps.linkSpeed = c.value.linkSpeed;
      }
      return {
        index: r.index,
        type: hex(r.type ?? 0, 8),
        subtype: r.subtype ?? 0,
        size: hex(r.size),
        flags: r.flags,
        caps,
      };
    });
    if (device.regions.length > 0)
      return { ...base, result: 'nvlink2', errno: null, reason: null, regions, warnings };
    const cause = declined.find((e) => e.code === 'ENODEV');
    if (cause)
      return { ...base, result: 'plain', errno: 'ENODEV', reason: cause.reason, regions, warnings };
    return {
      ...base,
      result: 'plain',
      errno: null,
      reason: `no NVLink2 hook for vendor ${hex(fn.vendor, 4)}`,
      regions,
      warnings,
    };
  } finally {
    device.dispose();
  }
}

/**
 * Options of `runDoctorOnHost`: the kernel version whose behaviour to follow (default 5.12), and
 * where the device memory of the probes lives (default `createProbeMemory`: in this process, no
 * memfd; the verdicts do not depend on it).
 */
export interface DoctorOptions {
  readonly kernel?: KernelVersion;
  readonly memory?: SharedMemoryFactory;
  /**
   * False: the verdicts alone, every entry's `regions` empty (no region info encoded and
   * decoded per region), as serve's devices.json needs them at start. Default true.
   */
  readonly regions?: boolean;
}

/** What the subdriver's init does to every PCI function of `host`, in address order. */
export function runDoctorOnHost(host: Host, options: DoctorOptions = {}): DoctorEntry[] {
  // Memory in this process by default, no memfds: the init registers the same regions either way.
  const memory = options.memory ?? createProbeMemory;
  let current: string[] = [];
  let currentFn: PciFunction | undefined;
  const log = (line: KernelLogLine) => {
    if (line.level === 'warn' && currentFn && line.device === currentFn.name)
      current.push(line.message);
  };
  const ctx = createNvlink2Context(host, {
    log,
    memory: new DeviceMemoryStore(memory),
    ...(options.kernel ? { kernel: options.kernel } : {}),
  });
  const variant = nvlink2Variant(ctx);
  const entries: DoctorEntry[] = [];
  try {
    for (const fn of host.functions) {
      current = [];
      currentFn = fn;
      entries.push(examine(host, fn, variant, current, memory, options.regions !== false));
      currentFn = undefined;
    }
  } finally {
    ctx.memory.closeAll();
  }
  return entries;
}

const FLAG_NAMES: [number, string][] = [
  [1, 'R'],
  [2, 'W'],
  [4, 'MMAP'],
];

function describeRegion(r: DoctorRegion): string {
  const flags = FLAG_NAMES.filter(([b]) => r.flags & b)
    .map(([, n]) => n)
    .join('|');
  const caps = [
    r.caps.tgt !== undefined ? `tgt ${r.caps.tgt}` : '',
    r.caps.linkSpeed !== undefined ? `link-speed ${hex(r.caps.linkSpeed, 1)}` : '',
  ].filter((s) => s.length > 0);
  const type = Number(r.type);
  const what =
    type === NVLINK2_RAM_REGION_TYPE
      ? 'GPU RAM'
      : type === NVLINK2_ATSD_REGION_TYPE
        ? 'ATSD'
        : 'region';
  return `region ${r.index} ${what} type ${r.type}/${r.subtype} size ${r.size} ${flags}${caps.length ? ` ${caps.join(' ')}` : ''}`;
}

/** The WHAT column of an entry: its regions, or its errno and reason. */
export function doctorWhat(e: DoctorEntry): string {
  return e.result === 'nvlink2'
    ? e.regions.map(describeRegion).join('; ')
    : `${e.errno ? `${e.errno}: ` : ''}${e.reason ?? ''}`;
}

/**
 * The doctor's report as a table for people: one row per function (WHAT from `what`), its
 * warnings under it, then a count of each result in `results` (a result listed with `?` is
 * counted only when some entry has it, e.g. `nvgrace?`).
 */
export function formatDoctorReport<E extends DoctorRow<string, unknown>>(
  entries: readonly E[],
  what: (e: E) => string = (e) => doctorWhat(e as unknown as DoctorEntry),
  results: readonly string[] = ['nvlink2', 'plain', 'error'],
): string {
  const head = ['ADDRESS', 'ID', 'ROLE', 'GROUP', 'RESULT', 'WHAT'];
  const rows = entries.map((e) => [
    e.address,
    `${e.vendor.slice(2)}:${e.device.slice(2)}`,
    e.role,
    e.iommuGroup === null ? '-' : String(e.iommuGroup),
    e.result,
    what(e),
  ]);
  const table = layoutTable(head, rows);
  // Warnings under their function, indented to the ID column.
  const indent = ' '.repeat((table.widths[0] ?? 0) + 2);
  const out = [table.lines[0] ?? ''];
  entries.forEach((e, i) => {
    out.push(table.lines[i + 1] ?? '');
    for (const w of e.warnings) out.push(`${indent}warning: ${w}`);
  });
  const counts = results.flatMap((listed) => {
    const result = listed.replace(/\?$/, '');
    const n = entries.filter((e) => e.result === result).length;
    return n === 0 && listed.endsWith('?') ? [] : [`${n} ${result}`];
  });
  out.push('', `${entries.length} functions: ${counts.join(', ')}`);
  return out.join('\n');
}
