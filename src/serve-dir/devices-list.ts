/**
 * devices.json, the list `serve` writes beside its sockets (src/cli/serve-report.ts) and other
 * processes read to find a device: `inspect SOCKET`, `guest`, the bench, the fuzzer, the tests.
 * One entry type for the writer and every reader, and one validator where it is read: the
 * file is input like any other, so its size and length are bounded before it is parsed or
 * walked and every member of every entry is checked; one line names the file, the entry and
 * the member. Members the vocabulary does not know are ignored (and not returned).
 */
import { isAbsolute, join } from 'node:path';
import type { FunctionStatus } from '../machine/index.ts';
import { JsonReader, shown } from '../text/index.ts';
import { VfioError } from '../vfio/index.ts';
import { readUntrustedFile } from './bounded-file.ts';

/** Most bytes read: serve lists every PCI function of a host in ~300 bytes each. */
export const DEVICES_LIST_MAX_BYTES = 4 * 1024 * 1024;
/** Most entries: more PCI functions than a POWER9 host has PHBs to hold. */
export const DEVICES_LIST_MAX_ENTRIES = 4096;

/**
 * One PCI function of devices.json: its status in `dt doctor --json`'s vocabulary (address
 * "DDDD:BB:DD.F", vendor and device "0x10de", role, iommuGroup, result, errno, reason) and,
 * after iommuGroup, the socket serving it when it is served.
 */
export interface DevicesListEntry extends FunctionStatus {
  /** The device's socket, absent when it is not served; absolute (serve resolves its directory). */
  readonly socket?: string;
}

/** Checked mirrors of the unions (a missing or extra member fails to compile). */
const ROLES: Record<DevicesListEntry['role'], true> = { gpu: true, bridge: true, other: true };
const RESULTS: Record<DevicesListEntry['result'], true> = {
  nvlink2: true,
  nvgrace: true,
  plain: true,
  error: true,
};

/** pci_name(): a domain of 4 or more hex digits (linux,pci-domain is 32-bit), bus, slot, fn. */
const PCI_NAME = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
/** errnoName(): "ENODEV", or "E" and the number for one without a name. */
const ERRNO_NAME = /^E[A-Z0-9]+$/;
/** A 16-bit PCI ID as doctor writes it. */
const PCI_ID = /^0x[0-9a-f]{4}$/;

/** serve-dir's error: EINVAL with the message. */
export function einval(message: string): VfioError {
  return new VfioError('EINVAL', message);
}

function invalid(path: string, why: string): VfioError {
  return einval(`${path}: ${why}`);
}

function entryOf(path: string, i: number, e: unknown): DevicesListEntry {
  if (typeof e !== 'object' || e === null || Array.isArray(e))
    throw invalid(path, `entry ${i} must be an object, got ${shown(e)}`);
  const o = e as Record<string, unknown>;
  const bad = (member: string, what: string) =>
    invalid(path, `entry ${i}: "${member}" must be ${what}, got ${shown(o[member])}`);
  const text = (member: string, pattern: RegExp, what: string): string => {
    const v = o[member];
    if (typeof v !== 'string' || !pattern.test(v)) throw bad(member, what);
    return v;
  };
  const orNull = (member: string, pattern: RegExp, what: string): string | null =>
    o[member] === null ? null : text(member, pattern, `${what} or null`);
  const oneOf = <K extends string>(member: string, names: Record<K, true>): K => {
    const v = o[member];
    if (typeof v !== 'string' || !Object.hasOwn(names, v))
      throw bad(member, `one of ${Object.keys(names).join(', ')}`);
    return v as K;
  };
  if (typeof o.address !== 'string') throw bad('address', 'a string');
  const address = text('address', PCI_NAME, 'a PCI name DDDD:BB:DD.F');
  const vendor = text('vendor', PCI_ID, 'a PCI ID 0xNNNN');
  const device = text('device', PCI_ID, 'a PCI ID 0xNNNN');
  const role = oneOf('role', ROLES);
  const g = o.iommuGroup;
  if (g !== null && (typeof g !== 'number' || !Number.isSafeInteger(g) || g < 0))
    throw bad('iommuGroup', 'a non-negative integer or null');
  const s = o.socket;
  if (s !== undefined && (typeof s !== 'string' || s === '')) throw bad('socket', 'a path');
  const status = { address, vendor, device, role, iommuGroup: g };
  const verdict = {
    result: oneOf('result', RESULTS),
    errno: orNull('errno', ERRNO_NAME, 'an errno name'),
    reason: orNull('reason', /^/, 'a string'),
  };
  return devicesListEntry({ ...status, ...verdict }, s);
}

/** The entry of one function as serve writes it: its status with `socket` after `iommuGroup`. */
export function devicesListEntry(status: FunctionStatus, socket?: string): DevicesListEntry {
  const { address, vendor, device, role, iommuGroup, result, errno, reason } = status;
  const served = socket === undefined ? {} : { socket };
  return { address, vendor, device, role, iommuGroup, ...served, result, errno, reason };
}

/**
 * The entries of the devices.json text `text` (read from `path`, named in errors), each with
 * exactly the members of DevicesListEntry.
 * @throws VfioError EINVAL for text that is not JSON, not an array, longer than
 *   DEVICES_LIST_MAX_ENTRIES, or an entry missing a member or holding one of another type.
 */
export function parseDevicesList(path: string, text: string): DevicesListEntry[] {
  const data = new JsonReader(path, einval).parse(text);
  if (!Array.isArray(data))
    throw invalid(path, `must be an array of PCI functions, got ${shown(data)}`);
  if (data.length > DEVICES_LIST_MAX_ENTRIES)
    throw invalid(path, `lists ${data.length} entries, at most ${DEVICES_LIST_MAX_ENTRIES}`);
  const entries: readonly unknown[] = data;
  return entries.map((e, i) => entryOf(path, i, e));
}

/**
 * Reads and checks the devices.json at `path`, reading no more than DEVICES_LIST_MAX_BYTES, and
 * only from a regular file (a FIFO or a symlink planted there is refused: readUntrustedFile).
 * @throws VfioError EINVAL as `parseDevicesList`, or for a file over the size bound, a symlink,
 *   anything but a regular file;
 *   SystemCallError-like Node errors (ENOENT, EACCES) when it cannot be opened.
 */
export function readDevicesList(path: string): DevicesListEntry[] {
  return parseDevicesList(path, readUntrustedFile(path, DEVICES_LIST_MAX_BYTES));
}

/** A served function as a client reaches it. */
export interface ServedDevice {
  readonly address: string;
  /** Its socket; a relative path (not serve's) is taken relative to the list's directory. */
  readonly socket: string;
  readonly iommuGroup: number | null;
}

/**
 * The served functions `dir`/devices.json lists, in its order.
 * @throws as `readDevicesList`.
 */
export function servedDevices(dir: string): ServedDevice[] {
  const out: ServedDevice[] = [];
  for (const { address, socket, iommuGroup } of readDevicesList(join(dir, 'devices.json'))) {
    if (socket !== undefined)
      out.push({ address, socket: isAbsolute(socket) ? socket : join(dir, socket), iommuGroup });
  }
  return out;
}
