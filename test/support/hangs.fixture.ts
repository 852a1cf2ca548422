/**
 * Not a test of the project: test/run-tests.test.ts runs this file through the runner with a
 * small per-test bound (`--timeout`) and a huge per-file one, to see the runner stop the file at
 * the test that hangs and name it. Before it: a test that passes, one skipped at run time (it
 * gets no afterEach hook; its bound must end with it all the same) and steps that together,
 * not each, outlast the bound. The hanging test runs concurrently with a quick one in a
 * describe, so a bound kept for "the current test" rather than for each would miss it.
 * RUN_TESTS_FIXTURE_BOUND_MS: the bound the runner was given; the steps sum to twice that.
 */
import { describe, test } from 'node:test';

const bound = Number(process.env.RUN_TESTS_FIXTURE_BOUND_MS ?? 4000);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

test('passes before the hang', () => {});

test('skipped at run time', (t) => {
  t.skip('its bound ends with it');
});

for (let i = 1; i <= 8; i++) {
  test(`step ${i} of 8, a quarter of the bound`, () => sleep(bound / 4));
}

describe('concurrent', { concurrency: true }, () => {
  // Ends by itself long after the bound (2 minutes), should the runner not stop it.
  test('hangs', () => sleep(120_000));
  test('quick beside it', () => {});
});

test('never reached', () => {});
