/**
 * Not a test of the project: test/run-tests.test.ts runs this file through the runner to get
 * far more reporter output than a pipe holds (1,000 passing tests with long names, ~340 KB),
 * and, with RUN_TESTS_FIXTURE_FAIL set, one failing test among them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

const pad = `long enough that each reporter line is over 300 bytes of output ${'.'.repeat(240)}`;
for (let i = 0; i < 1000; i++) {
  test(`output line ${String(i).padStart(4, '0')} of many, ${pad}`, () => {
    assert.equal(i === 500 && process.env.RUN_TESTS_FIXTURE_FAIL === '1', false);
  });
}
