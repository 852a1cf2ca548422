/**
 * VfioUserClient against a second implementation in another process (test/support/vfio_user_server.py, Python's
 * socket module passing fds): negotiation, info, region access and mappings, posted writes,
 * pipelining, error replies, interrupts through eventfds, DMA both ways, and a framing error
 * from the server closing the connection.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pack, packHeader } from '../../../test/support/frames.ts';
import { whenReadable } from '../../../test/support/native/helpers.ts';
import { PYTHON } from '../../../test/support/native/python.ts';
import { closeFd, eventfdCreate, eventfdRead, memfdCreate } from '../../native/index.ts';
import { Command, FramingError, ReplyError } from '../wire/index.ts';
import { VfioUserClient } from './client.ts';

const SERVER = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../../test/support/vfio_user_server.py',
);
const text = (s: string) => new TextEncoder().encode(s);

/** Polls `probe` until `done` holds; throws naming `what` after 60 s (a hang guard). */
async function until<T>(
  what: string,
  probe: () => Promise<T>,
  done: (v: T) => boolean,
): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after 60 s waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('VfioUserClient against a Python vfio-user server', () => {
  let dir = '';
  let child: ChildProcess;
  let client: VfioUserClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vfio-user-client-'));
    const path = join(dir, 'dev.sock');
    child = spawn(PYTHON, [SERVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('test-server.py not ready in 60 s')), 60_000);
      child.stdout?.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    client = await VfioUserClient.connect(path);
  });

  after(() => {
    client.close();
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test('VERSION: 0.0 back, the server capabilities with defaults', () => {
    assert.equal(client.version?.major, 0);
    assert.equal(client.version?.minor, 0);
    assert.equal(client.serverCapabilities.maxMsgFds, 8);
    assert.equal(client.serverCapabilities.maxDataXferSize, 1 << 20);
    assert.equal(client.serverCapabilities.maxDmaMaps, 65535);
  });

  test('peer credentials name the server process', () => {
    assert.equal(client.channel.connection.peer().pid, child.pid);
  });

  test('DEVICE_GET_INFO and DEVICE_GET_IRQ_INFO', async () => {
    assert.deepEqual(await client.getDeviceInfo(), {
      argsz: 16,
      flags: 3,
      numRegions: 10,
      numIrqs: 5,
    });
    assert.deepEqual(await client.getIrqInfo(2), { argsz: 16, flags: 9, index: 2, count: 4 });
  });

  test('GET_REGION_INFO: argsz 32 gets the fixed part and the size needed; then caps and an fd', async () => {
    const short = await client.getRegionInfo(0);
    assert.equal(short.info.argsz, 64);
    assert.equal(short.info.capOffset, 0);
    assert.equal(short.fd, null);
    const full = await client.regionInfo(0);
    assert.equal(full.info.capOffset, 32);
    assert.deepEqual(
      full.decoded.caps.map((c) => c.value),
      [{ kind: 'sparse-mmap', areas: [{ offset: 0x800n, size: 0x800n }] }],
    );
    assert.ok(full.fd !== null);
    closeFd(full.fd);
  });

  test('a mapped region and REGION_READ/WRITE see the same bytes', async () => {
    const region = await client.mapRegion(9);
    region.write(0x123n, text('through the mapping'));
    assert.deepEqual(await client.regionRead(9, 0x123n, 19), text('through the mapping'));
    await client.regionWrite(9, 0x3000n, text('by message'));
    assert.deepEqual(region.read(0x3000n, 10), text('by message'));
    region.unmap();
  });

  test('a sparse-mmap region maps only its areas', async () => {
    const region = await client.mapRegion(0);
    assert.deepEqual(
      region.areas.map((a) => [a.regionOffset, a.size]),
      [[0x800n, 0x800n]],
    );
    assert.throws(() => region.read(0n, 4), { code: 'EFAULT' });
    region.write(0x800n, text('sparse'));
    assert.deepEqual(await client.regionRead(0, 0x800n, 6), text('sparse'));
    region.unmap();
  });

  test('posted writes are ordered before the next command; WRITE_MULTI both ways', async () => {
    assert.deepEqual(await client.regionRead(7, 0n, 4), Uint8Array.of(0xde, 0x10, 0xb1, 0x1d));
    await client.regionWrite(7, 0x40n, Uint8Array.of(1, 2, 3, 4), { posted: true });
    assert.deepEqual(await client.regionRead(7, 0x40n, 4), Uint8Array.of(1, 2, 3, 4));
    await client.regionWriteMulti([
      { offset: 0x50n, region: 7, data: Uint8Array.of(9, 9) },
      { offset: 0x60n, region: 7, data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) },
    ]);
    assert.equal(
      await client.regionWriteMulti([{ offset: 0x70n, region: 7, data: Uint8Array.of(7) }], {
        posted: false,
      }),
      1n,
    );
    assert.deepEqual(await client.regionRead(7, 0x50n, 2), Uint8Array.of(9, 9));
    assert.deepEqual(await client.regionRead(7, 0x60n, 8), Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    assert.deepEqual(await client.regionRead(7, 0x70n, 1), Uint8Array.of(7));
  });

  test('regionRead into a caller buffer: the data lands there, pipelined reads each in their own', async () => {
    const pattern = Uint8Array.from({ length: 0x4000 }, (_, i) => (i * 13) & 0xff);
    await client.regionWrite(9, 0n, pattern);
    const big = new Uint8Array(0x5000).fill(0xee);
    const got = await client.regionRead(9, 0n, 0x4000, big);
    assert.equal(got.buffer, big.buffer);
    assert.deepEqual(got, pattern);
    assert.ok(big.subarray(0x4000).every((b) => b === 0xee)); // nothing past the data
    const into = Array.from({ length: 8 }, () => new Uint8Array(0x800));
    const reads = await Promise.all(
      into.map((buf, i) => client.regionRead(9, BigInt(i * 0x800), 0x800, buf)),
    );
    for (const [i, r] of reads.entries()) {
      assert.equal(r.buffer, into[i]!.buffer);
      assert.deepEqual(r, pattern.subarray(i * 0x800, (i + 1) * 0x800));
    }
    const small = new Uint8Array(4);
    assert.deepEqual(
      await client.regionRead(7, 0n, 4, small),
      Uint8Array.of(0xde, 0x10, 0xb1, 0x1d),
    );
    assert.deepEqual(small, Uint8Array.of(0xde, 0x10, 0xb1, 0x1d));
    await assert.rejects(client.regionRead(7, 300n, 4, new Uint8Array(4)), ReplyError);
    await assert.rejects(client.regionRead(9, 0n, 16, new Uint8Array(8)), RangeError);
  });

  test('200 pipelined reads come back matched by msg_id', async () => {
    await client.regionWrite(
      9,
      0n,
      Uint8Array.from({ length: 200 }, (_, i) => i),
    );
    const reads = await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.regionRead(9, BigInt(i), 1)),
    );
    assert.deepEqual(
      reads.map((r) => r[0]),
      Array.from({ length: 200 }, (_, i) => i),
    );
  });

  test('error replies become ReplyErrors with the errno; unknown commands get EINVAL', async () => {
    await assert.rejects(
      client.regionRead(7, 300n, 4),
      (e: unknown) => e instanceof ReplyError && e.remoteErrno === 22 && e.code === 'EINVAL',
    );
    const reply = client.expectReply(0x4242, 14);
    client.sendRaw(packHeader(0x4242, 14, 16, 0));
    const m = await reply;
    assert.deepEqual([m.header.flags, m.header.errno, m.header.size], [0x21, 22, 16]);
  });

  test('interrupts: eventfds set by SET_IRQS are signalled by the server, in chunks of max_msg_fds', async () => {
    const fds = Array.from({ length: 20 }, () => eventfdCreate(0, { nonBlocking: true }));
    await client.setIrqs({ index: 2, count: fds.length, eventfds: fds });
    for (const fd of fds) {
      await whenReadable(fd);
      assert.equal(eventfdRead(fd), 1n);
      closeFd(fd);
    }
  });

  test('server DMA_WRITE and DMA_READ are answered from client memory given as bytes', async () => {
    const memory = new Uint8Array(4096);
    memory.set(text('ABCDEFGH'));
    await client.dmaMap({ address: 0x10000n, size: 4096n, backing: { bytes: memory } });
    const seen = await until(
      'the DMA_READ result in region 2',
      () => client.regionRead(2, 0n, 16),
      (v) => v[0] !== 0,
    );
    assert.deepEqual(seen, text('ABCDEFGHPYTHON!!'));
    assert.deepEqual(memory.subarray(8, 16), text('PYTHON!!'));
  });

  test('DMA_MAP with an fd: the server writes guest memory through its own mapping', async () => {
    const fd = memfdCreate('guest-ram', 1n << 20n);
    await client.dmaMap({ address: 1n << 32n, size: 1n << 20n, backing: { fd } });
    const buf = Buffer.alloc(8);
    await until(
      'MAPPED!! in the DMA-mapped memfd',
      async () => readSync(fd, buf, 0, 8, 0),
      () => buf.toString() === 'MAPPED!!',
    );
    assert.deepEqual((await client.dmaUnmap({ all: true })).flags, 2);
    closeFd(fd);
  });

  test('DEVICE_RESET: the server clears COMMAND (config space bytes 4-5), read back', async () => {
    await client.regionWrite(7, 4n, Uint8Array.of(0x06, 0x00)); // MEMORY | MASTER
    assert.deepEqual(await client.regionRead(7, 4n, 2), Uint8Array.of(0x06, 0x00));
    await client.reset();
    assert.deepEqual(await client.regionRead(7, 4n, 2), Uint8Array.of(0x00, 0x00));
  });

  test('a reply with size 8 is a framing error: the connection closes, requests fail with EIO', async () => {
    const pending = client.channel.request({
      command: Command.DEVICE_FEATURE,
      argsz: 8,
      flags: 0xdead,
      data: pack(),
    });
    await assert.rejects(pending, { code: 'EIO' });
    const reason = await client.channel.closed;
    assert.equal(reason.kind, 'error');
    assert.ok(
      reason.kind === 'error' &&
        reason.error instanceof FramingError &&
        reason.error.kind === 'message-too-short',
    );
    await assert.rejects(client.regionRead(7, 0n, 4), /closed/);
  });
});
