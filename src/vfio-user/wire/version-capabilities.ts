/**
 * The VERSION message's JSON capabilities (vfio-user.rst "VFIO_USER_VERSION", member names from
 * QEMU hw/vfio-user/protocol.h VFIO_USER_CAP_*): `{"capabilities":{...}}`, UTF-8, NUL-terminated
 * on the wire. Parsing validates every known member's type (EINVAL otherwise) and keeps unknown
 * members verbatim; serialising is compact and in a fixed order, so a reply stays short
 * (QEMU reads it into a buffer the size of its own request).
 */

import { messageOf } from '../../errors/index.ts';
import { parseJson } from '../../text/index.ts';
import { VfioError } from '../../vfio/index.ts';
import {
  DEFAULT_MAX_DATA_XFER_SIZE,
  DEFAULT_MAX_DMA_MAPS,
  DEFAULT_MAX_MSG_FDS,
  DEFAULT_PGSIZES,
} from './constants.ts';

/** The "twin_socket" capability (vfio-user.rst "Version"): whether supported, and the fd index. */
export interface TwinSocketCapability {
  supported?: boolean;
  fdIndex?: number;
}

/**
 * The "migration" capability (vfio-user.rst "Version"): page size and largest dirty bitmap (bytes).
 */
export interface MigrationCapability {
  pgsize?: number;
  maxBitmapSize?: number;
}

/** The members of "capabilities"; absent means "not stated" (the defaults apply). */
export interface VersionCapabilities {
  maxMsgFds?: number;
  maxDataXferSize?: number;
  maxDmaMaps?: number;
  pgsizes?: number;
  twinSocket?: TwinSocketCapability;
  writeMultiple?: boolean;
  migration?: MigrationCapability;
  /** Members this implementation does not know, kept as parsed. */
  unknown?: Record<string, unknown>;
}

/** Capabilities with every default filled in (what a peer must assume). */
export interface EffectiveCapabilities {
  maxMsgFds: number;
  maxDataXferSize: number;
  maxDmaMaps: number;
  pgsizes: number;
  writeMultiple: boolean;
  twinSocket: boolean;
}

/** A peer's limits: what it stated in VERSION, the protocol's defaults for the rest. */
export function effectiveCapabilities(c: VersionCapabilities | null): EffectiveCapabilities {
  return {
    maxMsgFds: c?.maxMsgFds ?? DEFAULT_MAX_MSG_FDS,
    maxDataXferSize: c?.maxDataXferSize ?? DEFAULT_MAX_DATA_XFER_SIZE,
    maxDmaMaps: c?.maxDmaMaps ?? DEFAULT_MAX_DMA_MAPS,
    pgsizes: c?.pgsizes ?? DEFAULT_PGSIZES,
    writeMultiple: c?.writeMultiple ?? false,
    twinSocket: c?.twinSocket?.supported ?? false,
  };
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(reason: string): VfioError {
  return new VfioError('EINVAL', `VERSION capabilities: ${reason}`);
}

/**
 * A peer's value as an error shows it: one short line, and never a walk of a nested value
 * (JSON.stringify recurses, and the peer chose the depth).
 */
function shown(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (isObject(v)) return 'an object';
  return cut(JSON.stringify(v) ?? String(v));
}

function cut(line: string): string {
  return line.length > 80 ? `${line.slice(0, 80)}…` : line;
}

/** `text` escaped to one line and cut at 80 characters. */
function clip(text: string): string {
  return cut(JSON.stringify(text).slice(1, -1));
}

function uint(o: Json, key: string): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw invalid(`"${key}" must be a non-negative integer, got ${shown(v)}`);
  }
  return v;
}

function bool(o: Json, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalid(`"${key}" must be a boolean, got ${shown(v)}`);
  return v;
}

function object(o: Json, key: string): Json | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!isObject(v)) throw invalid(`"${key}" must be an object`);
  return v;
}

const KNOWN = new Set([
  'max_msg_fds',
  'max_data_xfer_size',
  'max_dma_maps',
  'pgsizes',
  'twin_socket',
  'write_multiple',
  'migration',
]);

function fromJson(c: Json): VersionCapabilities {
  const out: VersionCapabilities = {};
  const set = <K extends keyof VersionCapabilities>(
    k: K,
    v: VersionCapabilities[K] | undefined,
  ) => {
    if (v !== undefined) out[k] = v;
  };
  set('maxMsgFds', uint(c, 'max_msg_fds'));
  set('maxDataXferSize', uint(c, 'max_data_xfer_size'));
  set('maxDmaMaps', uint(c, 'max_dma_maps'));
  set('pgsizes', uint(c, 'pgsizes'));
  const twin = object(c, 'twin_socket');
  if (twin) {
    const t: TwinSocketCapability = {};
    const supported = bool(twin, 'supported');
    const fdIndex = uint(twin, 'fd_index');
    if (supported !== undefined) t.supported = supported;
    if (fdIndex !== undefined) t.fdIndex = fdIndex;
    out.twinSocket = t;
  }
  set('writeMultiple', bool(c, 'write_multiple'));
  const mig = object(c, 'migration');
  if (mig) {
    const m: MigrationCapability = {};
    const pgsize = uint(mig, 'pgsize');
    const maxBitmapSize = uint(mig, 'max_bitmap_size');
    if (pgsize !== undefined) m.pgsize = pgsize;
    if (maxBitmapSize !== undefined) m.maxBitmapSize = maxBitmapSize;
    out.migration = m;
  }
  const unknown = Object.entries(c).filter(([k]) => !KNOWN.has(k));
  if (unknown.length > 0) out.unknown = Object.fromEntries(unknown);
  return out;
}

/**
 * Parses the JSON text of a VERSION message (without its NUL). Empty text means no
 * capabilities (null).
 * @throws VfioError EINVAL for invalid JSON, a non-object root or "capabilities", or a
 *   known member of the wrong type.
 */
export function parseVersionJson(text: string): VersionCapabilities | null {
  if (text.length === 0) return null;
  let root: unknown;
  try {
    root = parseJson(text);
  } catch (e) {
    throw invalid(`not JSON (${clip(messageOf(e))})`);
  }
  if (!isObject(root)) throw invalid('the JSON root must be an object');
  const caps = object(root, 'capabilities');
  return caps === undefined ? {} : fromJson(caps);
}

/** Compact JSON for `caps` (no NUL). `null` gives the empty string (no version data). */
export function serializeVersionJson(caps: VersionCapabilities | null): string {
  if (caps === null) return '';
  const c: Json = {};
  if (caps.maxMsgFds !== undefined) c.max_msg_fds = caps.maxMsgFds;
  if (caps.maxDataXferSize !== undefined) c.max_data_xfer_size = caps.maxDataXferSize;
  if (caps.maxDmaMaps !== undefined) c.max_dma_maps = caps.maxDmaMaps;
  if (caps.pgsizes !== undefined) c.pgsizes = caps.pgsizes;
  if (caps.twinSocket !== undefined) {
    const t: Json = {};
    if (caps.twinSocket.supported !== undefined) t.supported = caps.twinSocket.supported;
    if (caps.twinSocket.fdIndex !== undefined) t.fd_index = caps.twinSocket.fdIndex;
    c.twin_socket = t;
  }
  if (caps.writeMultiple !== undefined) c.write_multiple = caps.writeMultiple;
  if (caps.migration !== undefined) {
    const m: Json = {};
    if (caps.migration.pgsize !== undefined) m.pgsize = caps.migration.pgsize;
    if (caps.migration.maxBitmapSize !== undefined)
      m.max_bitmap_size = caps.migration.maxBitmapSize;
    c.migration = m;
  }
  for (const [k, v] of Object.entries(caps.unknown ?? {})) if (!KNOWN.has(k)) c[k] = v;
  return JSON.stringify({ capabilities: c });
}
