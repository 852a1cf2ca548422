/**
 * The addon's stop-copy relay (native/relay.c, src/native migRelay) between two real `serve`
 * processes: a stream with holes relayed in several calls loads at the destination (its
 * RESUMING → STOP checks every record's CRC-32 and END's counts) and reads back byte for byte
 * through REGION_READ there, holes as zeros, both connections still framed for the commands
 * after it; an error reply, a closed socket and an end that does not answer each come back
 * naming that end.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MigState } from '../src/migration/index.ts';
import { migRelay, type RelayOutcome } from '../src/native/index.ts';
import {
  Command,
  migrateDevice,
  migrationState,
  setMigrationState,
  VfioUserClient,
} from '../src/vfio-user/index.ts';
import { FLAG_ERROR, FLAG_REPLY, packHeader } from './support/frames.ts';
import { connectWhenFree, GPU, type ServeProcess, startServe } from './support/serve-process.ts';

const MiB = 1024 * 1024;
const GPU_RAM = 9;
const EINVAL = 22;
const ETIMEDOUT = 110;
/** What the source holds: [offset, length] runs of a pattern; the rest holes. */
const RUNS: readonly (readonly [number, number])[] = [
  [0, 3 * MiB + 4096],
  [40 * MiB, MiB],
  [64 * MiB - 65536, 65536],
];

function pattern(offset: number, length: number): Uint8Array {
  const b = new Uint8Array(length);
  const v = new DataView(b.buffer);
  for (let i = 0; i + 4 <= length; i += 4) v.setUint32(i, (offset + i) * 2654435761, true);
  return b;
}

let source: ServeProcess;
let destination: ServeProcess;
before(async () => {
  [source, destination] = await Promise.all([startServe(), startServe()]);
  const c = await connectWhenFree(source, GPU);
  const ram = await c.mapRegion(GPU_RAM);
  for (const [offset, length] of RUNS) ram.write(BigInt(offset), pattern(offset, length));
  ram.unmap();
  c.close();
});
after(async () => {
  await Promise.all([source.stop(), destination.stop()]);
});

/** The relay in calls of `step` bytes with both sockets lent, until it ends or fails. */
async function relayAll(
  a: VfioUserClient,
  b: VfioUserClient,
  step: number,
  timeoutMs?: number,
  whilePaused: () => Promise<unknown> = async () => {},
): Promise<{ bytes: number; calls: RelayOutcome[] }> {
  // Lent as migrate-device.ts lends them: idle, then paused (nothing of ours reads them).
  assert.ok(a.channel.connection.idle && b.channel.connection.idle);
  a.channel.connection.pause();
  b.channel.connection.pause();
  await whilePaused();
  const calls: RelayOutcome[] = [];
  let bytes = 0;
  try {
    for (;;) {
      const o = await migRelay({
        source: a.channel.connection.fd,
        destination: b.channel.connection.fd,
        chunk: Math.min(a.maxReadSize, b.maxReadSize),
        maxBytes: step,
        readAhead: 4,
        writesInFlight: 4,
        msgId: 0x4000,
        sourceTimeoutMs: timeoutMs,
        destinationTimeoutMs: timeoutMs,
      });
      calls.push(o);
      bytes += o.bytes;
      if (o.kind !== 0 || o.ended) return { bytes, calls };
    }
  } finally {
    a.channel.connection.resume();
    b.channel.connection.resume();
  }
}

/**
 * A proxy at a new socket to `target` that answers the `nth` MIG_DATA_READ (1-based) with an
 * error reply of `errno` in place of the server's reply; `failed` gets that reply's msg id.
 */
async function failingReadProxy(target: string, nth: number, errno: number) {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-relay-proxy-'));
  const path = join(dir, 'proxy.sock');
  const sockets: Socket[] = [];
  const failed: number[] = [];
  const server = createServer((client) => {
    const upstream = createConnection(target);
    sockets.push(client, upstream);
    client.pipe(upstream);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    let pending = Buffer.alloc(0);
    let reads = 0;
    upstream.on('data', (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      // Whole messages only: a header (msg_id u16, command u16, size u32, flags u32, error u32).
      while (pending.length >= 16 && pending.length >= pending.readUInt32LE(4)) {
        const size = pending.readUInt32LE(4);
        const message = pending.subarray(0, size);
        pending = pending.subarray(size);
        const [id, command, flags] = [
          message.readUInt16LE(0),
          message.readUInt16LE(2),
          message.readUInt32LE(8),
        ];
        if (command === Command.MIG_DATA_READ && (flags & 0xf) === FLAG_REPLY && ++reads === nth) {
          failed.push(id);
          client.write(packHeader(id, command, 16, FLAG_REPLY | FLAG_ERROR, errno));
        } else client.write(message);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    failed,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function to(c: VfioUserClient, ...states: MigState[]): Promise<void> {
  for (const s of states) await setMigrationState(c, s);
}

describe('stop-copy relay (native/relay.c)', () => {
  it('relays a stream with holes in several calls; it loads and reads back byte for byte', async () => {
    const a = await connectWhenFree(source, GPU);
    const b = await connectWhenFree(destination, GPU);
    try {
      await to(a, MigState.STOP, MigState.STOP_COPY);
      await to(b, MigState.STOP, MigState.RESUMING);
      const { bytes, calls } = await relayAll(a, b, 2 * MiB);
      assert.ok(calls.length >= 3, `${calls.length} calls`);
      assert.deepEqual(
        calls.map((c) => c.kind),
        calls.map(() => 0),
      );
      assert.equal(calls.at(-1)?.ended, true);
      const pages = RUNS.reduce((n, [, length]) => n + length, 0);
      assert.ok(bytes > pages && bytes < pages + MiB, `${bytes} stream bytes for ${pages}`);
      // Both connections are framed still: the commands after the relay are answered.
      await to(b, MigState.STOP, MigState.RUNNING);
      assert.equal(await migrationState(b), MigState.RUNNING);
      await to(a, MigState.STOP);
      for (const [offset, length] of RUNS) {
        for (let at = 0; at < length; at += MiB) {
          const n = Math.min(MiB, length - at);
          const got = await b.regionRead(GPU_RAM, BigInt(offset + at), n);
          assert.deepEqual(got, pattern(offset, length).subarray(at, at + n), `at ${offset + at}`);
        }
      }
      // A hole between two runs reads as zeros there.
      const hole = await b.regionRead(GPU_RAM, BigInt(20 * MiB), MiB);
      assert.ok(
        hole.every((x) => x === 0),
        'the hole at 20 MiB',
      );
      await to(a, MigState.RUNNING);
    } finally {
      a.close();
      b.close();
    }
  });

  it('migrateDevice: the relay and the request-by-request pump send the same stream, both loaded', async () => {
    const sent: number[] = [];
    for (const relay of [false, true]) {
      const a = await connectWhenFree(source, GPU);
      const b = await connectWhenFree(destination, GPU);
      try {
        const report = await migrateDevice(a, b, { maxRounds: 0, relay });
        sent.push(report.stopCopyBytes);
        assert.equal(await migrationState(b), MigState.RUNNING);
        for (const [offset, length] of RUNS) {
          const n = Math.min(MiB, length);
          const got = await b.regionRead(GPU_RAM, BigInt(offset + length - n), n);
          assert.deepEqual(got, pattern(offset, length).subarray(length - n), `relay ${relay}`);
        }
        await setMigrationState(a, MigState.RUNNING);
      } finally {
        a.close();
        b.close();
      }
    }
    assert.equal(sent[0], sent[1]);
  });

  it('migrateDevice: a destination stopped in STOP_COPY fails it after one reply timeout, naming it', async () => {
    const other = await startServe();
    const a = await connectWhenFree(source, GPU);
    const b = await VfioUserClient.connect(other.socket(GPU), { replyTimeoutMs: 500 });
    try {
      await assert.rejects(
        migrateDevice(a, b, {
          maxRounds: 0,
          destinationName: `destination ${other.socket(GPU)}`,
          beforeStop: () => process.kill(other.pid, 'SIGSTOP'),
        }),
        {
          code: 'ETIMEDOUT',
          message: `ETIMEDOUT: destination ${other.socket(GPU)} did not answer within 500 ms (no reply to MIG_DATA_WRITE)`,
        },
      );
      // The stream was cut mid-message: both connections are closed.
      assert.ok(a.channel.connection.closed && b.channel.connection.closed);
    } finally {
      process.kill(other.pid, 'SIGCONT');
      a.close();
      b.close();
      await other.stop();
    }
  });

  it('migrateDevice: an error reply to the 2nd MIG_DATA_READ of the relay names that msg id', async () => {
    const EIO = 5;
    const proxy = await failingReadProxy(source.socket(GPU), 2, EIO);
    const a = await VfioUserClient.connect(proxy.path, { replyTimeoutMs: 5000 });
    const b = await connectWhenFree(destination, GPU);
    try {
      const rejected = await migrateDevice(a, b, { maxRounds: 0, sourceName: 'source' }).then(
        () => assert.fail('the migration succeeded'),
        (e: unknown) => e as Error,
      );
      assert.equal(proxy.failed.length, 1);
      assert.equal(
        rejected.message,
        `EIO: source: VFIO_USER_MIG_DATA_READ (msg ${proxy.failed[0]}) failed: EIO`,
      );
    } finally {
      a.close();
      b.close();
      proxy.close();
    }
  });

  it("an error reply names its end with the server's errno", async () => {
    // The source still RUNNING: its MIG_DATA_READ is EINVAL.
    let a = await connectWhenFree(source, GPU);
    let b = await connectWhenFree(destination, GPU);
    try {
      await to(b, MigState.STOP, MigState.RESUMING);
      const { calls } = await relayAll(a, b, 64 * MiB);
      assert.deepEqual(
        { end: calls[0]?.end, kind: calls[0]?.kind, errno: calls[0]?.errno },
        { end: 1, kind: 1, errno: EINVAL },
      );
    } finally {
      a.close();
      b.close();
    }
    // The destination RUNNING: its MIG_DATA_WRITE is EINVAL.
    a = await connectWhenFree(source, GPU);
    b = await connectWhenFree(destination, GPU);
    try {
      await to(a, MigState.STOP, MigState.STOP_COPY);
      const { calls } = await relayAll(a, b, 64 * MiB);
      assert.deepEqual(
        { end: calls[0]?.end, kind: calls[0]?.kind, errno: calls[0]?.errno },
        { end: 2, kind: 1, errno: EINVAL },
      );
    } finally {
      a.close();
      b.close();
    }
  });

  it('an end that does not answer: a timeout naming it; one that exits: closed', async () => {
    const a = await connectWhenFree(source, GPU);
    const b = await connectWhenFree(destination, GPU);
    try {
      await to(a, MigState.STOP, MigState.STOP_COPY);
      await to(b, MigState.STOP, MigState.RESUMING);
      process.kill(source.pid, 'SIGSTOP');
      let calls: RelayOutcome[];
      try {
        ({ calls } = await relayAll(a, b, 64 * MiB, 300));
      } finally {
        process.kill(source.pid, 'SIGCONT');
      }
      assert.deepEqual(
        { end: calls[0]?.end, kind: calls[0]?.kind, errno: calls[0]?.errno },
        { end: 1, kind: 3, errno: ETIMEDOUT },
      );
    } finally {
      a.close();
      b.close();
    }
    const other = await startServe();
    const c = await connectWhenFree(source, GPU);
    const d = await connectWhenFree(other, GPU);
    try {
      await to(c, MigState.STOP, MigState.STOP_COPY);
      await to(d, MigState.STOP, MigState.RESUMING);
      const { calls } = await relayAll(c, d, 64 * MiB, 5000, () => other.stop('SIGKILL'));
      assert.deepEqual(
        { end: calls[0]?.end, kind: calls[0]?.kind },
        { end: 2, kind: 2 },
        JSON.stringify(calls[0]),
      );
    } finally {
      c.close();
      d.close();
    }
  });
});
