/**
 * Readiness of an fd the addon owns, on Node's own event loop (a libuv uv_poll_t, see
 * native/watcher.c). It is how vfio-user sockets are read: libuv's stream code never sees
 * them, so no byte is ever consumed without its SCM_RIGHTS ancillary data.
 */
import { addon, lazyObject, type RawWatcher } from './addon.ts';
import type { FastHandoff, FastPathTable } from './fast-path.ts';

/** Readiness bits (libuv UV_READABLE, UV_WRITABLE, from uv.h via native/constants.c). */
export const FdEvent: Readonly<{ READABLE: number; WRITABLE: number }> = lazyObject({
  READABLE: () => addon().constants.UV_READABLE,
  WRITABLE: () => addon().constants.UV_WRITABLE,
});

/**
 * Called with `status` (0, or a negated errno when polling failed) and the ready FdEvent bits;
 * with the fast path on, `handoff` says what it read and left to the caller (fast-path.ts).
 */
export type FdWatcherCallback = (status: number, events: number, handoff?: FastHandoff) => void;

/**
 * A uv_poll_t on Node's loop watching one fd for readability/writability (FdEvent bits); `close`
 * stops it. The fd stays the caller's.
 */
export class FdWatcher {
  readonly #raw: RawWatcher;
  #events: number;
  #closed = false;

  /**
   * Starts watching `fd` for `events` (FdEvent bits; 0 to create it paused).
   * @throws SystemCallError if libuv refuses the fd (e.g. EBADF, EPERM for a regular file).
   */
  constructor(
    readonly fd: number,
    events: number,
    callback: FdWatcherCallback,
  ) {
    this.#raw = addon().watchFd(fd, events, callback);
    this.#events = events;
  }

  /** The FdEvent bits currently watched. */
  get events(): number {
    return this.#events;
  }

  /** Watches `events` from now on (0 pauses). No-op when unchanged or closed. */
  set(events: number): void {
    if (this.#closed || events === this.#events) return;
    addon().watcherSet(this.#raw, events);
    this.#events = events;
  }

  /**
   * Serves `table`'s plain ranges natively from now on (null: stops), receiving into `scratch`
   * and gated by `control` (FastSlot; at least FAST_CONTROL_SLOTS long), with up to `maxFds`
   * fds per message.
   * @throws TypeError for a wrong argument; SystemCallError EBADF once closed.
   */
  fast(
    table: FastPathTable | null,
    scratch: Uint8Array,
    control: Int32Array,
    maxFds: number,
  ): void {
    addon().watcherFast(this.#raw, table?.raw ?? null, scratch, control, maxFds);
  }

  /** Whether this watcher keeps the process alive (like `socket.ref()/unref()`). */
  ref(on: boolean): void {
    if (!this.#closed) addon().watcherRef(this.#raw, on);
  }

  /** Stops for good; the fd may be closed right after. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    addon().watcherClose(this.#raw);
  }
}
