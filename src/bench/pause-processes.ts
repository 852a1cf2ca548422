/**
 * Pausing the processes that stand for a guest's vCPUs when a migration's source stops (QEMU
 * stops its vCPUs before vfio_save_complete_precopy): SIGSTOP, then a wait until /proc shows
 * each stopped, since kill(2) returns before a process running on another CPU has stopped and
 * a store it makes meanwhile must not follow the source's last read.
 */
import { readFileSync } from 'node:fs';
import { VfioError } from '../vfio/index.ts';

/** Longest wait for a paused process to be seen stopped (ms). */
export const PAUSE_WAIT_MS = 2000;

/** Whether /proc says `pid` is stopped (state T or t). @throws Error when it has no /proc entry */
function isStopped(pid: number): boolean {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const at = stat.lastIndexOf(')') + 2;
  const state = stat.slice(at, at + 1);
  return state === 'T' || state === 't';
}

/**
 * SIGSTOP to each of `pids`, then waits until each is stopped.
 * @throws Error ESRCH or EPERM from kill(2); VfioError ETIMEDOUT when one is not stopped within
 *   PAUSE_WAIT_MS.
 */
export function pauseProcesses(pids: readonly number[]): void {
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (const pid of pids) {
    const deadline = performance.now() + PAUSE_WAIT_MS;
    while (!isStopped(pid)) {
      if (performance.now() > deadline)
        throw new VfioError(
          'ETIMEDOUT',
          `pid ${pid} is not stopped ${PAUSE_WAIT_MS} ms after SIGSTOP`,
        );
      Atomics.wait(sleeper, 0, 0, 0.2);
    }
  }
}
