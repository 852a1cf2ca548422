/**
 * The platform every command uses when no tree is given: a 6-GPU (Sequoia) Witherspoon with
 * 16 GiB V100s, link speed 0x8 and the "4T down" GPU memory map, as skiboot builds it
 * (witherspoon/generate.ts). Also loads a user's tree: a DTB, or a DTS compiled with dtc, told
 * apart by content (the FDT magic, or `/dts-v1/` first), whatever the file is called; `-` is
 * stdin.
 */
import type * as ChildProcess from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CodedError } from '../errors/index.ts';
import type { Fdt } from '../fdt/index.ts';
import { parseFdt } from '../fdt/index.ts';
import { generateWitherspoon } from './witherspoon/index.ts';

/** A tree that could not be loaded: the file, and why. */
export class PlatformTreeError extends CodedError<'DT_PARSE'> {
  override readonly name: string = 'PlatformTreeError';
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super('DT_PARSE', `${file}: ${detail}`);
  }
}

/** The built-in default platform (a fresh tree on every call: callers may change it). */
export function defaultPlatformTree(): Fdt {
  const fdt = generateWitherspoon({ gpus: 6, gpuRamGiB: 16, linkSpeed: 0x8, memoryMap: '4t-down' });
  fdt.source = 'built-in witherspoon (6 GPUs, 16 GiB)';
  return fdt;
}

/**
 * Compiles DTS with dtc: the file itself (so that /include/ finds its neighbours), or `text`
 * on dtc's stdin for `-`. @throws PlatformTreeError when dtc is missing or rejects it.
 */
function compileDts(file: string, text: Uint8Array): Uint8Array {
  // Loaded here, for the one tree that needs dtc: loading node:child_process cost every serve
  // start ~3 M instructions before its sockets listened (issue 8).
  const { spawnSync } = createRequire(import.meta.url)('node:child_process') as typeof ChildProcess;
  const r = spawnSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb', file], {
    maxBuffer: 64 * 1024 * 1024,
    ...(file === '-' ? { input: text } : {}),
  });
  if (r.error) {
    throw new PlatformTreeError(
      file,
      `is DTS source, and dtc, which compiles it, cannot run (${r.error.message}); install it (Debian: apt-get install device-tree-compiler) or pass a DTB (dtc -O dtb -o FILE.dtb ${file})`,
    );
  }
  if (r.status !== 0) {
    const why = r.stderr.toString().trim().split('\n')[0] ?? `exit ${r.status}`;
    throw new PlatformTreeError(file, `dtc rejected it: ${why}`);
  }
  return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength);
}

/**
 * The tree in `file` (a DTB; `.dts` files are compiled with dtc), or the default platform
 * when no file is given.
 * @throws PlatformTreeError when the file cannot be read or compiled; FdtError when the blob is malformed.
 */
export function loadPlatformTree(file?: string): Fdt {
  if (file === undefined) return defaultPlatformTree();
  const bytes = readTreeBytes(file);
  return parseFdt(isDtsSource(bytes) ? compileDts(file, bytes) : bytes, file);
}

let stdinBytes: Uint8Array | undefined;

/**
 * The bytes of a tree file; `-` is stdin, read once (later calls get the same bytes).
 * @throws PlatformTreeError naming the file when it cannot be read.
 */
export function readTreeBytes(file: string): Uint8Array {
  try {
    if (file !== '-') return readFileSync(file);
    stdinBytes ??= readFileSync(0);
    return stdinBytes;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new PlatformTreeError(file, `cannot read (${code})`);
  }
}

/**
 * Whether `bytes` are DTS source rather than a DTB: no FDT magic (0xd00dfeed), and `/dts-v1/`
 * (dtc's required first token) after blanks, comments and `#include`/`/include/` lines.
 */
export function isDtsSource(bytes: Uint8Array): boolean {
  if (bytes[0] === 0xd0 && bytes[1] === 0x0d && bytes[2] === 0xfe && bytes[3] === 0xed)
    return false;
  const head = Buffer.from(bytes.subarray(0, 64 * 1024)).toString('latin1');
  const rest = head.replace(
    /^(?:\s+|\/\/[^\n]*\n|\/\*[\s\S]*?\*\/|#include[^\n]*\n|\/include\/[^\n]*\n)*/,
    '',
  );
  return rest.startsWith('/dts-v1/');
}
