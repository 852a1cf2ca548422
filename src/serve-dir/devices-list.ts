/**
 * Reading the devices.json `serve` writes beside its sockets (src/cli/serve-report.ts: an
 * array of PCI functions, `socket` on the served ones, `iommuGroup` on each) when another
 * process finds a device by it: `inspect SOCKET`, `guest`, the bench. The file is input like any
 * other: its size and length are bounded before it is parsed or walked, and each member a
 * reader uses is checked for its type; one line names the file, the entry and the member.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { VfioError } from '../vfio/index.ts';

/** Most bytes read: serve lists every PCI function of a host in ~300 bytes each. */
export const DEVICES_LIST_MAX_BYTES = 4 * 1024 * 1024;
/** Most entries: more PCI functions than a POWER9 host has PHBs to hold. */
export const DEVICES_LIST_MAX_ENTRIES = 4096;

/** What a reader takes from one entry; members it does not use are ignored. */
export interface DevicesListEntry {
  readonly address: string;
  /** The device's socket, absent when it is not served. */
  readonly socket?: string;
  readonly iommuGroup?: number;
}

function invalid(path: string, why: string): VfioError {
  return new VfioError('EINVAL', `${path}: ${why}`);
}

/** A member's value as shown in an error: short, one line, never a walk of a deep value. */
function shown(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object' && v !== null) return 'an object';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function entryOf(path: string, i: number, e: unknown): DevicesListEntry {
  if (typeof e !== 'object' || e === null || Array.isArray(e))
    throw invalid(path, `entry ${i} must be an object, got ${shown(e)}`);
  const o = e as Record<string, unknown>;
  if (typeof o.address !== 'string')
    throw invalid(path, `entry ${i}: "address" must be a string, got ${shown(o.address)}`);
  const out: { address: string; socket?: string; iommuGroup?: number } = { address: o.address };
  if (o.socket !== undefined) {
    if (typeof o.socket !== 'string' || o.socket === '')
      throw invalid(path, `entry ${i}: "socket" must be a path, got ${shown(o.socket)}`);
    out.socket = o.socket;
  }
  if (o.iommuGroup !== undefined && o.iommuGroup !== null) {
    const g = o.iommuGroup;
    if (typeof g !== 'number' || !Number.isSafeInteger(g) || g < 0)
      throw invalid(
        path,
        `entry ${i}: "iommuGroup" must be a non-negative integer, got ${shown(g)}`,
      );
    out.iommuGroup = g;
  }
  return out;
}

/**
 * The entries of the devices.json text `text` (read from `path`, named in errors).
 * @throws VfioError EINVAL for text that is not JSON, not an array, longer than
 *   DEVICES_LIST_MAX_ENTRIES, or an entry whose address, socket or iommuGroup has another type.
 */
export function parseDevicesList(path: string, text: string): DevicesListEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw invalid(path, `not JSON (${JSON.stringify(why.slice(0, 80)).slice(1, -1)})`);
  }
  if (!Array.isArray(data))
    throw invalid(path, `must be an array of PCI functions, got ${shown(data)}`);
  if (data.length > DEVICES_LIST_MAX_ENTRIES)
    throw invalid(path, `lists ${data.length} entries, at most ${DEVICES_LIST_MAX_ENTRIES}`);
  return data.map((e, i) => entryOf(path, i, e));
}

/**
 * Reads and checks the devices.json at `path`, reading no more than DEVICES_LIST_MAX_BYTES.
 * @throws VfioError EINVAL as `parseDevicesList`, or for a file over the size bound;
 *   SystemCallError-like Node errors (ENOENT, EACCES) when it cannot be opened.
 */
export function readDevicesList(path: string): DevicesListEntry[] {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > DEVICES_LIST_MAX_BYTES)
      throw invalid(path, `${size} bytes, at most ${DEVICES_LIST_MAX_BYTES}`);
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return parseDevicesList(path, buf.toString('utf8', 0, got));
  } finally {
    closeSync(fd);
  }
}
