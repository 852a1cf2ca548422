/**
 * The device reaching client memory over the real socket: DMA_MAP regions are read and written
 * by the device's DMA engine (BAR0 doorbell page, src/vfio/dma-engine.ts), checked through a
 * second path (the test's own pread/pwrite of the memfd). A client that shrinks its file under
 * the server gets EFAULT, never kills it (SIGBUS); maps of 1 TiB map nothing until touched and
 * the server keeps at most a bounded number of windows of a client file, counted in
 * /proc/<pid>/maps.
 */
import assert from 'node:assert/strict';
import { fstatSync, readFileSync, readSync, writeSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  addFileSeals,
  closeFd,
  FileSeal,
  ftruncate,
  isSystemCallError,
  memfdCreate,
} from '../src/native/index.ts';
import { DmaEngineCommand, DmaEngineReg } from '../src/vfio/dma-engine.ts';
import {
  Command,
  MAX_WINDOWS_PER_SESSION,
  ReplyError,
  VfioUserClient,
} from '../src/vfio-user/index.ts';
import { FLAG_ERROR, frame, pack } from './support/frames.ts';
import { GPU, type ServeProcess, startServe } from './support/serve-process.ts';
import { waitFor } from './support/wait.ts';

const MiB = 1n << 20n;
const GiB = 1n << 30n;
const TiB = 1n << 40n;
const EFAULT = 14;
const EPERM = 1;
const EINVAL = 22;
/** A file as a client makes it: unsealed, so each test seals or shrinks it as a VMM could. */
const CLIENT_FILE = { seals: 0 };

let serve: ServeProcess;
let client: VfioUserClient;
let page: bigint;
let msgId = 0x6000;

before(async () => {
  serve = await startServe();
  client = await VfioUserClient.connect(serve.socket(GPU));
  page = (await client.getRegionInfo(0)).info.size - 0x1000n;
});
after(async () => {
  client.close();
  await serve.stop();
});

/** DMA_MAP sent raw (the client library would map the fd itself); resolves with the errno or 0. */
async function rawMap(address: bigint, size: bigint, fd?: number, offset = 0n, flags = 3) {
  const id = msgId++;
  client.sendRaw(
    frame(id, Command.DMA_MAP, pack(32, flags, offset, address, size)),
    fd === undefined ? [] : [fd],
  );
  const m = await client.expectReply(id, Command.DMA_MAP);
  return m.header.flags & FLAG_ERROR ? m.header.errno : 0;
}

/** Starts the engine (ADDRESS, LENGTH, COMMAND in one write); resolves with the reply's errno. */
async function engine(address: bigint, length: number, command: number): Promise<number> {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, address, true);
  v.setUint32(8, length, true);
  v.setUint32(12, command, true);
  try {
    await client.regionWrite(0, page + BigInt(DmaEngineReg.ADDRESS), b);
    return 0;
  } catch (e) {
    if (e instanceof ReplyError) return e.remoteErrno;
    throw e;
  }
}

async function engineStatus(): Promise<number> {
  const s = await client.regionRead(0, page + BigInt(DmaEngineReg.STATUS), 4);
  return new DataView(s.buffer, s.byteOffset, 4).getUint32(0, true);
}

/** DMA read of `length` bytes at `address` into DATA; returns them. */
async function dmaRead(address: bigint, length: number): Promise<Uint8Array> {
  assert.equal(await engine(address, length, DmaEngineCommand.READ), 0, 'engine READ');
  return client.regionRead(0, page + BigInt(DmaEngineReg.DATA), length);
}

async function dmaWrite(address: bigint, data: Uint8Array): Promise<void> {
  await client.regionWrite(0, page + BigInt(DmaEngineReg.DATA), data);
  assert.equal(await engine(address, data.length, DmaEngineCommand.WRITE), 0, 'engine WRITE');
}

function pread(fd: number, offset: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  readSync(fd, out, 0, length, offset);
  return out;
}

/** The server's mappings of files named `name` (memfd:<name>), from /proc/<pid>/maps. */
function serverMappingsOf(name: string): number {
  return readFileSync(`/proc/${serve.pid}/maps`, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`/memfd:${name} `) || l.endsWith(`/memfd:${name} (deleted)`)).length;
}

/** VmSize and VmRSS of the server, in bytes. */
function serverMemory(): { size: bigint; rss: bigint } {
  const status = readFileSync(`/proc/${serve.pid}/status`, 'utf8');
  const kb = (key: string) =>
    BigInt(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024n;
  return { size: kb('VmSize'), rss: kb('VmRSS') };
}

function alive(): boolean {
  process.kill(serve.pid, 0);
  return serve.child.exitCode === null && serve.child.signalCode === null;
}

const pattern = (n: number, seed: number) =>
  new Uint8Array(n).map((_, i) => (i * 31 + seed) & 0xff);

describe('device DMA into client memory', () => {
  for (const sealed of [false, true]) {
    it(`reads and writes a client's memfd (${sealed ? 'sealed: through windows' : 'not sealed: pread/pwrite'})`, async () => {
      const fd = memfdCreate(`guest-${sealed}`, 4n * MiB, CLIENT_FILE);
      if (sealed) addFileSeals(fd, FileSeal.SHRINK | FileSeal.GROW);
      const base = 0x4000_0000n;
      try {
        const before = pattern(0x800, 1);
        writeSync(fd, before, 0, before.length, 0x1000 + 0x2345);
        assert.equal(await rawMap(base, 2n * MiB, fd, 0x1000n), 0);
        assert.deepEqual(await dmaRead(base + 0x2345n, 0x800), before);
        assert.equal(await engineStatus(), 0);
        const data = pattern(0x7ff, 9);
        // Crosses nothing for pread; for windows it lands inside the first 64 MiB window.
        await dmaWrite(base + 2n * MiB - 0x7ffn, data);
        assert.deepEqual(pread(fd, 0x1000n + 2n * MiB - 0x7ffn, 0x7ff), data);
        assert.equal(await engine(base + 2n * MiB - 4n, 8, DmaEngineCommand.READ), EFAULT);
        assert.equal(await engineStatus(), EFAULT, 'STATUS holds the fault');
        assert.equal(serverMappingsOf(`guest-${sealed}`), sealed ? 1 : 0);
        await client.dmaUnmap({ address: base, size: 2n * MiB });
        assert.equal(serverMappingsOf(`guest-${sealed}`), 0, 'unmap drops the window');
      } finally {
        closeFd(fd);
      }
    });
  }

  it('a client shrinking its unsealed file gets EFAULT; the server lives and never grows the file', async () => {
    const fd = memfdCreate('guest-shrinks', 2n * MiB, CLIENT_FILE);
    const base = 0x5000_0000n;
    try {
      assert.equal(await rawMap(base, 2n * MiB, fd), 0);
      await dmaWrite(base + MiB, pattern(64, 3));
      ftruncate(fd, 0n);
      assert.equal(await engine(base + MiB, 64, DmaEngineCommand.READ), EFAULT);
      assert.equal(await engineStatus(), EFAULT);
      assert.equal(await engine(base + MiB, 64, DmaEngineCommand.WRITE), EFAULT);
      assert.equal(fstatSync(fd).size, 0, 'a refused write did not extend the file');
      ftruncate(fd, MiB + 32n); // half of the next access is inside again
      assert.equal(await engine(base + MiB, 64, DmaEngineCommand.READ), EFAULT);
      assert.match(serve.stderr(), /past the end of the client's file|it shrank/);
      assert.ok(alive(), 'the server is alive');
      ftruncate(fd, 2n * MiB);
      assert.deepEqual(await dmaRead(base + MiB - 8n, 8), new Uint8Array(8), 'zeros again');
      await client.dmaUnmap({ address: base, size: 2n * MiB });
    } finally {
      closeFd(fd);
    }
  });

  it('a range past the end of a file sealed against growing is refused at DMA_MAP (EINVAL)', async () => {
    const fd = memfdCreate('guest-fixed', MiB, CLIENT_FILE);
    addFileSeals(fd, FileSeal.SHRINK | FileSeal.GROW);
    const base = 0x5400_0000n;
    try {
      assert.equal(await rawMap(base, 2n * MiB, fd), EINVAL);
      assert.equal(await rawMap(base, MiB, fd, 0x1000n), EINVAL, 'the offset counts');
      const refused =
        /DMA_MAP 0x54000000-0x54100000: file offset 0x1000\+0x100000 is past the end of the client's file \(0x100000 bytes, sealed against growing\)/;
      await waitFor('the refusal', () => refused.test(serve.stderr()));
      assert.equal(await rawMap(base, MiB - 0x1000n, fd, 0x1000n), 0, 'up to its end is fine');
      await dmaWrite(base + MiB - 0x1008n, pattern(8, 7));
      assert.deepEqual(pread(fd, MiB - 8n, 8), pattern(8, 7));
      await client.dmaUnmap({ address: base, size: MiB - 0x1000n });
    } finally {
      closeFd(fd);
    }
  });

  it('an unsealed file shorter than its map faults past its end, without claiming it shrank', async () => {
    const fd = memfdCreate('guest-short', MiB, CLIENT_FILE);
    const base = 0x5600_0000n;
    try {
      assert.equal(await rawMap(base, 2n * MiB, fd), 0, 'it may grow: accepted');
      const from = serve.stderr().length;
      assert.equal(await engine(base + MiB, 8, DmaEngineCommand.READ), EFAULT);
      assert.equal(await engine(base + MiB, 8, DmaEngineCommand.WRITE), EFAULT);
      const said = await waitFor('both faults logged', () => {
        const text = serve.stderr().slice(from);
        return text.match(/past the end of the client's file|the client's file ends/g)?.length === 2
          ? text
          : undefined;
      });
      assert.doesNotMatch(said, /shrank/);
      ftruncate(fd, MiB / 2n);
      assert.equal(await engine(base + MiB - 8n, 8, DmaEngineCommand.WRITE), EFAULT);
      await waitFor('the shrink named', () =>
        /it shrank from 0x100000 bytes/.test(serve.stderr().slice(from)),
      );
      await client.dmaUnmap({ address: base, size: 2n * MiB });
    } finally {
      closeFd(fd);
    }
  });

  it('a sealed file cannot shrink under the server (the client gets EPERM)', async () => {
    const fd = memfdCreate('guest-sealed', MiB, CLIENT_FILE);
    addFileSeals(fd, FileSeal.SHRINK);
    try {
      assert.equal(await rawMap(0x5800_0000n, MiB, fd), 0);
      assert.throws(
        () => ftruncate(fd, 0n),
        (e: unknown) => isSystemCallError(e) && e.code === 'EPERM',
      );
      await dmaWrite(0x5800_0000n + MiB - 16n, pattern(16, 5));
      assert.deepEqual(pread(fd, MiB - 16n, 16), pattern(16, 5));
      await client.dmaUnmap({ address: 0x5800_0000n, size: MiB });
    } finally {
      closeFd(fd);
    }
  });

  it('faults: no region there, a region without an fd, a read-only region', async () => {
    assert.equal(await engine(0x7000_0000n, 4, DmaEngineCommand.READ), EFAULT);
    assert.equal(await rawMap(0x7000_0000n, MiB), 0);
    assert.equal(await engine(0x7000_0000n, 4, DmaEngineCommand.READ), EFAULT);
    const fd = memfdCreate('guest-ro', MiB, CLIENT_FILE);
    try {
      assert.equal(await rawMap(0x7100_0000n, MiB, fd, 0n, 1), 0);
      assert.deepEqual(await dmaRead(0x7100_0000n, 4), new Uint8Array(4));
      assert.equal(await engine(0x7100_0000n, 4, DmaEngineCommand.WRITE), EPERM);
    } finally {
      closeFd(fd);
    }
    await client.dmaUnmap({ all: true });
  });

  it('1 TiB maps (no fd, a sparse memfd, a sealed one) map nothing; touching maps a bounded few windows', async () => {
    const plain = memfdCreate('guest-1t', TiB, CLIENT_FILE);
    const sealed = memfdCreate('guest-1t-sealed', TiB, CLIENT_FILE);
    addFileSeals(sealed, FileSeal.SHRINK | FileSeal.GROW);
    const start = serverMemory();
    try {
      assert.equal(await rawMap(1n * TiB, TiB), 0);
      assert.equal(await rawMap(2n * TiB, TiB, plain), 0);
      assert.equal(await rawMap(3n * TiB, TiB, sealed), 0);
      const mapped = serverMemory();
      assert.ok(mapped.size - start.size < GiB, `VmSize grew by ${mapped.size - start.size}`);
      assert.equal(serverMappingsOf('guest-1t'), 0);
      assert.equal(serverMappingsOf('guest-1t-sealed'), 0);

      // The last bytes of each, then windows all over the sealed one.
      await dmaWrite(3n * TiB - 8n, pattern(8, 1));
      assert.deepEqual(pread(plain, TiB - 8n, 8), pattern(8, 1));
      await dmaWrite(4n * TiB - 8n, pattern(8, 2));
      assert.deepEqual(pread(sealed, TiB - 8n, 8), pattern(8, 2));
      for (let i = 0n; i < BigInt(MAX_WINDOWS_PER_SESSION) + 8n; i++) {
        const at = 3n * TiB + i * 5n * GiB;
        await dmaWrite(at, pattern(4, Number(i)));
        assert.deepEqual(pread(sealed, at - 3n * TiB, 4), pattern(4, Number(i)));
      }
      assert.ok(serverMappingsOf('guest-1t-sealed') <= MAX_WINDOWS_PER_SESSION);
      assert.equal(serverMappingsOf('guest-1t'), 0, 'pread/pwrite maps nothing');
      const touched = serverMemory();
      assert.ok(
        touched.size - start.size < 4n * GiB,
        `VmSize grew by ${touched.size - start.size}`,
      );
      assert.ok(touched.rss - start.rss < 256n * MiB, `RSS grew by ${touched.rss - start.rss}`);
      // The earliest windows were dropped: touching them again still works.
      assert.deepEqual(await dmaRead(3n * TiB, 4), pattern(4, 0));
    } finally {
      await client.dmaUnmap({ all: true });
      closeFd(plain);
      closeFd(sealed);
    }
    assert.equal(serverMappingsOf('guest-1t-sealed'), 0);
  });
});
