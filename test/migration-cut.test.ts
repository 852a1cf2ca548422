/**
 * A destination whose RESUMING stream is cut (its client gone mid-stream) says so in its log:
 * one line naming the device, the bytes loaded and that its memory is partly the stream's; the
 * migration state is reset (the next client finds it RUNNING) and the loaded GPU RAM is kept,
 * as GPU RAM survives a close in the kernel.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MigState } from '../src/migration/index.ts';
import {
  migrationState,
  readMigrationData,
  setMigrationState,
  writeMigrationData,
} from '../src/vfio-user/index.ts';
import {
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';

const MiB = 1024 * 1024;

let source: ServeProcess;
let destination: ServeProcess;
before(async () => {
  [source, destination] = await Promise.all([startServe(), startServe()]);
});
after(async () => {
  await Promise.all([source.stop(), destination.stop()]);
});

describe('a RESUMING stream cut by its client leaving', () => {
  it('logs the device, the bytes loaded and that its memory is partly the stream; RUNNING next, the GPU RAM loaded kept', async () => {
    const pattern = new Uint8Array(2 * MiB).fill(0x5a);
    const a = await connectWhenFree(source, GPU);
    const b = await connectWhenFree(destination, GPU);
    let loaded = 0;
    try {
      const ram = await a.mapRegion(9);
      ram.write(0n, pattern);
      ram.unmap();
      await setMigrationState(a, MigState.STOP);
      await setMigrationState(a, MigState.STOP_COPY);
      await setMigrationState(b, MigState.STOP);
      await setMigrationState(b, MigState.RESUMING);
      // The stream up to the middle of its GPU RAM: the rest never comes.
      const first = await readMigrationData(a, MiB);
      const second = await readMigrationData(a, MiB);
      for (const piece of [first, second.subarray(0, second.length >> 1)]) {
        await writeMigrationData(b, piece);
        loaded += piece.length;
      }
    } finally {
      a.close();
      b.close();
    }
    const line = await waitFor('the cut stream line', () =>
      destination
        .stderr()
        .split('\n')
        .find((l) => l.includes('migration stream cut')),
    );
    assert.match(
      line,
      new RegExp(
        `${GPU}: migration stream cut in RESUMING after ${loaded} bytes loaded: its memory is partly the stream's`,
      ),
    );
    const c = await connectWhenFree(destination, GPU);
    try {
      assert.equal(await migrationState(c), MigState.RUNNING);
      // The GPU RAM loaded before the cut is kept, read back over the wire: a prefix of the
      // pattern (the stream sends pages in address order), zeros past what was loaded.
      const ram = new Uint8Array(2 * MiB);
      ram.set(await c.regionRead(9, 0n, MiB));
      ram.set(await c.regionRead(9, BigInt(MiB), MiB), MiB);
      const kept = ram.findIndex((b) => b !== 0x5a);
      assert.ok(kept > 0, 'some GPU RAM of the stream was loaded and kept');
      assert.ok(kept < loaded, `kept ${kept} bytes of GPU RAM from a stream cut at ${loaded}`);
      assert.ok(
        ram.subarray(kept).every((b) => b === 0),
        'past the loaded pages GPU RAM is as it was (zeros)',
      );
    } finally {
      c.close();
    }
    // The source's client leaving in STOP_COPY cut no load: nothing said there.
    assert.doesNotMatch(source.stderr(), /migration stream cut/);
  });
});
