/**
 * The native fast path of a vfio-user connection (issue 14, native/fastpath.c and watcher.c):
 * REGION_READ and REGION_WRITE wholly inside a range the device model declared plain memory
 * are answered inside the watcher's readiness callback, without entering JavaScript. A
 * `FastPathTable` holds the ranges (config-space bytes read from a buffer the native side
 * keeps alive; memfd ranges through the table's own duplicate of the fd); a watcher serves it
 * (`FdWatcher.fast`) while the connection's control slot GATE is 1 and no tracepoint is
 * listened to (the tracer's subscription count, `tracing[0]`, is 0).
 */
import { addon, type RawFastTable, type RawHandoff } from './addon.ts';

/** Slots of a connection's control Int32Array (native/fastpath.h NV_FAST_*). */
export const FastSlot = {
  /** Written by JS: 1 while the connection holds no partial frame and no queued reply. */
  GATE: 0,
  /** Written natively: REGION_READs served on the fast path. */
  READS: 1,
  /** Written natively: REGION_WRITEs served on the fast path. */
  WRITES: 2,
  /** Written natively: 1 while a fast reply waits for the socket (JS must queue its own). */
  PENDING: 3,
  /** Written natively: 1 while a large REGION_WRITE's data is received straight into place. */
  RECEIVING: 4,
  /** Written natively: receives that brought such data (JS's stall check compares it). */
  PROGRESS: 5,
} as const;

/** Length of a control array. */
export const FAST_CONTROL_SLOTS = 6;

/**
 * One plain range of a region, [start, end) in region offsets: reads (and, when `writable`,
 * writes) there have no side effect beyond the bytes. Its bytes are `bytes` (read-only, e.g.
 * config space; kept alive by the table) or the memfd `fd` at the same offsets (the table
 * duplicates it). Writes are served only to pages already populated.
 */
export type PlainRange = {
  readonly region: number;
  readonly start: bigint;
  readonly end: bigint;
  readonly writable: boolean;
} & ({ readonly fd: number } | { readonly bytes: Uint8Array });

/** What the fast path hands JS (see native/watcher.c make_handoff). */
export type FastHandoff = RawHandoff;

/** A table of plain ranges for `FdWatcher.fast`; released when collected. */
export class FastPathTable {
  /** @internal the native table. */
  readonly raw: RawFastTable;

  /**
   * Builds the table: `ranges`, accesses up to `maxXfer` bytes, off while `tracing[0]` is not 0.
   * @throws TypeError for a malformed range; SystemCallError when an fd cannot be duplicated.
   */
  constructor(
    readonly ranges: readonly PlainRange[],
    maxXfer: number,
    tracing: Int32Array | null,
  ) {
    this.raw = addon().fastTable(ranges, maxXfer, tracing);
  }

  /**
   * Gives back the table's fds and mappings now (not at garbage collection); it serves nothing
   * from then on. Only once no watcher serves it (its connection closed). Idempotent.
   */
  close(): void {
    addon().fastTableClose(this.raw);
  }
}
