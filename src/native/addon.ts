/**
 * Loads the C addon `vfio_nvlink2_native` (native/*.c, built by node-gyp from binding.gyp at
 * `npm install`) and states the exact shape of its exports. Only this folder touches the raw
 * object; everything else imports the typed functions from `./index.ts`.
 *
 * `VFIO_NVLINK2_ADDON=/path/to/vfio_nvlink2_native.node` loads another build of it instead
 * (`npm run test:asan` runs the tests against a sanitizer build this way).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
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
    if (!statSync(join(dir, 'package.json')).isFile()) return false; // a FIFO would block the read
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

/** The names of NativeAddon's functions (its other members are `errno` and `constants`). */
type FunctionName = {
  [K in keyof NativeAddon]: NativeAddon[K] extends (...args: never[]) => unknown ? K : never;
}[keyof NativeAddon];

/**
 * Every function NativeAddon declares: what a loaded addon is checked against, so that one
 * built from older sources fails at load with ADDON, never at first use as a TypeError.
 */
export const ADDON_FUNCTIONS = [
  'errnoName',
  'closeFd',
  'dupFd',
  'replaceFd',
  'lockExclusive',
  'fdFlags',
  'setNonBlocking',
  'socketPair',
  'listenUnix',
  'acceptConnection',
  'connectUnix',
  'shutdownFd',
  'sendBuffer',
  'peerCredentials',
  'parentDeathSignal',
  'eventfdCreate',
  'eventfdWrite',
  'eventfdSignal',
  'eventfdRead',
  'sendMessage',
  'receiveInto',
  'receiveMessage',
  'memfdCreate',
  'ftruncate',
  'punchHole',
  'mmap',
  'munmap',
  'dataRanges',
  'copyRange',
  'copyRangeLater',
  'writebackLater',
  'pageSize',
  'migRelay',
  'pageDigests',
  'crc32',
  'crc32Paths',
  'sha256Hex',
  'randomHex',
  'fileSeals',
  'heldElsewhere',
  'isMemoryFile',
  'addFileSeals',
  'watchFd',
  'watcherFast',
  'fastTableClose',
  'fastTable',
  'watcherSet',
  'watcherRef',
  'watcherClose',
] as const satisfies readonly FunctionName[];

/** Every number NativeConstants declares (checked at load as ADDON_FUNCTIONS are). */
export const ADDON_CONSTANTS = [
  'EFD_NONBLOCK',
  'EFD_SEMAPHORE',
  'F_SEAL_SEAL',
  'F_SEAL_SHRINK',
  'F_SEAL_GROW',
  'F_SEAL_WRITE',
  'F_SEAL_FUTURE_WRITE',
  'O_NONBLOCK',
  'UV_READABLE',
  'UV_WRITABLE',
  'SCM_MAX_FD',
  'MAX_IOV',
  'MAX_WINDOW',
] as const satisfies readonly (keyof NativeConstants)[];

/** `true` when `Unlisted` is never; else the names a list lacks (so that tsc names them). */
type Listed<Unlisted> = [Unlisted] extends [never] ? true : Unlisted;
// Compile-time: a function or constant added to the interfaces but not to the lists fails tsc.
const everyFunctionListed: Listed<Exclude<FunctionName, (typeof ADDON_FUNCTIONS)[number]>> = true;
const everyConstantListed: Listed<
  Exclude<keyof NativeConstants, (typeof ADDON_CONSTANTS)[number]>
> = true;
void everyFunctionListed;
void everyConstantListed;

/**
 * A missing, unloadable or out-of-date addon: a broken install, code ADDON (src/errors
 * STABLE_CODES; a leaf imports no other folder, so a plain Error carrying the code).
 */
function addonError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ADDON' as const });
}

/**
 * What `loaded` lacks of what NativeAddon declares (`errno.EIO`, `constants.MAX_WINDOW`,
 * `sha256Hex`), or undefined when it has it all.
 */
export function addonLacks(loaded: unknown): string | undefined {
  const o = (typeof loaded === 'object' && loaded !== null ? loaded : {}) as Record<
    string,
    unknown
  >;
  const errno = (o.errno ?? {}) as Record<string, unknown>;
  const constants = (o.constants ?? {}) as Record<string, unknown>;
  const errnoName = ERRNO_NAMES.find((name) => !Number.isInteger(errno[name]));
  if (errnoName !== undefined) return `errno.${errnoName}`;
  const constant = ADDON_CONSTANTS.find((name) => typeof constants[name] !== 'number');
  if (constant !== undefined) return `constants.${constant}`;
  return ADDON_FUNCTIONS.find((name) => typeof o[name] !== 'function');
}

/**
 * @throws Error code ADDON: no file at `path`, a file node cannot load, or an addon built from
 * older sources than this file describes.
 */
function loadAddon(path: string): NativeAddon {
  if (!existsSync(path)) {
    throw addonError(
      OVERRIDE !== undefined
        ? `VFIO_NVLINK2_ADDON names ${path}, which does not exist`
        : `native addon missing at ${path}; run \`npm install\` to build it`,
    );
  }
  // dlopen would block on a FIFO in its place, and map a device: only a regular file is loaded.
  if (!statSync(path).isFile())
    throw addonError(
      `the native addon at ${path} is not a regular file; run \`npm install\` to rebuild it`,
    );
  const load: (id: string) => unknown = createRequire(import.meta.url);
  let loaded: unknown;
  try {
    loaded = load(path);
  } catch (err) {
    throw addonError(
      `the native addon at ${path} cannot be loaded (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); run \`npm install\` to rebuild it`,
    );
  }
  const lacks = addonLacks(loaded);
  if (lacks !== undefined) {
    throw addonError(
      `the native addon at ${path} is out of date (no ${lacks}); run \`npm install\` to rebuild it`,
    );
  }
  return loaded as NativeAddon;
}

/**
 * The package's root folder (package.json, binding.gyp, and build/Release where node-gyp put
 * what it built at install: the addon, the bench's C echo floor).
 */
export const PACKAGE_ROOT: string = findPackageRoot();

/** The loaded addon file: VFIO_NVLINK2_ADDON when set, else the npm-built one. */
export const ADDON_PATH: string = OVERRIDE ?? join(PACKAGE_ROOT, ADDON_FILE);

/**
 * An object whose members are computed at first read (then kept), so that a module can export
 * the addon's numbers by name without loading the addon at import.
 */
export function lazyObject<T extends Record<string, unknown>>(
  getters: {
    readonly [K in keyof T]: () => T[K];
  },
): Readonly<T> {
  const out = {} as T;
  for (const key of Object.keys(getters) as (keyof T & string)[]) {
    Object.defineProperty(out, key, {
      enumerable: true,
      configurable: true,
      get() {
        const value = getters[key]();
        Object.defineProperty(out, key, { value, enumerable: true, writable: false });
        return value;
      },
    });
  }
  return out;
}

let loadedAddon: NativeAddon | undefined;

/**
 * The addon, loaded at first use (not at import: commands that need none, `--help`, run
 * without it) and checked against every member NativeAddon declares.
 * @throws Error code ADDON (see loadAddon).
 */
export function addon(): NativeAddon {
  loadedAddon ??= loadAddon(ADDON_PATH);
  return loadedAddon;
}
