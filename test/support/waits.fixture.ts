/**
 * Not a test of the project: test/run-tests.test.ts runs this file through the runner and kills
 * the runner while this waits, to see the runner's child go with it. It prints its pid first.
 */
import { test } from 'node:test';

test('waits to be killed', async () => {
  process.stdout.write(`waiting pid ${process.pid}\n`);
  await new Promise((resolve) => setTimeout(resolve, 120_000));
});
