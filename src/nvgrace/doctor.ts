/**
 * `dt doctor` for the functions nvgrace-gpu binds: each is probed as the server would (a core
 * device with the variant, in a throwaway context so no device memory is made), and reported
 * in `dt doctor --json`'s vocabulary: result `nvgrace` with its fake BARs, `plain` (the memory
 * properties failed: the driver's core ops) or `error` (the probe failed: no vfio device).
 */
import type { Host, PciFunction } from '../platform/index.ts';
import { hex } from '../text/index.ts';
import { type DoctorRow, doctorRowIdentity, VfioPciDevice } from '../vfio/index.ts';
import { NvgraceContext } from './context.ts';
import { graceGpuModel } from './profile.ts';
import { nvgraceVariant } from './variant.ts';

/** A fake BAR in the doctor's report: region index (4 usemem, 2 resmem) and struct mem_region's fields as hex strings. */
export interface NvgraceDoctorRegion {
  readonly index: number;
  readonly name: 'usemem' | 'resmem';
  /** Bytes of device memory behind it (the sparse-mmap area). */
  readonly memlength: string;
  /** The BAR size shown (a power of two). */
  readonly barSize: string;
  readonly memphys: string;
}

/** A `dt doctor --json` row for a function nvgrace-gpu binds: ids as hex, the probe's result, errno and reason, and its fake BARs. */
export type NvgraceDoctorEntry = DoctorRow<'nvgrace', NvgraceDoctorRegion>;

function examine(host: Host, fn: PciFunction, ctx: NvgraceContext): NvgraceDoctorEntry {
  const base = { ...doctorRowIdentity(fn), warnings: [] };
  const device = new VfioPciDevice(fn, host, nvgraceVariant(ctx));
  device.dispose();
  const outcome = ctx.outcome(fn.name);
  if (!outcome) return { ...base, result: 'plain', errno: null, reason: 'not probed', regions: [] };
  if (outcome.result !== 'nvgrace') return { ...base, ...outcome, regions: [] };
  const { usemem, resmem } = outcome.layout;
  const region = (index: number, name: 'usemem' | 'resmem', r: typeof usemem) => ({
    index,
    name,
    memlength: hex(r.memlength),
    barSize: hex(r.barSize),
    memphys: hex(r.memphys),
  });
  const regions = [region(4, 'usemem', usemem), ...(resmem ? [region(2, 'resmem', resmem)] : [])];
  const reason = `${outcome.hasMigHwBug ? 'MIG hardware bug: resmem carved out' : 'no MIG bug: all memory is usemem'}; ready after ${outcome.polls} poll${outcome.polls === 1 ? '' : 's'}`;
  return { ...base, result: 'nvgrace', errno: null, reason, regions };
}

/** The doctor's entries for every function of `host` that nvgrace-gpu binds, in address order. */
export function runNvgraceDoctor(host: Host): NvgraceDoctorEntry[] {
  const ctx = new NvgraceContext();
  try {
    return host.functions
      .filter((fn) => graceGpuModel(fn.vendor, fn.device) !== undefined)
      .map((fn) => examine(host, fn, ctx));
  } finally {
    ctx.closeAll();
  }
}

const GiB = 1n << 30n;
const MiB = 1n << 20n;

function size(hexText: string): string {
  const v = BigInt(hexText);
  if (v % GiB === 0n) return `${v / GiB} GiB`;
  if (v % MiB === 0n) return `${v / MiB} MiB`;
  return `${hexText} bytes`;
}

/** The WHAT column of an entry: its fake BARs, or its errno and reason. */
export function nvgraceDoctorWhat(e: NvgraceDoctorEntry): string {
  if (e.result !== 'nvgrace') return `${e.errno ? `${e.errno}: ` : ''}${e.reason ?? ''}`;
  const bars = e.regions.map(
    (r) => `BAR${r.index} ${r.name} ${size(r.memlength)} in ${size(r.barSize)} at ${r.memphys}`,
  );
  return `${bars.join('; ')} (${e.reason})`;
}
