/**
 * `dt doctor` over every variant: what the NVLink2 subdriver (src/nvlink2/doctor.ts) and
 * nvgrace-gpu (src/nvgrace/doctor.ts) make of each PCI function, one row per function in
 * address order — a function nvgrace-gpu binds is reported by it, as driver binding picks one
 * driver. The table is the NVLink2 doctor's, with an `nvgrace` count in the last line when
 * there is one.
 */

import type { Fdt } from '../fdt/index.ts';
import { type NvgraceDoctorEntry, nvgraceDoctorWhat, runNvgraceDoctor } from '../nvgrace/index.ts';
import {
  type DoctorEntry,
  type DoctorOptions,
  doctorWhat,
  formatDoctorReport,
  runDoctorOnHost,
} from '../nvlink2/index.ts';
import { buildHost, type Host } from '../platform/index.ts';

/** A `dt doctor` row: the NVLink2 doctor's or, for a function nvgrace-gpu binds, the nvgrace doctor's. */
export type HostDoctorEntry = DoctorEntry | NvgraceDoctorEntry;

/** Every function of `host`, reported by the variant that binds it. */
export function runHostDoctor(host: Host, options: DoctorOptions = {}): HostDoctorEntry[] {
  const grace = new Map<string, HostDoctorEntry>(runNvgraceDoctor(host).map((e) => [e.address, e]));
  return runDoctorOnHost(host, options).map((e) => grace.get(e.address) ?? e);
}

function what(e: HostDoctorEntry): string {
  // plain and error rows read the same in both doctors: errno and reason
  return e.result === 'nvgrace' ? nvgraceDoctorWhat(e) : doctorWhat(e as DoctorEntry);
}

/** The report as a table for people (the NVLink2 doctor's, with an nvgrace count when any). */
export function formatHostDoctorReport(entries: readonly HostDoctorEntry[]): string {
  return formatDoctorReport(entries, what, ['nvlink2', 'nvgrace?', 'plain', 'error']);
}

/**
 * `entries` (the NVLink2 doctor's, one per function of `fdt`, as the linter's replay made them)
 * with each function nvgrace-gpu binds reported by nvgrace-gpu's probe instead; `entries` as
 * they are when `fdt` builds no host.
 */
export function withNvgraceEntries(fdt: Fdt, entries: readonly DoctorEntry[]): HostDoctorEntry[] {
  let host: Host;
  try {
    host = buildHost(fdt);
  } catch {
    return [...entries];
  }
  const grace = new Map<string, HostDoctorEntry>(runNvgraceDoctor(host).map((e) => [e.address, e]));
  return entries.map((e) => grace.get(e.address) ?? e);
}
