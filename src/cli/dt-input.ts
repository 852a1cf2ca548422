/**
 * The tree `dt doctor` and `dt diff` read, with where its nodes are in the user's file: a DTB
 * (byte offsets), a DTS (compiled by dtc, positions from dtc's own annotations, `-O dts -T -T`),
 * a live tree directory such as /proc/device-tree (read by `dtc -I fs`, files as locations),
 * or the built-in platform.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Fdt } from '../fdt/index.ts';
import { FdtError, parseFdt } from '../fdt/index.ts';
import {
  blobLocator,
  dtsLocator,
  type Locator,
  liveLocator,
  nameLocator,
  shellWord,
} from '../nvlink2/index.ts';
import { isDtsSource, readTreeBytes } from '../platform/index.ts';
import { CliError, cliErrorOf } from './cli-error.ts';
import { readPlatformArg } from './platform-arg.ts';

/** Where a host's firmware device tree is. */
export const PROC_DEVICE_TREE = '/proc/device-tree';

/**
 * A tree as `dt doctor`/`dt diff` read it: the tree, where its nodes are in the input, and the blob
 * fix scripts edit.
 */
export interface TreeInput {
  readonly fdt: Fdt;
  readonly locator: Locator;
  /** The blob fdtput commands should edit (the input, or the DTB its DTS compiles to). */
  readonly dtb: string;
  /** The shell command that writes `dtb` when the input is not a blob (a fix script's first). */
  readonly makeDtb?: string;
}

function runDtc(command: string, args: string[], what: string): Buffer {
  const r = spawnSync('dtc', args, { maxBuffer: 256 * 1024 * 1024 });
  if (r.error) {
    throw new CliError(
      command,
      'DT_PARSE',
      `${what}: cannot run dtc (${r.error.message}); install device-tree-compiler`,
    );
  }
  if (r.status !== 0) {
    const why = r.stderr.toString().trim().split('\n')[0] ?? `exit ${r.status}`;
    throw new CliError(command, 'DT_PARSE', `${what}: dtc rejected it: ${why}`);
  }
  return r.stdout;
}

/**
 * A live tree directory through `dtc -I fs -O dtb`, for `command`.
 * @throws CliError FILE when `dir` is not a directory; DT_PARSE when dtc cannot run or rejects it, or the blob is malformed.
 */
export function readLiveTree(command: string, dir: string): TreeInput {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // Missing or unreadable: said below.
  }
  if (!isDir) {
    const why = dir === PROC_DEVICE_TREE ? ' (this host has no Open Firmware device tree)' : '';
    throw new CliError(command, 'FILE', `--live: ${dir}: no such directory${why}`, 1);
  }
  const bytes = runDtc(command, ['-q', '-I', 'fs', '-O', 'dtb', dir], dir);
  try {
    const fdt = parseFdt(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), dir);
    return {
      fdt,
      locator: liveLocator(dir, existsSync),
      dtb: 'tree.dtb',
      makeDtb: `dtc -q -I fs -O dtb -o tree.dtb ${shellWord(dir)}`,
    };
  } catch (err) {
    if (err instanceof FdtError) throw cliErrorOf(command, err);
    throw err;
  }
}

/**
 * A file (DTB or .dts) or the built-in platform, for `command`.
 * @throws CliError DT_PARSE when the file cannot be read, compiled or parsed.
 */
export function readTreeInput(command: string, file: string | undefined): TreeInput {
  const fdt = readPlatformArg(command, file);
  if (file === undefined) {
    return {
      fdt,
      locator: nameLocator('built-in'),
      dtb: 'witherspoon.dtb',
      makeDtb: 'vfio-nvlink2 dt generate -o witherspoon.dtb',
    };
  }
  const bytes = readTreeBytes(file); // read already by readPlatformArg (stdin: kept)
  if (file === '-') {
    // From stdin: no file to point into, and the blob fix scripts edit is one to write.
    return isDtsSource(bytes)
      ? {
          fdt,
          locator: nameLocator('stdin'),
          dtb: 'stdin.dtb',
          makeDtb: 'dtc -q -I dts -O dtb -o stdin.dtb -',
        }
      : { fdt, locator: blobLocator(bytes, 'stdin', fdt), dtb: 'stdin.dtb' };
  }
  if (isDtsSource(bytes)) {
    const annotated = runDtc(
      command,
      ['-q', '-I', 'dts', '-O', 'dts', '-T', '-T', file],
      file,
    ).toString();
    const lines = new Map<string, string[] | undefined>();
    const sourceLine = (f: string, line: number) => {
      if (!lines.has(f)) {
        try {
          lines.set(f, readFileSync(f, 'utf8').split('\n'));
        } catch {
          lines.set(f, undefined);
        }
      }
      return lines.get(f)?.[line - 1];
    };
    const dtb = `${file.endsWith('.dts') ? file.slice(0, -'.dts'.length) : file}.dtb`;
    return {
      fdt,
      locator: dtsLocator(annotated, file, sourceLine),
      dtb,
      makeDtb: `dtc -q -I dts -O dtb -o ${shellWord(dtb)} ${shellWord(file)}`,
    };
  }
  return { fdt, locator: blobLocator(bytes, file, fdt), dtb: file };
}
