/**
 * Pausing the processes that stand for a guest's vCPUs when a migration's source stops (QEMU
 * stops its vCPUs before vfio_save_complete_precopy): SIGSTOP, then a wait until /proc shows
 * each stopped, since kill(2) returns before a process running on another CPU has stopped and
 * a store it makes meanwhile must not follow the source's last read.
 */
import { readFileSync } from 'node:fs';
import { errorCode } from '../errors/index.ts';
import { VfioError } from '../vfio/index.ts';

/** Longest wait for a paused process to be seen stopped (ms). */
export const PAUSE_WAIT_MS = 2000;

/**
 * Whether `pid` makes no more stores: /proc says it is stopped (state T or t), or it is gone (a
 * zombie, state Z, or reaped: no /proc entry), as when it is killed while being paused.
 * @throws Error when its /proc entry cannot be read for another reason
 */
export function stoppedOrGone(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ESRCH') return true;
    throw err;
  }
  const at = stat.lastIndexOf(')') + 2;
  const state = stat.slice(at, at + 1);
  return state === 'T' || state === 't' || state === 'Z' || state === 'X';
}

/**
 * SIGSTOP to each of `pids`, then waits until each is stopped (or gone meanwhile: it stores
 * nothing more either).
 * @throws Error ESRCH or EPERM from kill(2); VfioError ETIMEDOUT when one is not stopped within
 *   PAUSE_WAIT_MS.
 */
export function pauseProcesses(pids: readonly number[]): void {
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (const pid of pids) {
    const deadline = performance.now() + PAUSE_WAIT_MS;
    while (!stoppedOrGone(pid)) {
      if (performance.now() > deadline)
        throw new VfioError(
          'ETIMEDOUT',
          `pid ${pid} is not stopped ${PAUSE_WAIT_MS} ms after SIGSTOP`,
        );
      Atomics.wait(sleeper, 0, 0, 0.2);
    }
  }
}
