/**
 * Preloaded (`node --import …/die-with-parent.js?parent=PID`) into every child process the bench
 * and the fuzzer start (./node-entry.ts: `serve`, the peer, the mapping writer) and every CLI
 * process a test starts (test/support/cli.ts): the process is SIGKILLed when the process that
 * started it exits, also when that one is killed (a bench stopped by SIGKILL, a test file ended
 * by the runner at its timeout), so no `serve` outlives it (prctl PR_SET_PDEATHSIG through the
 * native addon). A parent already gone before the call (the kernel then names a reaper as
 * parent, not PID) ends the process here; a grandchild that inherited the preload through its
 * parent's execArgv (a test file under `node --test`, whose runner process runs no preload)
 * follows its own parent and also ends within half a second of the one named.
 */
import { constants } from 'node:os';
import { parentDeathSignal } from '../native/index.ts';

/** Whether process `pid` exists (signal 0 checks without sending). */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const expected = Number(new URL(import.meta.url).searchParams.get('parent'));
const parent = parentDeathSignal(constants.signals.SIGKILL);
// Another parent than the one named: that one is gone (the kernel re-parented us to a reaper),
// or we are its grandchild, started by a child that passed its execArgv on (`node --test`
// starts each test file so, and runs no preload itself): then we also watch the one named.
if (Number.isSafeInteger(expected) && expected > 0 && parent !== expected) {
  if (!exists(expected)) process.kill(process.pid, 'SIGKILL');
  setInterval(() => {
    if (!exists(expected)) process.kill(process.pid, 'SIGKILL');
  }, 500).unref();
}
