/**
 * Loads the C addon `vfio_nvlink2_native` (native/*.c, built by node-gyp from binding.gyp at
 * `npm install`) and states the exact shape of its exports. Only this folder touches the raw
 * object; everything else imports the typed functions from `./index.ts`.
 */
import { existsSync } from 'node:fs';
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

/** The raw exports of native/addon.c, argument for argument. */
export interface NativeAddon {
  closeFd(fd: number): void;
  dupFd(fd: number): number;
  fdFlags(fd: number): { cloexec: boolean; nonBlocking: boolean };
  setNonBlocking(fd: number, on: boolean): void;
  socketPair(): [number, number];
  listenUnix(path: string, backlog: number, mode: number): number;
  acceptConnection(fd: number): number | null;
  connectUnix(path: string): number;
  shutdownFd(fd: number): void;
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
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
  pageSize(): number;
  fileSeals(fd: number): number;
  isMemoryFile(fd: number): boolean;
  addFileSeals(fd: number, seals: number): void;
  watchFd(
    fd: number,
    events: number,
    callback: (status: number, events: number) => void,
  ): RawWatcher;
  watcherSet(watcher: RawWatcher, events: number): void;
  watcherRef(watcher: RawWatcher, on: boolean): void;
  watcherClose(watcher: RawWatcher): void;
}

const ADDON_FILE = join('build', 'Release', 'vfio_nvlink2_native.node');

/** Walks up from this file to the package root (the folder holding binding.gyp). */
function findAddon(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'binding.gyp'))) return join(dir, ADDON_FILE);
    dir = dirname(dir);
  }
  throw new Error('vfio-nvlink2: binding.gyp not found above src/native; cannot locate the addon');
}

function loadAddon(): NativeAddon {
  const path = findAddon();
  if (!existsSync(path)) {
    throw new Error(
      `vfio-nvlink2: native addon missing at ${path}; run \`npm install\` to build it`,
    );
  }
  return createRequire(import.meta.url)(path) as NativeAddon;
}

/** The loaded addon (loaded once, at import: a missing build fails loudly and early). */
export const addon: NativeAddon = loadAddon();
