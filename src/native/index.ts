/**
 * Typed entry to the native addon (native/*.c): SCM_RIGHTS messages, UNIX sockets owned outside
 * libuv, memfd and MAP_SHARED windows, sparse-file data ranges, peer credentials, eventfds and an
 * fd-readiness watcher. Every fd these functions create or receive is close-on-exec, so none
 * leaks into child processes. Failures throw a `SystemCallError` (`code` = errno name).
 *
 * How vfio-user sockets are read: the addon opens them (`listenUnix`/`acceptConnection`/
 * `connectUnix`, non-blocking) and an `FdWatcher` (uv_poll_t on Node's loop) reports
 * readability; the caller then drains with `receiveInto` until it returns null. libuv's stream
 * reader never sees these fds (it would consume bytes and drop their ancillary fds).
 */
import {
  addon,
  ERRNO_NAMES,
  type ErrnoName,
  lazyObject,
  type RawReceived,
  type RelayOutcome,
} from './addon.ts';

export type { ErrnoName, RelayOutcome } from './addon.ts';
export { PACKAGE_ROOT } from './addon.ts';

/**
 * Loads the addon now (else it loads at first use) and checks it against every function and
 * constant it must have: a command that needs it fails on this one line, code ADDON, before
 * anything of it could wrap the failure in another code.
 * @throws Error code ADDON: the addon is missing, cannot be loaded, or is out of date (names it).
 */
export function loadNativeAddon(): void {
  addon();
}
export {
  FAST_CONTROL_SLOTS,
  type FastHandoff,
  FastPathTable,
  FastSlot,
  type PlainRange,
} from './fast-path.ts';
export { FdEvent, FdWatcher, type FdWatcherCallback } from './fd-watcher.ts';
export {
  DEFAULT_WINDOW_BYTES,
  type MappingWindow,
  SharedMapping,
} from './shared-mapping.ts';
export { socketFd, takeOverSocket } from './socket-fd.ts';
export { isSystemCallError, type SystemCallError } from './system-error.ts';

import type { SystemCallError } from './system-error.ts';

/**
 * Errno values by name, from the C library's errno.h (native/constants.c): compare a
 * `SystemCallError`'s `errno`, or a watcher's negated status, with these, never with numbers.
 */
export const Errno: Readonly<Record<ErrnoName, number>> = lazyObject(
  Object.fromEntries(ERRNO_NAMES.map((name) => [name, () => addon().errno[name]])) as Record<
    ErrnoName,
    () => number
  >,
);

/** The errno name of `errno` ("EAGAIN" for 11, strerrorname_np); "E<n>" when unknown. */
export function errnoName(errno: number): string {
  return addon().errnoName(errno);
}

/** The addon's numbers from C headers, read at first use (not at import). */
export const NativeConstant: Readonly<{
  /** O_NONBLOCK (fcntl.h): the flag `setNonBlocking` sets, as /proc/PID/fdinfo shows it. */
  O_NONBLOCK: number;
  /** The kernel's cap on fds in one SCM_RIGHTS message (include/net/scm.h SCM_MAX_FD). */
  SCM_MAX_FD: number;
  /** Largest single window (bytes): Node 20's buffer.constants.MAX_LENGTH (native NV_MAX_WINDOW). */
  MAX_WINDOW_BYTES: bigint;
  /**
   * The seals of the memory the server hands to clients (memfd_create(2) "File sealing"): a
   * client could otherwise ftruncate it under our mappings, and our next access past the new end
   * would be a SIGBUS that kills the server. F_SEAL_SEAL keeps a client from adding F_SEAL_WRITE
   * (our own writes would then fail). Writes stay allowed (clients map it writable). Seals do not
   * stop FALLOC_FL_PUNCH_HOLE: a punched page reads back as zeros and is allocated again on its
   * next touch, so it costs data the client itself owns, never a fault.
   */
  MEMFD_SIZE_SEALS: number;
}> = lazyObject({
  O_NONBLOCK: () => addon().constants.O_NONBLOCK,
  SCM_MAX_FD: () => addon().constants.SCM_MAX_FD,
  MAX_WINDOW_BYTES: () => BigInt(addon().constants.MAX_WINDOW),
  MEMFD_SIZE_SEALS: () => FileSeal.SEAL | FileSeal.SHRINK | FileSeal.GROW,
});

/** A received message: its bytes, the fds that came with them, and whether some were dropped. */
export type Received<B> = RawReceived<B>;

/**
 * sendmsg(2) with MSG_NOSIGNAL: `data` (one buffer or up to 64 gathered parts) and `fds` as
 * SCM_RIGHTS. Returns the bytes the kernel accepted: on a non-blocking socket this may be fewer
 * than offered, and 0 when the socket buffer is full (EAGAIN is not thrown). The fds travel with
 * the first byte sent, so the caller resumes the rest without fds when the socket is writable.
 * @throws SystemCallError EPIPE/ECONNRESET when the peer is gone, EINVAL for fds without bytes or
 *   more than SCM_MAX_FD fds, EBADF for a bad fd in `fds`.
 */
export function sendMessage(
  fd: number,
  data: Uint8Array | readonly Uint8Array[],
  fds: readonly number[] = [],
): number {
  return addon().sendMessage(fd, data, fds);
}

/**
 * recvmsg(2) with MSG_CMSG_CLOEXEC into a new Buffer of up to `maxBytes`. Null when nothing is
 * available (EAGAIN); empty `bytes` at end of stream. `truncatedControl` is MSG_CTRUNC: the peer
 * sent more than `maxFds` fds; any that did arrive have been closed and `fds` is empty.
 * @throws SystemCallError e.g. ECONNRESET.
 */
export function receiveMessage(
  fd: number,
  maxBytes: number,
  maxFds: number,
): Received<Buffer> | null {
  return addon().receiveMessage(fd, maxBytes, maxFds);
}

/**
 * As `receiveMessage`, into `buf` (any Uint8Array view; pass a subarray to receive at an
 * offset). `bytes` is the count received, 0 at end of stream.
 */
export function receiveInto(fd: number, buf: Uint8Array, maxFds: number): Received<number> | null {
  return addon().receiveInto(fd, buf, maxFds);
}

/** close(2). @throws SystemCallError EBADF. */
export function closeFd(fd: number): void {
  addon().closeFd(fd);
}

/** A close-on-exec duplicate of `fd` (fcntl F_DUPFD_CLOEXEC). @throws SystemCallError EBADF. */
export function dupFd(fd: number): number {
  return addon().dupFd(fd);
}

/**
 * Puts the file `source` is open on under the number `target` (dup3, close-on-exec: whatever
 * holds the number `target` reaches the new file from now on), then closes `source`.
 * @throws SystemCallError EBADF, EINVAL (the same number).
 */
export function replaceFd(target: number, source: number): void {
  addon().replaceFd(target, source);
}

/**
 * flock(fd, LOCK_EX | LOCK_NB): true when taken, false when another open file description holds
 * it. The lock lives as long as the description (a killed process loses it).
 * @throws SystemCallError EBADF, ENOLCK.
 */
export function lockExclusive(fd: number): boolean {
  return addon().lockExclusive(fd);
}

/** FD_CLOEXEC and O_NONBLOCK of `fd`. @throws SystemCallError EBADF. */
export function fdFlags(fd: number): { cloexec: boolean; nonBlocking: boolean } {
  return addon().fdFlags(fd);
}

/** Sets or clears O_NONBLOCK. @throws SystemCallError EBADF. */
export function setNonBlocking(fd: number, on: boolean): void {
  addon().setNonBlocking(fd, on);
}

/** A connected pair of AF_UNIX stream sockets (non-blocking, close-on-exec). */
export function socketPair(): [number, number] {
  return addon().socketPair();
}

/**
 * A listening AF_UNIX stream socket bound to `path` (non-blocking, close-on-exec), its file
 * mode exactly `mode` (default 0600: only our uid — and root — may connect) whatever the
 * umask, and never wider at any instant (the unbound socket is fchmod'ed before bind).
 * @throws SystemCallError EADDRINUSE if `path` exists, ENAMETOOLONG past 107 bytes.
 */
export function listenUnix(path: string, backlog = 16, mode = 0o600): number {
  return addon().listenUnix(path, backlog, mode);
}

/** accept4(2): a connection (non-blocking, close-on-exec), or null when none is pending. */
export function acceptConnection(listenFd: number): number | null {
  return addon().acceptConnection(listenFd);
}

/**
 * Connects to the AF_UNIX stream socket at `path`; the fd is non-blocking and close-on-exec.
 * @throws SystemCallError ENOENT/ECONNREFUSED when nobody listens, EAGAIN on a full backlog.
 */
export function connectUnix(path: string): number {
  return addon().connectUnix(path);
}

/** shutdown(SHUT_RDWR): the peer sees end of stream at once. ENOTCONN is ignored. */
export function shutdownFd(fd: number): void {
  addon().shutdownFd(fd);
}

/**
 * Asks for a send buffer of `bytes` on socket `fd` (SO_SNDBUFFORCE when privileged, else
 * SO_SNDBUF up to net.core.wmem_max); returns the kernel's SO_SNDBUF after it (about twice
 * what it granted, its bookkeeping included).
 * @throws SystemCallError (ENOTSOCK, EBADF).
 */
export function sendBuffer(fd: number, bytes: number): number {
  return addon().sendBuffer(fd, bytes);
}

/** The pid/uid/gid of the process at the other end of a UNIX socket (SO_PEERCRED). */
export function peerCredentials(fd: number): { pid: number; uid: number; gid: number } {
  return addon().peerCredentials(fd);
}

/**
 * Has the kernel send `signal` (a number: `os.constants.signals.SIGKILL`) to this process when
 * its parent exits (prctl(2) PR_SET_PDEATHSIG). Returns the parent's pid read after asking: a
 * process whose parent was gone already sees another one (its reaper) and must act itself.
 * @throws SystemCallError EINVAL for a number that is no signal.
 */
export function parentDeathSignal(signal: number): number {
  return addon().parentDeathSignal(signal);
}

/** F_SEAL_* (fcntl.h, via native/constants.c): what a sealed file refuses from then on. */
export const FileSeal: Readonly<{
  SEAL: number;
  SHRINK: number;
  GROW: number;
  WRITE: number;
  FUTURE_WRITE: number;
}> = lazyObject({
  SEAL: () => addon().constants.F_SEAL_SEAL,
  SHRINK: () => addon().constants.F_SEAL_SHRINK,
  GROW: () => addon().constants.F_SEAL_GROW,
  WRITE: () => addon().constants.F_SEAL_WRITE,
  FUTURE_WRITE: () => addon().constants.F_SEAL_FUTURE_WRITE,
});

/**
 * The seals of `fd` (fcntl F_GET_SEALS), a `FileSeal` mask; 0 for a file that cannot be sealed.
 * @throws SystemCallError EBADF.
 */
export function fileSeals(fd: number): number {
  return addon().fileSeals(fd);
}

/**
 * Whether `fd` is a file of memory: shmem (memfd, tmpfs) or hugetlbfs, the files F_GET_SEALS
 * answers for (mm/memfd.c). Nothing is asked of the file system, so a FUSE or NFS file (whose
 * every read may wait on another process or host) cannot make this wait.
 * @throws SystemCallError EBADF.
 */
export function isMemoryFile(fd: number): boolean {
  return addon().isMemoryFile(fd);
}

/**
 * Whether an open file description of `fd`'s file exists besides `fd`'s own — anyone's, open
 * for writing or reading (i_writecount, i_readcount), held by a descriptor or only by a mapping
 * (fcntl F_SETLEASE F_WRLCK, taken and let go at once; fs/locks.c check_conflicting_open). A
 * memfd's own description (made by memfd_create) is not counted; one reopened through /proc is.
 * @throws SystemCallError EINVAL when the file cannot have a lease (fs.leases-enable=0, its
 *   file system has none), EACCES when it is not ours, EBADF.
 */
export function heldElsewhere(fd: number): boolean {
  return addon().heldElsewhere(fd);
}

/**
 * Adds seals (fcntl F_ADD_SEALS); seals are never removed.
 * @throws SystemCallError EPERM (F_SEAL_SEAL set, or SEAL_WRITE with a writable mapping),
 *   EINVAL (the file cannot be sealed), EBADF.
 */
export function addFileSeals(fd: number, seals: number): void {
  addon().addFileSeals(fd, seals);
}

/** Options of `memfdCreate`. */
export interface MemfdOptions {
  /**
   * The `FileSeal` bits added once the file has its size; MEMFD_SIZE_SEALS unless given. `0`
   * leaves it unsealed (a file playing a client's part, which it may resize or seal later).
   */
  seals?: number;
}

/**
 * memfd_create(2) with MFD_CLOEXEC | MFD_ALLOW_SEALING, truncated to `size`: sparse, so even
 * 128 GiB costs no memory until pages are touched. Then `options.seals` are added (F_ADD_SEALS,
 * through `addFileSeals`): by default MEMFD_SIZE_SEALS, what every memory the server shares
 * must have.
 * @throws SystemCallError EFBIG, EMFILE, ENOMEM; EINVAL for unknown seal bits (fd closed).
 */
export function memfdCreate(name: string, size: bigint, options: MemfdOptions = {}): number {
  const fd = addon().memfdCreate(name, size);
  const seals = options.seals ?? NativeConstant.MEMFD_SIZE_SEALS;
  if (seals !== 0) {
    try {
      addon().addFileSeals(fd, seals);
    } catch (err) {
      addon().closeFd(fd);
      throw err;
    }
  }
  return fd;
}

/** ftruncate(2). @throws SystemCallError EBADF, EINVAL, EPERM (sealed). */
export function ftruncate(fd: number, size: bigint): void {
  addon().ftruncate(fd, size);
}

/** Frees the pages of [offset, offset+length) (they read back as zeros); the size is kept. */
export function punchHole(fd: number, offset: bigint, length: bigint): void {
  addon().punchHole(fd, offset, length);
}

/**
 * XXH64 (seed 0) of each `pageSize` piece of `bytes` (the last may be shorter), as
 * little-endian u64s in `out` (8 bytes per piece): migration's page digests (native/digest.c).
 * @throws TypeError when `out` is too small or pageSize is 0.
 */
export function pageDigests(bytes: Uint8Array, pageSize: number, out: Uint8Array): void {
  addon().pageDigests(bytes, pageSize, out);
}

/**
 * How native/digest.c computes a CRC-32: `auto` (the fastest this CPU has: `vpclmul`, AVX-512
 * VPCLMULQDQ folding 256 bytes a step; `clmul`, PCLMULQDQ folding 64; `slice8`, tables 8 bytes
 * a step, everywhere). All give the same value; the tests take each in turn.
 */
export type Crc32Path = 'auto' | 'slice8' | 'clmul' | 'vpclmul';
const CRC32_PATHS: readonly Crc32Path[] = ['auto', 'slice8', 'clmul', 'vpclmul'];

/**
 * zlib's CRC-32 (IEEE, as node:zlib `crc32(bytes, crc)`) of `bytes`, continuing `crc` (the
 * CRC-32 of the bytes before them; 0 to start), as a uint32: the migration stream's record
 * checksum (native/digest.c), by `path` (default `auto`).
 * @throws TypeError when `bytes` is not a Uint8Array or `crc` not a uint32.
 * @throws SystemCallError ENOTSUP when this CPU cannot take `path` (see `crc32Paths`).
 */
export function crc32(bytes: Uint8Array, crc = 0, path: Crc32Path = 'auto'): number {
  return addon().crc32(bytes, crc, CRC32_PATHS.indexOf(path));
}

/** The CRC-32 paths this CPU (and OS) can take, `auto` first. */
export function crc32Paths(): Crc32Path[] {
  return addon()
    .crc32Paths()
    .map((n) => CRC32_PATHS[n] as Crc32Path);
}

/**
 * The SHA-256 of `bytes` as 64 lowercase hex digits, as node:crypto's
 * `createHash('sha256').update(bytes).digest('hex')` (native/hash.c: OpenSSL's, in node), without
 * loading node:crypto (a restart's start-up: the state directory's digests).
 * @throws TypeError when `bytes` is not a Uint8Array.
 */
export function sha256Hex(bytes: Uint8Array): string {
  return addon().sha256Hex(bytes);
}

/**
 * `count` (1 to 32) random bytes from getrandom(2) as 2 × `count` hex digits, as node:crypto's
 * `randomBytes(count).toString('hex')` without loading node:crypto (native/hash.c).
 * @throws SystemCallError EINVAL for a count outside 1..32, or getrandom's errno.
 */
export function randomHex(count: number): string {
  return addon().randomHex(count);
}

/**
 * One MAP_SHARED window of `length` (≤ 4 GiB) bytes of `fd` at page-aligned `offset`, as an
 * external ArrayBuffer. Release it with `munmap(buffer)` (otherwise when it is collected). For
 * larger ranges use `SharedMapping.map`.
 * @throws SystemCallError EINVAL (misaligned, zero or > 4 GiB), EACCES, ENODEV, ENOMEM.
 */
export function mmap(
  fd: number,
  offset: bigint,
  length: number,
  prot: 'r' | 'rw',
): { buffer: ArrayBuffer; address: bigint } {
  return addon().mmap(fd, offset, BigInt(length), prot === 'rw');
}

/** Unmaps a buffer returned by `mmap`; it becomes detached (length 0). Idempotent. */
export function munmap(buffer: ArrayBuffer): void {
  addon().munmap(buffer);
}

/**
 * The populated ranges `[from, to)` of a sparse file within [start, end), from lseek(2)
 * SEEK_DATA/SEEK_HOLE. On a memfd a page is populated once anyone wrote (or read) it, through
 * a mapping or otherwise; punched holes are not.
 */
export function dataRanges(fd: number, start: bigint, end: bigint): [bigint, bigint][] {
  return addon().dataRanges(fd, start, end);
}

/**
 * Copies [offset, offset+length) of file `from` to the same offsets of file `to` in the kernel
 * (copy_file_range(2), native/copy.c): the bytes copied, fewer when `from` ends first (the rest
 * of `to` is left as it was).
 * @throws SystemCallError from copy_file_range: EXDEV, EINVAL or EOPNOTSUPP where the file
 *   systems cannot (the caller copies through pread/pwrite then), EBADF, EIO, ENOSPC.
 */
export function copyRange(from: number, to: number, offset: bigint, length: bigint): number {
  return addon().copyRange(from, to, offset, length);
}

/**
 * `copyRange` on libuv's threadpool: the event loop goes on meanwhile. Both descriptors must
 * stay open until it settles.
 * @throws SystemCallError (rejects) as `copyRange`.
 */
export async function copyRangeLater(
  from: number,
  to: number,
  offset: bigint,
  length: bigint,
): Promise<number> {
  const { bytes, errno } = await addon().copyRangeLater(from, to, offset, length);
  if (errno !== 0) throw systemCallError('copy_file_range', errno);
  return bytes;
}

/**
 * Starts, on libuv's threadpool, the writeback of every dirty page of file `fd`
 * (sync_file_range(2) SYNC_FILE_RANGE_WRITE; it does not wait for the disk): ext4 then allocates
 * the blocks of its delayed-allocation data there rather than in a later rename(2) over another
 * file (auto_da_alloc). `fd` must stay open until it settles.
 * @throws SystemCallError (rejects) from sync_file_range: EBADF, EIO, ESPIPE.
 */
export async function writebackLater(fd: number): Promise<void> {
  const { errno } = await addon().writebackLater(fd);
  if (errno !== 0) throw systemCallError('sync_file_range', errno);
}

/** A SystemCallError for `errno` (a positive Linux errno) raised by `syscall` in native code. */
export function systemCallError(syscall: string, errno: number): SystemCallError {
  const code = errnoName(errno);
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno, syscall });
}

/** What `migRelay` is asked to do: sockets, sizes, how much may be in flight, timeouts. */
export interface RelayRequest {
  /** The source's and destination's connected sockets, lent (nothing else reads them meanwhile). */
  readonly source: number;
  readonly destination: number;
  /** Bytes asked per MIG_DATA_READ (the largest both ends take). */
  readonly chunk: number;
  /** Stop once this many bytes were asked for (the pipeline drained), to report progress. */
  readonly maxBytes: number;
  /** MIG_DATA_READs outstanding at once (1–64). */
  readonly readAhead: number;
  /** MIG_DATA_WRITEs outstanding at once (1–64). */
  readonly writesInFlight: number;
  /** The first msg_id of each socket's requests (0–65535). */
  readonly msgId: number;
  /** How long each end's reply may take (ms; undefined: no limit). */
  readonly sourceTimeoutMs: number | undefined;
  readonly destinationTimeoutMs: number | undefined;
}

/**
 * Relays a migration stream in STOP_COPY on a worker thread (native/relay.c): MIG_DATA_READ
 * replies of `source` become MIG_DATA_WRITE requests to `destination`, their data moved by
 * splice(2) through a pipe, until the stream ends (a short read) or `maxBytes` were asked for.
 * Each socket is left between two whole messages unless the outcome names a failure.
 * @throws TypeError for arguments out of range.
 */
export function migRelay(r: RelayRequest): Promise<RelayOutcome> {
  return addon().migRelay(
    r.source,
    r.destination,
    r.chunk,
    BigInt(r.maxBytes),
    r.readAhead,
    r.writesInFlight,
    r.msgId,
    r.sourceTimeoutMs ?? -1,
    r.destinationTimeoutMs ?? -1,
  );
}

/** sysconf(_SC_PAGESIZE). */
export function pageSize(): number {
  return addon().pageSize();
}

/** Options of `eventfdCreate`. */
export interface EventfdOptions {
  nonBlocking?: boolean;
  semaphore?: boolean;
}

/** eventfd(2) with EFD_CLOEXEC (plus EFD_NONBLOCK / EFD_SEMAPHORE on request). */
export function eventfdCreate(initial = 0, options: EventfdOptions = {}): number {
  const { EFD_NONBLOCK, EFD_SEMAPHORE } = addon().constants;
  const flags = (options.nonBlocking ? EFD_NONBLOCK : 0) | (options.semaphore ? EFD_SEMAPHORE : 0);
  return addon().eventfdCreate(initial, flags);
}

/** Adds `value` to an eventfd's counter (signals it). @throws SystemCallError EAGAIN on overflow. */
export function eventfdWrite(fd: number, value: bigint = 1n): void {
  addon().eventfdWrite(fd, value);
}

/**
 * fs/eventfd.c eventfd_signal() for an eventfd a client handed over: adds `value` to its counter
 * when it fits, and never waits, whatever the client does to the shared file description
 * (O_NONBLOCK cleared, reads and writes racing ours: a write that would wait is cut short
 * within 200 µs). Returns false when the counter was too full: the signal saturates, as the
 * kernel's does (the counter stays readable, its reader wakes).
 * `fd` must be an eventfd (the server checks at SET_IRQS, server-device.ts checkEventfds).
 * @throws SystemCallError EBADF (not open)
 */
export function eventfdSignal(fd: number, value: bigint = 1n): boolean {
  return addon().eventfdSignal(fd, value);
}

/**
 * Reads and resets an eventfd's counter; null when it is 0. Never waits, even on a blocking
 * eventfd another process reads too.
 */
export function eventfdRead(fd: number): bigint | null {
  return addon().eventfdRead(fd);
}
