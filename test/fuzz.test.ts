/**
 * `vfio-nvlink2 fuzz` against a real `serve` child: 20,000 seeded mutated and random messages
 * over 18 concurrent connections (src/fuzz/run-fuzz.ts), then a well-behaved client on every
 * device, the GPU RAM canaries, and the server's fds and tables back where they were. Set
 * FUZZ_MESSAGES / FUZZ_SEED to run more or another sequence. Nothing is avoided: the faults
 * the fuzzer found (src/fuzz/known-faults.ts) are fixed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runFuzz } from '../src/fuzz/run-fuzz.ts';
import { renderSummary } from '../src/fuzz/summary.ts';

const MESSAGES = Number(process.env.FUZZ_MESSAGES ?? 20_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_130);

describe('fuzz', () => {
  it(`${MESSAGES} messages: no crash, no anomaly, every device served, canaries intact`, async () => {
    const report = await runFuzz({
      messages: MESSAGES,
      seed: SEED,
      lanes: 18,
      stallMs: 60_000,
      avoid: new Set(),
      serveArgs: [],
    });
    assert.deepEqual(report.failures, [], renderSummary(report));
    assert.equal(report.counts.messages + report.counts.unsent, MESSAGES);
    assert.equal(report.server.alive, true);
    assert.equal(report.server.fdsAfter, report.server.fdsBefore);
    // The messages reached the handlers and the framing: successes, errors, closes, refusals.
    assert.ok(report.counts.ok > MESSAGES / 20, `${report.counts.ok} successful replies`);
    for (const errno of ['EINVAL', 'ENOENT', 'EEXIST', 'ENOTTY', 'EFAULT']) {
      assert.ok((report.counts.errors[errno] ?? 0) > 0, `some ${errno} replies`);
    }
    assert.ok(report.counts.closedByServer > 0, 'framing errors closed connections');
    assert.ok(report.counts.refused > 0, 'second clients were refused');
  });
});
