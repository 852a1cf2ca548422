/**
 * A destination whose RESUMING stream is cut (its client gone mid-stream) says so in its log:
 * one line naming the device, the bytes loaded and that its memory is partly the stream's; the
 * migration state is reset (the next client finds it RUNNING) and the loaded GPU RAM is kept,
 * as GPU RAM survives a close in the kernel. So does a `serve --state-dir` destination killed
 * (kill -9) mid-RESUMING, when it restarts on its directory; one killed after a whole
 * migration says nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MigState } from '../src/migration/index.ts';
import {
  migrationState,
  readMigrationData,
  setMigrationState,
  type VfioUserClient,
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

/** The whole STOP_COPY stream of the source's GPU, `pattern` written first to its GPU RAM. */
async function sourceStream(pattern: Uint8Array): Promise<Uint8Array> {
  const a = await connectWhenFree(source, GPU);
  try {
    const ram = await a.mapRegion(9);
    ram.write(0n, pattern);
    ram.unmap();
    await setMigrationState(a, MigState.STOP);
    await setMigrationState(a, MigState.STOP_COPY);
    const parts: Uint8Array[] = [];
    for (;;) {
      const d = await readMigrationData(a, MiB);
      parts.push(d.slice());
      if (d.length < MiB) break;
    }
    return Buffer.concat(parts);
  } finally {
    a.close();
  }
}

/** `length` bytes of `stream` written to `b` in RESUMING, 1 MiB at a time. */
async function load(b: VfioUserClient, stream: Uint8Array, length: number): Promise<void> {
  await setMigrationState(b, MigState.STOP);
  await setMigrationState(b, MigState.RESUMING);
  for (let at = 0; at < length; at += MiB)
    await writeMigrationData(b, stream.subarray(at, Math.min(at + MiB, length)));
}

/** GPU RAM's first 2 MiB read back over the wire. */
async function gpuRamHead(c: VfioUserClient): Promise<Uint8Array> {
  const ram = new Uint8Array(2 * MiB);
  ram.set(await c.regionRead(9, 0n, MiB));
  ram.set(await c.regionRead(9, BigInt(MiB), MiB), MiB);
  return ram;
}

describe('a serve --state-dir destination killed (kill -9) and restarted', () => {
  const stateDirs: string[] = [];
  const servers: ServeProcess[] = [];
  after(async () => {
    for (const s of servers) await s.stop('SIGKILL').catch(() => {});
    for (const d of stateDirs) rmSync(d, { recursive: true, force: true });
  });
  async function serveOn(dir: string): Promise<ServeProcess> {
    const s = await startServe(['--state-dir', dir]);
    servers.push(s);
    return s;
  }
  function newStateDir(): string {
    const d = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-cut-state-'));
    stateDirs.push(d);
    return join(d, 'state');
  }

  it('mid-RESUMING: the restart logs the cut naming the device and DIR; RUNNING, the GPU RAM loaded kept', async () => {
    const pattern = new Uint8Array(2 * MiB).fill(0xa5);
    const stream = await sourceStream(pattern);
    const dir = newStateDir();
    const killed = await serveOn(dir);
    const b = await connectWhenFree(killed, GPU);
    try {
      // All but the last 200 bytes: every GPU RAM page is in, the stream is not whole.
      await load(b, stream, stream.length - 200);
      assert.equal(await killed.stop('SIGKILL'), null);
    } finally {
      b.close();
    }
    assert.doesNotMatch(killed.stderr(), /migration stream cut/);
    const restarted = await serveOn(dir);
    const lines = restarted
      .stderr()
      .split('\n')
      .filter((l) => l.includes('migration stream cut'))
      .map((l) => l.replace(/^\S+ vfio-nvlink2 serve: /, ''));
    assert.deepEqual(lines, [
      `${GPU}: migration stream cut in RESUMING by the server's end (restarted from ${dir}): its memory is partly the stream's; migration state RUNNING`,
    ]);
    const c = await connectWhenFree(restarted, GPU);
    try {
      assert.equal(await migrationState(c), MigState.RUNNING);
      assert.deepEqual(await gpuRamHead(c), pattern, 'the GPU RAM loaded before the kill');
    } finally {
      c.close();
    }
    // Said once: the restart wrote the device's state without the load.
    assert.equal(await restarted.stop('SIGKILL'), null);
    const again = await serveOn(dir);
    assert.doesNotMatch(again.stderr(), /migration stream cut/);
  });

  it('after a load that failed (ERROR): the restart logs the cut in ERROR; RUNNING', async () => {
    const stream = await sourceStream(new Uint8Array(2 * MiB).fill(0x69));
    const dir = newStateDir();
    const killed = await serveOn(dir);
    const b = await connectWhenFree(killed, GPU);
    try {
      await load(b, stream, stream.length - 200);
      await assert.rejects(setMigrationState(b, MigState.STOP)); // the stream is not whole
      assert.equal(await migrationState(b), MigState.ERROR);
      assert.equal(await killed.stop('SIGKILL'), null);
    } finally {
      b.close();
    }
    const restarted = await serveOn(dir);
    assert.match(
      restarted.stderr(),
      new RegExp(
        `${GPU}: migration stream cut in ERROR by the server's end \\(restarted from ${dir}\\): its memory is partly the stream's; migration state RUNNING`,
      ),
    );
    const c = await connectWhenFree(restarted, GPU);
    try {
      assert.equal(await migrationState(c), MigState.RUNNING);
    } finally {
      c.close();
    }
  });

  it('after a whole migration: the restart says nothing of a cut; RUNNING, the GPU RAM migrated', async () => {
    const pattern = new Uint8Array(2 * MiB).fill(0x3c);
    const stream = await sourceStream(pattern);
    const dir = newStateDir();
    const killed = await serveOn(dir);
    const b = await connectWhenFree(killed, GPU);
    try {
      await load(b, stream, stream.length);
      await setMigrationState(b, MigState.STOP);
      await setMigrationState(b, MigState.RUNNING);
      assert.equal(await killed.stop('SIGKILL'), null);
    } finally {
      b.close();
    }
    const restarted = await serveOn(dir);
    assert.match(restarted.stderr(), /state directory .*: restored/);
    assert.doesNotMatch(restarted.stderr(), /migration stream cut/);
    const c = await connectWhenFree(restarted, GPU);
    try {
      assert.equal(await migrationState(c), MigState.RUNNING);
      assert.deepEqual(await gpuRamHead(c), pattern);
    } finally {
      c.close();
    }
  });
});
