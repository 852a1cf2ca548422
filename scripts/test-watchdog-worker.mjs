// The per-test bound's clock (scripts/test-watchdog.mjs starts it, one per test file): a
// worker thread, so that a test blocking its file's event loop (`for (;;) {}`) is still
// stopped and named. The file's main thread posts { start, id, name } and { end, id }; a test
// still running after the bound gets one line on fd 2 (written synchronously: nothing in the
// main thread has to run), the same line appended to VFIO_NVLINK2_TEST_STOPPED for the runner,
// then the whole process is SIGKILLed (a blocked main thread could not exit; the file's servers
// die with it: src/bench/die-with-parent.ts).
import { appendFileSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { bound, file, log } = workerData;
/** Running test's id → its timer. */
const timers = new Map();

function expire(name) {
  const line = `run-tests: test "${name}" in ${file} did not end within ${bound / 1000} s (per-test timeout); stopping this file\n`;
  try {
    writeSync(2, line);
  } catch {
    // stderr closed: the log below still has the line
  }
  if (log) {
    try {
      appendFileSync(log, line);
    } catch {
      // the runner is gone or its directory removed: stderr has the line
    }
  }
  process.kill(process.pid, 'SIGKILL');
}

parentPort.on('message', (m) => {
  if (m.start) timers.set(m.id, setTimeout(expire, bound, m.name));
  else {
    clearTimeout(timers.get(m.id));
    timers.delete(m.id);
  }
});
