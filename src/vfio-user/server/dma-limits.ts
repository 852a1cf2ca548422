/**
 * How many DMA maps the server can honour: the `max_dma_maps` VERSION announces to each session,
 * and what the process holds at most in total.
 *
 * Every DMA_MAP that comes with an fd holds that fd until the unmap (the server reads and writes
 * the client's memory through it, lazily), so maps are bounded by the fds the process may open:
 * RLIMIT_NOFILE (Node raises its soft limit to the hard one at start-up; we read what is in
 * force) less what the server needs besides (stdio, libuv, trace files; per device its socket,
 * up to 16 fds in flight in one message, BAR/GPU RAM/ATSD memfds and IRQ eventfds). A device has
 * one session at a time, so the fds left are split evenly between the devices served: each
 * session can fill its share with fd-backed maps without another session running short, and the
 * announced number holds for any mix of maps with and without fds. It never exceeds the kernel's
 * own type1 limit, which QEMU also assumes when a server says nothing (vfio_iommu_type1.c
 * dma_entry_limit = U16_MAX; QEMU hw/vfio-user/protocol.h VFIO_USER_DEF_MAP_MAX 65535).
 * libvfio-user lets its user choose and suggests 1,000,000 (include/libvfio-user.h
 * LIBVFIO_USER_MAX_DMA_REGIONS), without fd accounting.
 *
 * vm.max_map_count no longer bounds the number of maps: nothing is mapped at DMA_MAP time; a
 * session maps windows of sealed client files on access and keeps at most `windowsPerSession`
 * of them (LRU), so DMA takes at most that many of the process's mappings per session. The
 * bound leaves half of vm.max_map_count to everything else (V8's heap, GPU RAM and BAR windows).
 */
import { readFileSync } from 'node:fs';

/** The kernel's type1 default and QEMU's assumption for a server that states none. */
export const KERNEL_DMA_ENTRY_LIMIT = 65535;
/** fds the process needs whatever the sessions do (stdio, libuv, node internals, trace files). */
export const RESERVED_FDS = 256;
/**
 * fds a device needs besides its DMA maps: listening and connected socket, 16 fds in flight in
 * one message (QEMU's max_msg_fds), memfds of BARs, GPU RAM and ATSD, IRQ eventfds (≤ 16 MSI-X
 * vectors, ERR, REQ).
 */
export const RESERVED_FDS_PER_SESSION = 64;
/** Live windows of client memory per session (each one mmap of at most `DMA_WINDOW_BYTES`). */
export const MAX_WINDOWS_PER_SESSION = 32;
/** Sessions assumed until `setDmaSessionCount` (the 18 devices of a Witherspoon `serve`). */
export const DEFAULT_DMA_SESSIONS = 18;

/** The host's limits the DMA limits are derived from: RLIMIT_NOFILE (soft) and vm.max_map_count. */
export interface HostLimits {
  /** RLIMIT_NOFILE in force (soft). */
  readonly openFiles: number;
  /** vm.max_map_count. */
  readonly maxMapCount: number;
}

/**
 * How many DMA maps per session, client fds in all and mmap windows per session a server allows,
 * derived from the host's limits.
 */
export interface DmaLimits {
  /** `max_dma_maps` per session: maps with or without an fd, any mix. */
  readonly mapsPerSession: number;
  /** fd-backed maps of all sessions together (mapsPerSession × sessions, or less). */
  readonly fdsTotal: number;
  /** Live mmap windows of client files per session. */
  readonly windowsPerSession: number;
}

/** RLIMIT_NOFILE and vm.max_map_count of this process (1024 and 65530 when unreadable). */
export function readHostLimits(): HostLimits {
  let openFiles = 1024;
  let maxMapCount = 65530;
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(
      readFileSync('/proc/self/limits', 'utf8'),
    );
    if (line?.[1] !== undefined)
      openFiles = line[1] === 'unlimited' ? 2 ** 31 - 1 : Number(line[1]);
  } catch {
    // keep the POSIX-ish default
  }
  try {
    const n = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8').trim());
    if (Number.isSafeInteger(n) && n > 0) maxMapCount = n;
  } catch {
    // keep the kernel's default (DEFAULT_MAX_MAP_COUNT)
  }
  return { openFiles, maxMapCount };
}

/** The limits for `sessions` concurrent sessions on a host with `host`'s limits (see above). */
export function deriveDmaLimits(host: HostLimits, sessions: number): DmaLimits {
  const n = Math.max(1, Math.floor(sessions));
  const spare = host.openFiles - RESERVED_FDS - RESERVED_FDS_PER_SESSION * n;
  const mapsPerSession = Math.max(0, Math.min(KERNEL_DMA_ENTRY_LIMIT, Math.floor(spare / n)));
  const windowsPerSession = Math.max(
    1,
    Math.min(MAX_WINDOWS_PER_SESSION, Math.floor(host.maxMapCount / 2 / n)),
  );
  return { mapsPerSession, fdsTotal: mapsPerSession * n, windowsPerSession };
}

let sessions = DEFAULT_DMA_SESSIONS;
let cached: DmaLimits | undefined;

/** How many devices this process serves (each has at most one session); `serve` sets it. */
export function setDmaSessionCount(count: number): void {
  sessions = Math.max(1, Math.floor(count));
  cached = undefined;
}

/** The limits in force for this process. */
export function processDmaLimits(): DmaLimits {
  cached ??= deriveDmaLimits(readHostLimits(), sessions);
  return cached;
}

/** Below this many maps per device a VMM may not even map its guest RAM (QEMU: one per section). */
export const FEW_DMA_MAPS = 16;

/** A one-line warning when the limits leave a device fewer than `FEW_DMA_MAPS` maps. */
export function dmaLimitsWarning(): string | undefined {
  const { mapsPerSession } = processDmaLimits();
  if (mapsPerSession >= FEW_DMA_MAPS) return undefined;
  const { openFiles } = readHostLimits();
  return `RLIMIT_NOFILE ${openFiles} leaves ${mapsPerSession} DMA maps per device for ${sessions} devices (max_dma_maps); raise it (ulimit -n) to serve VMMs`;
}

/**
 * fd-backed DMA maps held by every session of the process, against `fdsTotal`: a second line of
 * defence should more sessions run than `setDmaSessionCount` was told.
 */
export class DmaFdLedger {
  #held = 0;

  constructor(private readonly limit: () => number) {}

  /** DMA fds counted now (taken and not given back). */
  get held(): number {
    return this.#held;
  }

  /** `fdsTotal` as the limit function gives it now (it follows the session count). */
  get limitNow(): number {
    return this.limit();
  }

  /** Counts one more fd; false (nothing counted) when the total is reached. */
  take(): boolean {
    if (this.#held >= this.limit()) return false;
    this.#held++;
    return true;
  }

  /** Gives one fd back (a DMA region unmapped or its client gone); never below zero. */
  give(): void {
    if (this.#held > 0) this.#held--;
  }
}

/** The process's ledger. */
export const processDmaFds = new DmaFdLedger(() => processDmaLimits().fdsTotal);
