/**
 * One server per state directory: an exclusive flock(2) on DIR/lock, held for the life of the
 * process (the kernel drops it when the process dies, kill -9 included, so no stale lock is left
 * to clean up). The holder writes its pid into the file, so a refused second server can say who
 * holds the directory.
 */
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { messageOf } from '../errors/index.ts';
import { lockExclusive } from '../native/index.ts';
import { StateDirError } from './state-file.ts';

/** The held lock of a state directory; `release` closes it (process exit does as well). */
export interface StateDirLock {
  readonly path: string;
  release(): void;
}

/**
 * Takes DIR/lock.
 * @throws StateDirError naming `dir` and the holder's pid when another process holds it, or the
 *   lock file when it cannot be opened.
 */
export function lockStateDir(dir: string): StateDirLock {
  const path = `${dir}/lock`;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw new StateDirError(
      `${path}: cannot open the lock (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
  let taken: boolean;
  try {
    taken = lockExclusive(fd);
  } catch (err) {
    closeSync(fd);
    throw new StateDirError(`${path}: cannot lock (${messageOf(err)})`);
  }
  if (!taken) {
    closeSync(fd);
    let holder = 'unknown';
    try {
      holder = readFileSync(path, 'utf8').trim() || holder;
    } catch {
      // the holder's pid is a courtesy; the refusal stands without it
    }
    throw new StateDirError(
      `${dir} is in use by another server (pid ${holder}, holding ${path}); one server per state directory`,
    );
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  let held = true;
  return {
    path,
    release() {
      if (held) closeSync(fd);
      held = false;
    },
  };
}
