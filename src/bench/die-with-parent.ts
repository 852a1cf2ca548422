/**
 * Preloaded (`node --import …/die-with-parent.js?parent=PID`) into every child process the bench
 * and the fuzzer start (./node-entry.ts: `serve`, the peer, the mapping writer) and every CLI
 * process a test starts (test/support/cli.ts): the process is SIGKILLed when the process that
 * started it exits, also when that one is killed (a bench stopped by SIGKILL, a test file ended
 * by the runner at its timeout), so no `serve` outlives it (prctl PR_SET_PDEATHSIG through the
 * native addon). A parent already gone before the call (the kernel then names a reaper as
 * parent, not PID) ends the process here.
 */
import { constants } from 'node:os';
import { parentDeathSignal } from '../native/index.ts';

const expected = Number(new URL(import.meta.url).searchParams.get('parent'));
const parent = parentDeathSignal(constants.signals.SIGKILL);
if (Number.isSafeInteger(expected) && expected > 0 && parent !== expected)
  process.kill(process.pid, 'SIGKILL');
