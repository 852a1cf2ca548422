// Preloaded by scripts/run-tests.mjs into every test file (`--import`, beside die-with-parent):
// the per-test bound. Node 20 bounds only each file by --test-timeout, and node:test offers no
// public way to fail one running test from outside it (its TestContext keeps the test in a
// #private field; a test's timeout is fixed when it is created, from its options or its
// suite's; a hook's timer belongs to the hook, not to the test), so a test that outlives the
// bound stops its whole file: one line on stderr naming the file, the test and the bound, also
// appended to VFIO_NVLINK2_TEST_STOPPED for the runner to repeat on its own stderr, then exit 1
// (the file's servers die with it: src/bench/die-with-parent.ts).
//
// Root-level beforeEach/afterEach run around every test of the file, nested in describes or
// not, and around subtests; each running test has its own timer, keyed by its TestContext
// (tests of one file can run concurrently). The timer starts before the file's own beforeEach
// hooks and ends after its describes' afterEach hooks; it is cleared by afterEach or by the
// test's signal, which aborts when the test ends however it ends (a test skipped at run time
// by `t.skip()` gets no afterEach). The timers are unref'd: they keep no file alive. Not
// covered here, and left to the runner's per-file bound: a hanging before/after hook, and a
// test that blocks the event loop (no timer fires then).
//
// VFIO_NVLINK2_TEST_TIMEOUT_MS: the bound (ms); unset or not a positive integer, no bound.
import { appendFileSync } from 'node:fs';
import { relative } from 'node:path';
import { afterEach, beforeEach } from 'node:test';
import { sourcePath } from './dist.mjs';

const bound = Number(process.env.VFIO_NVLINK2_TEST_TIMEOUT_MS);

/** The test file as its author names it: `test/x.test.ts`, not `dist/test/x.test.js`. */
function fileName() {
  const file = process.argv[1];
  return file ? relative(process.cwd(), sourcePath(file)) : '(unknown file)';
}

if (Number.isSafeInteger(bound) && bound > 0) {
  /** Running test's context → its timer. */
  const running = new Map();
  const stop = (t) => {
    clearTimeout(running.get(t));
    running.delete(t);
  };
  const expire = (t) => {
    const name = t.fullName ?? t.name;
    const line = `run-tests: test "${name}" in ${fileName()} did not end within ${bound / 1000} s (per-test timeout); stopping this file\n`;
    process.stderr.write(line);
    const log = process.env.VFIO_NVLINK2_TEST_STOPPED;
    if (log) {
      try {
        appendFileSync(log, line);
      } catch {
        // the runner is gone or its directory removed: stderr has the line
      }
    }
    process.exit(1);
  };
  beforeEach((t) => {
    const timer = setTimeout(expire, bound, t);
    timer.unref();
    running.set(t, timer);
    t.signal.addEventListener('abort', () => stop(t), { once: true });
  });
  afterEach((t) => stop(t));
}
