/**
 * `migrate` into a destination whose `serve --memory-budget` is smaller than the stream's GPU
 * RAM: the destination refuses a MIG_DATA_WRITE with ENOMEM, and migrate's one line names the
 * destination's --memory-budget (not a device of another kind).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCli } from './support/cli.ts';
import { connectWhenFree, GPU, type ServeProcess, startServe } from './support/serve-process.ts';

const MiB = 1024 * 1024;

let source: ServeProcess;
let destination: ServeProcess;
before(async () => {
  [source, destination] = await Promise.all([startServe(), startServe(['--memory-budget', '1M'])]);
});
after(async () => {
  await Promise.all([source.stop(), destination.stop()]);
});

describe('migrate into a destination past its --memory-budget', () => {
  it('fails with ENOMEM and a hint naming the destination --memory-budget', async () => {
    const c = await connectWhenFree(source, GPU);
    try {
      // 4 MiB of GPU RAM written on the source: more than the destination's 1 MiB budget.
      const page = new Uint8Array(MiB).fill(0xa5);
      for (let at = 0; at < 4; at++) await c.regionWrite(9, BigInt(at * MiB), page);
    } finally {
      c.close();
    }
    const to = destination.socket(GPU);
    const r = runCli([
      'migrate',
      '--from',
      source.socket(GPU),
      '--to',
      to,
      '--precopy-rounds',
      '0',
    ]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(
      r.stderr,
      `vfio-nvlink2: migrate: ENOMEM: destination ${to} refused the stream (ENOMEM): out of memory for the device's data, its --memory-budget? (its log says which)\n`,
    );
  });
});
