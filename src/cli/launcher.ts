#!/usr/bin/env node
/**
 * The package's bin as shipped (scripts/bundle-cli.mjs bundles this file alone into
 * dist/src/cli/vfio-nvlink2.cjs, the bin, and as an ES module into vfio-nvlink2.js for callers of
 * that path). The bin is CommonJS: node starts an ES module main through its ES module loader,
 * which read the file on libuv's threadpool (four threads started) and cost a restart ~150
 * page faults and 22 M instructions more than this (issue 8). `serve` (issue 8: a restart accepts on every socket within
 * 300 ms) runs from vfio-nvlink2-serve.cjs, the CLI as one CommonJS script compiled with V8's
 * code cache that the build wrote after a serve start-up (scripts/code-cache.mjs): node 20 has
 * no code cache for ES modules, and compiling the CLI was close to half of what serve adds to
 * a bare node start.
 * Every other command, `serve --http` (its page loads an ES-module-only package), and serve
 * when that script is missing run the ES module bundle, vfio-nvlink2-esm.js. A cache of
 * another build or node, damaged, missing or refused by V8 only costs the compile: the script
 * runs all the same. VFIO_NVLINK2_CODE_CACHE=off runs without the cache (to measure it);
 * VFIO_NVLINK2_DEBUG_CODE_CACHE=1 says on stderr whether the cache was used. Each file the
 * launcher reads (the script, the cache, the addon) must be a regular file of sane size: a FIFO
 * or a link to /dev/zero in its place would hang the start for ever, so it counts as missing.
 */
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Script } from 'node:vm';

/** The serve script's first line: `// vfio-nvlink2 serve bundle <build id>`. */
const ID_PREFIX = '// vfio-nvlink2 serve bundle ';

/**
 * The key a cache file starts with (its first line, then a space and the SHA-256 of the rest):
 * the serve script's build id, then the node version and architecture it was made by. V8
 * checks its own version, flags and the source's length, but on node 20 not its checksum: a
 * damaged cache it takes could run other code than the script's, hence the digest. Spaces pad
 * the line so that the cache's bytes start 8-byte aligned in the file as read: V8 copies cached
 * data that is not pointer-aligned (AlignedCachedData), 500 KB more memory touched per start.
 */
function cacheKey(buildId: string): string {
  return `${buildId} ${process.version} ${process.arch}`;
}

/** A cache file's first line: the key, the digest, spaces up to the data's 8-byte alignment. */
function cacheHead(key: string, digest: string): Buffer {
  const line = `${key} ${digest}`;
  return Buffer.from(`${line.padEnd(line.length + (7 - (line.length % 8)), ' ')}\n`);
}

type Digest = (bytes: Uint8Array) => string;

/** What the launcher uses of the addon (native/hash.c, native/memory.c), each when it has it. */
interface LauncherAddon {
  readonly sha256Hex?: Digest;
  readonly mmap?: (
    fd: number,
    offset: bigint,
    length: bigint,
    writable: boolean,
  ) => {
    buffer: ArrayBuffer;
  };
  readonly munmap?: (buffer: ArrayBuffer) => void;
}

/** Most bytes the launcher reads of one file (the serve script and its cache are ~1 MB). */
const MAX_FILE_BYTES = 64 * 2 ** 20;

/**
 * Why `path` is not a file the launcher may read without blocking or reading for ever (a FIFO,
 * a device such as /dev/zero, larger than MAX_FILE_BYTES), or undefined when it is one.
 */
function notRegular(st: { isFile(): boolean; size: number }): string | undefined {
  if (!st.isFile()) return 'not a regular file';
  if (st.size > MAX_FILE_BYTES) return `larger than ${MAX_FILE_BYTES} bytes`;
  return undefined;
}

/** The three functions the launcher uses of the addon, each checked before the addon is used. */
const LAUNCHER_FUNCTIONS = ['sha256Hex', 'mmap', 'munmap'] as const;

/**
 * The addon, loaded here from where src/native/addon.ts loads it (so that serve's own load finds
 * it in require's cache), or why not. The launcher reads the serve script and its cache through
 * its mmap (page-cache pages mapped, not copied into fresh memory: on this VM each fresh page
 * costs ~25 us to fault in, and these two files are 860 KB) and checks the cache with its
 * sha256Hex (node:crypto's loading cost a restart more than the digest; issue 8).
 */
function loadAddon(require: NodeJS.Require, cliDir: string): LauncherAddon | string {
  const path =
    process.env.VFIO_NVLINK2_ADDON ||
    join(cliDir, '..', '..', '..', 'build', 'Release', 'vfio_nvlink2_native.node');
  let loaded: LauncherAddon;
  try {
    // dlopen would block on a FIFO: only a regular file is loaded (as addon.ts loads it).
    const why = notRegular(statSync(path));
    if (why !== undefined) return `the addon at ${path} (${why})`;
    loaded = require(path) as LauncherAddon;
  } catch (err) {
    return `the addon at ${path} (${(err as NodeJS.ErrnoException).code ?? 'not loaded'})`;
  }
  // An addon of older sources lacks some: used for none of them (serve then says ADDON).
  const lacks = LAUNCHER_FUNCTIONS.find((name) => typeof loaded[name] !== 'function');
  return lacks === undefined ? loaded : `the addon at ${path} (out of date: no ${lacks})`;
}

/** The SHA-256 (hex) the cache is checked with: the addon's, else node:crypto's (said why). */
function sha256(require: NodeJS.Require, addon: LauncherAddon | string): Digest {
  if (typeof addon !== 'string' && addon.sha256Hex) return addon.sha256Hex;
  debug(`digest by node:crypto, not ${typeof addon === 'string' ? addon : 'the addon'}`);
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  return (bytes) => createHash('sha256').update(bytes).digest('hex');
}

/**
 * The bytes of the file `path`, mapped read-only by the addon when it can (a non-empty regular
 * file) and released by `release` (after which they are gone), else read; or why not (a string:
 * an errno name, or what the file is instead of a regular file of sane size). Opened
 * O_NONBLOCK, so that a FIFO opens at once, and used only if fstat says it is a regular file: a
 * FIFO or /dev/zero in its place would otherwise hang the start for ever. A mapped file cut
 * short by another process while mapped would raise SIGBUS: the build replaces these files by
 * rename (scripts/bundle-cli.mjs, code-cache.mjs), which leaves a mapped one whole.
 */
function fileBytes(
  path: string,
  addon: LauncherAddon | string,
): { bytes: Buffer; release(): void } | string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'not opened';
  }
  try {
    const st = fstatSync(fd);
    const why = notRegular(st);
    if (why !== undefined) return why;
    if (typeof addon !== 'string' && addon.mmap && addon.munmap && st.size > 0) {
      const { mmap, munmap } = addon;
      const { buffer } = mmap(fd, 0n, BigInt(st.size), false);
      return { bytes: Buffer.from(buffer), release: () => munmap(buffer) };
    }
    // Read through this fd (the file fstat vouched for), at most the size it had then.
    const bytes = Buffer.allocUnsafe(st.size);
    let got = 0;
    for (let n = -1; n !== 0 && got < bytes.length; got += n)
      n = readSync(fd, bytes, got, bytes.length - got, got);
    return { bytes: bytes.subarray(0, got), release: () => {} };
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'not read';
  } finally {
    closeSync(fd);
  }
}

function debug(line: string): void {
  if (process.env.VFIO_NVLINK2_DEBUG_CODE_CACHE === '1')
    process.stderr.write(`vfio-nvlink2: code cache: ${line}\n`);
}

/** The cache's bytes for `buildId` (valid until `release`), or why there are none. */
function readCache(
  path: string,
  buildId: string,
  addon: LauncherAddon | string,
  digest: () => Digest,
): { data: Buffer; release(): void } | string {
  if (process.env.VFIO_NVLINK2_CODE_CACHE === 'off') return 'off (VFIO_NVLINK2_CODE_CACHE)';
  const file = fileBytes(path, addon);
  if (typeof file === 'string') return `not read: ${path} (${file})`;
  const { bytes } = file;
  const end = bytes.indexOf(10);
  const head = bytes.toString('latin1', 0, Math.max(end, 0)).trimEnd();
  const key = head.slice(0, head.lastIndexOf(' '));
  let why: string | undefined;
  if (end < 0 || key !== cacheKey(buildId)) why = `not used: ${path} is of another build or node`;
  else if (head.slice(key.length + 1) !== digest()(bytes.subarray(end + 1)))
    why = `not used: ${path} is damaged`;
  if (why === undefined) return { data: bytes.subarray(end + 1), release: file.release };
  file.release();
  return why;
}

/**
 * Runs the CLI from the CommonJS serve script with its code cache; false when there is no such
 * script (the caller runs the ES module bundle).
 */
function runServeScript(): boolean {
  const path = fileURLToPath(new URL('./vfio-nvlink2-serve.cjs', import.meta.url));
  const require = createRequire(path);
  const addon = loadAddon(require, dirname(path));
  const file = fileBytes(path, addon);
  if (typeof file === 'string') {
    debug(`serve script not read: ${path} (${file}); running the ES module bundle`);
    return false;
  }
  // ASCII only (scripts/bundle-cli.mjs escapes the rest), so latin1 reads it exactly, fast.
  const source = file.bytes.toString('latin1');
  file.release();
  const buildId = source.startsWith(ID_PREFIX)
    ? source.slice(ID_PREFIX.length, source.indexOf('\n'))
    : '';
  const cachePath = path.replace(/\.cjs$/, '.cache');
  let hex: Digest | undefined;
  const digest = () => {
    hex ??= sha256(require, addon);
    return hex;
  };
  const cache = readCache(cachePath, buildId, addon, digest);
  const script = new Script(source, {
    filename: path,
    ...(typeof cache === 'string' ? {} : { cachedData: cache.data }),
  });
  if (typeof cache === 'string') debug(cache);
  else {
    cache.release(); // V8 has deserialized it (or refused it): not read again
    if (script.cachedDataRejected) debug(`rejected by V8: ${cachePath}`);
    else debug(`used: ${cachePath}`);
  }
  // scripts/code-cache.mjs: the cache, written once this serve has started and stopped, so
  // that it holds every function start-up compiled (V8 compiles most of them lazily).
  const out = process.env.VFIO_NVLINK2_CODE_CACHE_OUT;
  if (out)
    process.once('exit', () => {
      const data = script.createCachedData();
      writeFileSync(out, Buffer.concat([cacheHead(cacheKey(buildId), digest()(data)), data]));
    });
  const run = script.runInThisContext() as (
    exports: object,
    require: NodeJS.Require,
    module: { exports: object },
    filename: string,
    dirname: string,
  ) => void;
  const module = { exports: {} };
  run.call(module.exports, module.exports, require, module, path, dirname(path));
  return true;
}

const argv = process.argv.slice(2);
const cached = argv[0] === 'serve' && !argv.some((a) => a.startsWith('--http'));
// Not awaited (a CommonJS bin has no top-level await): a failed import ends the process as an
// unhandled rejection, printed, exit status 1.
if (!(cached && runServeScript())) {
  const esm = fileURLToPath(new URL('./vfio-nvlink2-esm.js', import.meta.url));
  let why: string | undefined;
  try {
    why = notRegular(statSync(esm)); // node's loader would block on a FIFO for ever
  } catch (err) {
    why = (err as NodeJS.ErrnoException).code ?? 'not found';
  }
  if (why === undefined) void import(pathToFileURL(esm).href);
  else {
    process.stderr.write(
      `vfio-nvlink2: ${argv[0] ?? ''}: FILE: cannot run ${esm} (${why}); run \`npm run build\` or reinstall\n`,
    );
    process.exitCode = 1;
  }
}
