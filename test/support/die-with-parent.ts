/**
 * Preloaded (`node --import …/die-with-parent.js?parent=PID`) into every CLI process a test
 * starts (./cli.ts): the process is SIGKILLed when the test process that started it exits, also
 * when the runner kills that test file at its timeout, so no `serve` outlives its test
 * (prctl PR_SET_PDEATHSIG through the native addon). A parent already gone before the call (the
 * kernel then names a reaper as parent, not PID) ends the process here.
 */
import { constants } from 'node:os';
import { parentDeathSignal } from '../../src/native/index.ts';

const expected = Number(new URL(import.meta.url).searchParams.get('parent'));
const parent = parentDeathSignal(constants.signals.SIGKILL);
if (Number.isSafeInteger(expected) && expected > 0 && parent !== expected)
  process.kill(process.pid, 'SIGKILL');
