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
import { CliError } from './cli-error.ts';
import { readPlatformArg } from './platform-arg.ts';

/** Where a host's firmware device tree is. */
export const PROC_DEVICE_TREE = '/proc/device-tree';

export interface TreeInput {
  readonly fdt: Fdt;
  readonly locator: Locator;
  /** The blob fdtput commands should edit (the input, or the DTB its DTS compiles to). */
  readonly dtb: string;
  /** The shell command that writes `dtb` when the input is not a blob (a fix script's first). */
  readonly makeDtb?: string;
}

function runDtc(args: string[], what: string): Buffer {
  const r = spawnSync('dtc', args, { maxBuffer: 256 * 1024 * 1024 });
  if (r.error) {
    throw new CliError(
      `${what}: cannot run dtc (${r.error.message}); install device-tree-compiler`,
      1,
    );
  }
  if (r.status !== 0) {
    const why = r.stderr.toString().trim().split('\n')[0] ?? `exit ${r.status}`;
    throw new CliError(`${what}: dtc rejected it: ${why}`, 1);
  }
  return r.stdout;
}

/** A live tree directory through `dtc -I fs -O dtb`. @throws CliError */
export function readLiveTree(dir: string): TreeInput {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // Missing or unreadable: said below.
  }
  if (!isDir) {
    const why = dir === PROC_DEVICE_TREE ? ' (this host has no Open Firmware device tree)' : '';
    throw new CliError(`dt doctor --live: ${dir}: no such directory${why}`, 1);
  }
  const bytes = runDtc(['-q', '-I', 'fs', '-O', 'dtb', dir], dir);
  try {
    const fdt = parseFdt(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), dir);
    return {
      fdt,
      locator: liveLocator(dir, existsSync),
      dtb: 'tree.dtb',
      makeDtb: `dtc -q -I fs -O dtb -o tree.dtb ${shellWord(dir)}`,
    };
  } catch (err) {
    if (err instanceof FdtError) throw new CliError(err.message, 1);
    throw err;
  }
}

/** A file (DTB or .dts) or the built-in platform. @throws CliError */
export function readTreeInput(file: string | undefined): TreeInput {
  const fdt = readPlatformArg(file);
  if (file === undefined) {
    return {
      fdt,
      locator: nameLocator('built-in'),
      dtb: 'witherspoon.dtb',
      makeDtb: 'vfio-nvlink2 dt generate -o witherspoon.dtb',
    };
  }
  if (file.endsWith('.dts')) {
    const annotated = runDtc(['-q', '-I', 'dts', '-O', 'dts', '-T', '-T', file], file).toString();
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
    const dtb = `${file.slice(0, -'.dts'.length)}.dtb`;
    return {
      fdt,
      locator: dtsLocator(annotated, file, sourceLine),
      dtb,
      makeDtb: `dtc -q -I dts -O dtb -o ${shellWord(dtb)} ${shellWord(file)}`,
    };
  }
  const bytes = readFileSync(file);
  return {
    fdt,
    locator: blobLocator(
      new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      file,
      fdt,
    ),
    dtb: file,
  };
}
