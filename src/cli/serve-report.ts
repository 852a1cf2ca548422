/**
 * What `serve` tells the world: DIR/devices.json (every PCI function in `dt doctor --json`'s
 * vocabulary plus the socket serving it), the table on stdout, and DIR/state.json (the guest
 * partitions with their LPIDs, KVM's LPIDs in use, the NPU firmware tables and the device
 * memory each GPU holds against the budget), rewritten whenever a client opens or releases a
 * device or the memory held changes, so tests and operators can watch the LPID
 * tables without a side channel into the server. Files are replaced atomically (rename).
 */
import type { Machine, PartitionRegistry } from '../machine/index.ts';
import type { Npu2Snapshot } from '../platform/index.ts';
import { type DevicesListEntry, devicesListEntry, type ServeState } from '../serve-dir/index.ts';
import { replaceFile } from '../state-dir/index.ts';
import { hex, hexDigits, layoutTable } from '../text/index.ts';
import type { FileIdentity } from '../vfio-user/index.ts';

/** devices.json entries: every function's status, with its socket when served. */
export function deviceEntries(
  machine: Machine,
  sockets: ReadonlyMap<string, string>,
): DevicesListEntry[] {
  return machine.statuses().map((s) => devicesListEntry(s, sockets.get(s.address)));
}

/** The readable table. */
export function formatDeviceTable(entries: readonly DevicesListEntry[]): string {
  const rows = entries.map((e) => [
    e.address,
    `${e.vendor.slice(2)}:${e.device.slice(2)}`,
    e.role,
    e.iommuGroup === null ? '-' : String(e.iommuGroup),
    e.result === 'nvlink2' || e.result === 'nvgrace' ? e.result : `${e.result} (${e.errno})`,
    e.socket ?? '-',
  ]);
  const head = ['ADDRESS', 'ID', 'ROLE', 'GROUP', 'RESULT', 'SOCKET'];
  return layoutTable(head, rows).lines.join('\n');
}

function toJson(value: unknown): string {
  return JSON.stringify(value, (_k: string, v: unknown) => (typeof v === 'bigint' ? hex(v) : v), 2);
}

/**
 * Writes `data` as JSON to `path` through a temporary file and a rename (replaceFile), the
 * file's mode exactly `mode` whatever the umask.
 * @returns the file written (st_dev, st_ino): serve removes it at exit only while `path` is it.
 * @throws NodeJS.ErrnoException from open/write/rename (the temporary file is removed).
 */
export function writeJsonAtomically(path: string, data: unknown, mode: number): FileIdentity {
  return replaceFile(path, `${toJson(data)}\n`, { mode });
}

/** The content of state.json. */
export function serverState(machine: Machine, partitions: PartitionRegistry): ServeState {
  return {
    pid: process.pid,
    partitions: partitions.list(),
    lpidsInUse: machine.lpids.inUse(),
    firmware: machine.firmwareSnapshot().map(firmwareState),
    memory: memoryState(machine),
  };
}

/**
 * state.json `firmware`: each NPU's tables in the vocabulary of every JSON of ours: a BDF map
 * entry's `bdf` as "BB:DD.F" (the register holds bus and devfn, no domain), an ATSD register's
 * MMIO address as `mmio` ("address" is a PCI address everywhere), 64-bit values as hex strings.
 */
function firmwareState(npu: Npu2Snapshot) {
  return {
    ...npu,
    phbId: hex(npu.phbId),
    bdfMap: npu.bdfMap.map((e) => ({ ...e, bdf: shortBdf(e.bdf) })),
    atsd: npu.atsd.map(({ address, ...rest }) => ({
      index: rest.index,
      mmio: address === undefined ? null : hex(address),
      lpid: rest.lpid,
      msrHv: rest.msrHv,
    })),
  };
}

/** A 16-bit bus/devfn as lspci prints it without a domain: "01:00.0". */
function shortBdf(bdf: number): string {
  return `${hexDigits(bdf >> 8, 2)}:${hexDigits((bdf >> 3) & 0x1f, 2)}.${bdf & 7}`;
}

/** state.json `memory`: bytes as numbers (exact below 2^53). */
function memoryState(machine: Machine) {
  const u = machine.memoryUsage();
  return {
    budget: u.budget === undefined ? null : Number(u.budget),
    touched: Number(u.touched),
    refused: u.refused,
    gpus: u.gpus.map((g) => ({
      address: g.address,
      gpuRam: Number(g.gpuRam),
      bars: Number(g.bars),
    })),
  };
}
