/**
 * The platform every command uses when no tree is given: a 6-GPU (Sequoia) Witherspoon with
 * 16 GiB V100s, link speed 0x8 and the "4T down" GPU memory map, as skiboot builds it
 * (witherspoon/generate.ts). Also loads a user's tree: a DTB, or a DTS compiled with dtc.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

/** Compiles DTS text with dtc. @throws PlatformTreeError when dtc is missing or rejects it. */
function compileDts(file: string): Uint8Array {
  const r = spawnSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb', file], {
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) {
    throw new PlatformTreeError(
      file,
      `cannot run dtc to compile DTS (${r.error.message}); install device-tree-compiler or pass a DTB`,
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
  let bytes: Uint8Array;
  if (file.endsWith('.dts')) {
    bytes = compileDts(file);
  } else {
    try {
      bytes = readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new PlatformTreeError(file, `cannot read (${code})`);
    }
  }
  return parseFdt(bytes, file);
}
