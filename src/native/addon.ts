/**
 * Loads the C addon `vfio_nvlink2_native` (native/*.c, built by node-gyp from binding.gyp at
 * `npm install`) and states the exact shape of its exports. Only this folder touches the raw
 * object; everything else imports the typed functions from `./index.ts`.
 *
 * `VFIO_NVLINK2_ADDON=/path/to/vfio_nvlink2_native.node` loads another build of it instead
 * (`npm run test:asan` runs the tests against a sanitizer build this way).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What `recvmsg` delivered: byte count or bytes, fds (close-on-exec), and MSG_CTRUNC. */
export interface RawReceived<B> {
  bytes: B;
  fds: number[];
  truncatedControl: boolean;
}

/** Opaque handle of a uv_poll_t watcher. */
export interface RawWatcher {
  readonly __brand: 'vfio-nvlink2-watcher';
}

/** Opaque handle of a fast-path table (native/fastpath.c). */
export interface RawFastTable {
  readonly __brand: 'vfio-nvlink2-fast-table';
}

/** One plain range as native/fastpath.c reads it: exactly one of `fd` and `bytes`. */
export interface RawPlainRange {
  readonly region: number;
  readonly start: bigint;
  readonly end: bigint;
  readonly writable: boolean;
  readonly fd?: number;
  readonly bytes?: Uint8Array;
}

/** What the fast path hands JS with a readiness callback (native/watcher.c make_handoff). */
export interface RawHandoff {
  readonly from: number;
  readonly end: number;
  readonly fds: number[];
  readonly truncatedControl: boolean;
  readonly recvErrno: number;
  readonly sendErrno: number;
  /** A REGION_WRITE's data stopped: -1 end of stream, -2 fds truncated, else an errno. */
  readonly bodyError: number;
}

/** How a stop-copy relay call ended (native/relay.c complete). */
export interface RelayOutcome {
  /** Stream bytes relayed by this call. */
  readonly bytes: number;
  /** The stream ended (a read came back short) and every write was acknowledged. */
  readonly ended: boolean;
  readonly nextMsgId: number;
  /** 0 no failure, 1 the source, 2 the destination (or 0 with a kind: neither end's fault). */
  readonly end: 0 | 1 | 2;
  /** 0 none, 1 error reply, 2 closed, 3 reply timeout, 4 malformed reply, 5 system call. */
  readonly kind: 0 | 1 | 2 | 3 | 4 | 5;
  readonly errno: number;
  /** The msg id of the request or reply a failure concerns (meaningful when kind is not 0). */
  readonly failedMsgId: number;
  /** The command or system call concerned, or what was malformed. */
  readonly what: string;
}

/** The errno names the addon exports with their values (native/constants.c NV_ERRNOS). */
export const ERRNO_NAMES = [
  'EPERM',
  'ENOENT',
  'EINTR',
  'EIO',
  'ENXIO',
  'E2BIG',
  'EBADF',
  'EAGAIN',
  'ENOMEM',
  'EACCES',
  'EFAULT',
  'EBUSY',
  'EEXIST',
  'ENODEV',
  'ENOTDIR',
  'EINVAL',
  'ENFILE',
  'EMFILE',
  'ENOTTY',
  'EFBIG',
  'ENOSPC',
  'EPIPE',
  'ENAMETOOLONG',
  'ENOSYS',
  'ENODATA',
  'EPROTO',
  'EOVERFLOW',
  'EILSEQ',
  'ENOTSOCK',
  'EMSGSIZE',
  'EOPNOTSUPP',
  'EADDRINUSE',
  'ECONNABORTED',
  'ECONNRESET',
  'ENOTCONN',
  'ETIMEDOUT',
  'ECONNREFUSED',
] as const;

/** An errno name the addon exports. */
export type ErrnoName = (typeof ERRNO_NAMES)[number];

/** The numbers native/constants.c takes from the C headers. */
export interface NativeConstants {
  readonly EFD_NONBLOCK: number;
  readonly EFD_SEMAPHORE: number;
  readonly F_SEAL_SEAL: number;
  readonly F_SEAL_SHRINK: number;
  readonly F_SEAL_GROW: number;
  readonly F_SEAL_WRITE: number;
  readonly F_SEAL_FUTURE_WRITE: number;
  readonly O_NONBLOCK: number;
  readonly UV_READABLE: number;
  readonly UV_WRITABLE: number;
  /** Most fds one SCM_RIGHTS message carries (include/net/scm.h SCM_MAX_FD). */
  readonly SCM_MAX_FD: number;
  /** Most parts one sendMessage gathers. */
  readonly MAX_IOV: number;
  /** Largest single mmap window (bytes): Node 20's ArrayBuffer cap. */
  readonly MAX_WINDOW: number;
}

/** The raw exports of native/addon.c, argument for argument. */
export interface NativeAddon {
  readonly errno: Readonly<Record<ErrnoName, number>>;
  readonly constants: NativeConstants;
  errnoName(errno: number): string;
  closeFd(fd: number): void;
  dupFd(fd: number): number;
  replaceFd(target: number, source: number): void;
  lockExclusive(fd: number): boolean;
  fdFlags(fd: number): { cloexec: boolean; nonBlocking: boolean };
  setNonBlocking(fd: number, on: boolean): void;
  socketPair(): [number, number];
  listenUnix(path: string, backlog: number, mode: number): number;
  acceptConnection(fd: number): number | null;
  connectUnix(path: string): number;
  shutdownFd(fd: number): void;
  sendBuffer(fd: number, bytes: number): number;
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  parentDeathSignal(signal: number): number;
  eventfdCreate(initial: number, flags: number): number;
  eventfdWrite(fd: number, value: bigint): void;
  eventfdSignal(fd: number, value: bigint): boolean;
  eventfdRead(fd: number): bigint | null;
  sendMessage(fd: number, data: Uint8Array | readonly Uint8Array[], fds: readonly number[]): number;
  receiveInto(fd: number, buf: Uint8Array, maxFds: number): RawReceived<number> | null;
  receiveMessage(fd: number, maxBytes: number, maxFds: number): RawReceived<Buffer> | null;
  memfdCreate(name: string, size: bigint): number;
  ftruncate(fd: number, size: bigint): void;
  punchHole(fd: number, offset: bigint, length: bigint): void;
  mmap(
    fd: number,
    offset: bigint,
    length: bigint,
    writable: boolean,
  ): { buffer: ArrayBuffer; address: bigint };
  munmap(buffer: ArrayBuffer): void;
  dataRanges(fd: number, start: bigint, end: bigint): [bigint, bigint][];
  copyRange(from: number, to: number, offset: bigint, length: bigint): number;
  copyRangeLater(
    from: number,
    to: number,
    offset: bigint,
    length: bigint,
  ): Promise<{ bytes: number; errno: number }>;
  writebackLater(fd: number): Promise<{ bytes: number; errno: number }>;
  pageSize(): number;
  migRelay(
    source: number,
    destination: number,
    chunk: number,
    maxBytes: bigint,
    readAhead: number,
    writesInFlight: number,
    msgId: number,
    sourceTimeoutMs: number,
    destinationTimeoutMs: number,
  ): Promise<RelayOutcome>;
  pageDigests(bytes: Uint8Array, pageSize: number, out: Uint8Array): void;
  crc32(bytes: Uint8Array, crc: number, path: number): number;
  crc32Paths(): number[];
  sha256Hex(bytes: Uint8Array): string;
  randomHex(count: number): string;
  fileSeals(fd: number): number;
  heldElsewhere(fd: number): boolean;
  isMemoryFile(fd: number): boolean;
  addFileSeals(fd: number, seals: number): void;
  watchFd(
    fd: number,
    events: number,
    callback: (status: number, events: number, handoff?: RawHandoff) => void,
  ): RawWatcher;
  watcherFast(
    watcher: RawWatcher,
    table: RawFastTable | null,
    scratch: Uint8Array,
    control: Int32Array,
    maxFds: number,
  ): void;
  fastTableClose(table: RawFastTable): void;
  fastTable(
    ranges: readonly RawPlainRange[],
    maxXfer: number,
    tracing: Int32Array | null,
  ): RawFastTable;
  watcherSet(watcher: RawWatcher, events: number): void;
  watcherRef(watcher: RawWatcher, on: boolean): void;
  watcherClose(watcher: RawWatcher): void;
}

const ADDON_FILE = join('build', 'Release', 'vfio_nvlink2_native.node');

/** JSON.parse typed as what it returns (text/ has one too; a leaf imports no other folder). */
const parseJson: (text: string) => unknown = JSON.parse;

/** Whether `dir` is this package's root: its package.json names vfio-nvlink2 and binding.gyp is beside it. */
function isPackageRoot(dir: string): boolean {
  if (!existsSync(join(dir, 'binding.gyp'))) return false;
  let pkg: unknown;
  try {
    pkg = parseJson(readFileSync(join(dir, 'package.json'), 'utf8'));
  } catch {
    return false;
  }
  return typeof pkg === 'object' && pkg !== null && 'name' in pkg && pkg.name === 'vfio-nvlink2';
}

/**
 * Walks up from this file (src/native/ under tsx, dist/src/native/ when compiled, in a
 * checkout or in a consumer's node_modules/vfio-nvlink2) to the package root, where node-gyp
 * built the addon at install; never into a consumer's own folders.
 */
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 3; i++) {
    dir = dirname(dir);
    if (isPackageRoot(dir)) return dir;
  }
  throw new Error(
    `vfio-nvlink2: no package root (package.json of vfio-nvlink2 beside binding.gyp) above ${fileURLToPath(import.meta.url)}; cannot locate the native addon`,
  );
}

/** Another build of the addon to load instead of the npm-built one (e.g. a sanitizer build). */
const OVERRIDE = process.env.VFIO_NVLINK2_ADDON || undefined;

function loadAddon(path: string): NativeAddon {
  if (!existsSync(path)) {
    throw new Error(
      OVERRIDE !== undefined
        ? `vfio-nvlink2: VFIO_NVLINK2_ADDON names ${path}, which does not exist`
        : `vfio-nvlink2: native addon missing at ${path}; run \`npm install\` to build it`,
    );
  }
  const load: (id: string) => unknown = createRequire(import.meta.url);
  const loaded = load(path) as NativeAddon;
  // An addon built from other sources than this file describes fails here, not at first use.
  const missing = ERRNO_NAMES.filter((name) => !Number.isInteger(loaded.errno?.[name]));
  if (missing.length > 0 || typeof loaded.constants?.SCM_MAX_FD !== 'number') {
    throw new Error(
      `vfio-nvlink2: the native addon at ${path} is out of date (no ${missing[0] ?? 'constants'}); run \`npm install\` to rebuild it`,
    );
  }
  return loaded;
}

/**
 * The package's root folder (package.json, binding.gyp, and build/Release where node-gyp put
 * what it built at install: the addon, the bench's C echo floor).
 */
export const PACKAGE_ROOT: string = findPackageRoot();

/** The loaded addon file: VFIO_NVLINK2_ADDON when set, else the npm-built one. */
export const ADDON_PATH: string = OVERRIDE ?? join(PACKAGE_ROOT, ADDON_FILE);

/** The loaded addon (loaded once, at import: a missing build fails loudly and early). */
export const addon: NativeAddon = loadAddon(ADDON_PATH);
