/**
 * The one write-then-rename of the project (every file serve, its state directory and the CLI's
 * `-o FILE` replace): the bytes go to a temporary file beside `path`, whose name is random and
 * which is created exclusively with O_NOFOLLOW (a file, hard link or symlink planted there is
 * never written through), then rename(2) puts it over `path` (replacing a symlink at `path`
 * itself, never its target). A reader sees the old file or the new one, never half of one; a
 * failure removes the temporary file and leaves `path` as it was.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { randomHex } from '../native/index.ts';
import type { FileIdentity } from '../vfio-user/index.ts';

/** How `replaceFile` makes the file. */
export interface ReplaceFileOptions {
  /**
   * The file's mode, exactly, whatever the umask; absent: 0o666 less the umask, as open(2)
   * makes a new file (a file the user named).
   */
  readonly mode?: number;
  /** fsync(2) the file before the rename and its directory after it (on disk when we return). */
  readonly sync?: boolean;
}

/**
 * Replaces the file at `path` with `bytes` (see the module header).
 * @returns the file written (st_dev, st_ino): serve removes its files at exit only while `path`
 *   is still the one it wrote.
 * @throws NodeJS.ErrnoException from open/write/fsync/rename (the temporary file is removed).
 */
export function replaceFile(
  path: string,
  bytes: string | Uint8Array,
  options: ReplaceFileOptions = {},
): FileIdentity {
  const tmp = `${path}.${randomHex(TEMPORARY_RANDOM_BYTES)}.tmp`;
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
  const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, options.mode ?? 0o666);
  try {
    let written: FileIdentity;
    try {
      if (options.mode !== undefined) fchmodSync(fd, options.mode); // the umask may have narrowed it
      writeFileSync(fd, bytes);
      if (options.sync) fsyncSync(fd);
      const st = fstatSync(fd);
      written = { dev: st.dev, ino: st.ino };
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    if (options.sync) syncDirectory(dirname(path));
    return written;
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Random bytes in a temporary's name (`<file>.<2 × this hex digits>.tmp`). */
const TEMPORARY_RANDOM_BYTES = 8;
const TEMPORARY = new RegExp(`^(.+)\\.[0-9a-f]{${2 * TEMPORARY_RANDOM_BYTES}}\\.tmp$`);

/**
 * Removes from `dir` the temporaries replaceFile left there for the files whose names pass
 * `of` (a process killed between its write and its rename: the file itself is whole), regular
 * files only; the caller makes sure no live writer uses `dir` (a lock, or its own files).
 * @returns the paths removed, for the caller's log lines.
 * @throws NodeJS.ErrnoException from readdir/lstat/rm.
 */
export function removeLeftTemporaries(dir: string, of: (name: string) => boolean): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const file = TEMPORARY.exec(name)?.[1];
    if (file === undefined || !of(file)) continue;
    const path = `${dir}/${name}`;
    if (!lstatSync(path).isFile()) continue;
    rmSync(path, { force: true });
    removed.push(path);
  }
  return removed;
}

/**
 * fsync(2) of a directory: a rename in it is on disk.
 * @throws NodeJS.ErrnoException from open/fsync.
 */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
