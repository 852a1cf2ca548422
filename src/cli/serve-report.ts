/**
 * What `serve` tells the world: DIR/devices.json (every PCI function in `dt doctor --json`'s
 * vocabulary plus the socket serving it), the table on stdout, and DIR/state.json (the guest
 * partitions with their LPIDs, KVM's LPIDs in use, the NPU firmware tables and the device
 * memory each GPU holds against the budget), rewritten whenever a client opens or releases a
 * device or the memory held changes, so tests and operators can watch the LPID
 * tables without a side channel into the server. Files are replaced atomically (rename).
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import type { FunctionStatus, Machine } from '../machine/index.ts';
import type { PartitionRegistry } from '../vfio-user/partition.ts';

export interface DeviceEntry extends FunctionStatus {
  readonly socket?: string;
}

/** devices.json entries: the status with `socket` after `iommuGroup` when served. */
export function deviceEntries(
  machine: Machine,
  sockets: ReadonlyMap<string, string>,
): DeviceEntry[] {
  return machine.statuses().map((s) => {
    const { address, vendor, device, role, iommuGroup, ...rest } = s;
    const socket = sockets.get(address);
    return { address, vendor, device, role, iommuGroup, ...(socket ? { socket } : {}), ...rest };
  });
}

/** The readable table. */
export function formatDeviceTable(entries: readonly DeviceEntry[]): string {
  const rows = entries.map((e) => [
    e.address,
    `${e.vendor.slice(2)}:${e.device.slice(2)}`,
    e.role,
    String(e.iommuGroup),
    e.result === 'nvlink2' || e.result === 'nvgrace' ? e.result : `${e.result} (${e.errno})`,
    e.socket ?? '-',
  ]);
  const head = ['ADDRESS', 'ID', 'ROLE', 'GROUP', 'RESULT', 'SOCKET'];
  // A loop, not Math.max(...rows): spreading 125,000+ rows (a tree's worth) overflows the stack.
  const widths = head.map((h) => h.length);
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2);
}

/**
 * Writes `data` to `path` through a temporary file and a rename, the file's mode exactly
 * `mode` whatever the umask. The temporary name is random and created exclusively with
 * O_NOFOLLOW, so a file or symlink planted there is never written through; rename(2) replaces
 * a symlink at `path` itself, never its target.
 * @throws NodeJS.ErrnoException from open/write/rename (the temporary file is removed).
 */
export function writeJsonAtomically(path: string, data: unknown, mode: number): void {
  const tmp = `${path}.${randomBytes(8).toString('hex')}.tmp`;
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
  const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    try {
      fchmodSync(fd, mode); // the umask may have narrowed it
      writeFileSync(fd, `${toJson(data)}\n`);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** The content of state.json. */
export function serverState(machine: Machine, partitions: PartitionRegistry): unknown {
  return {
    pid: process.pid,
    partitions: partitions.list(),
    lpidsInUse: machine.lpids.inUse(),
    firmware: machine.firmwareSnapshot(),
    memory: memoryState(machine),
  };
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
