/**
 * Migration v2 against a real server (vfio-user.rst "VFIO_USER_DEVICE_FEATURE",
 * "VFIO_USER_MIG_DATA_READ/WRITE"; errnos as drivers/vfio/vfio_main.c and libvfio-user
 * answer): the feature checks; every pair of states over the wire (the state after a refused
 * transition is the one before; leaving RESUMING with no stream fails and leaves ERROR, which
 * only DEVICE_RESET leaves); data commands in the wrong state and of a bad size; a stream
 * saved from one NVLink bridge loads into another, and a truncated, a corrupted or a foreign
 * (GPU) stream is refused; DMA logging reports the guest page the device wrote, and a stopped
 * device runs no DMA.
 */
import assert from 'node:assert/strict';
import { readSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { MigState, migPath } from '../src/migration/index.ts';
import { closeFd, memfdCreate } from '../src/native/index.ts';
import { DmaEngineCommand, DmaEngineReg } from '../src/vfio/dma-engine.ts';
import {
  Command,
  DeviceFeature,
  DeviceFeatureFlag,
  dmaLoggingReport,
  migrationFlags,
  migrationState,
  ReplyError,
  readMigrationData,
  setMigrationState,
  startDmaLogging,
  stopDmaLogging,
  type VfioUserClient,
  writeMigrationData,
} from '../src/vfio-user/index.ts';
import { FLAG_ERROR, frame, pack } from './support/frames.ts';
import {
  BRIDGE,
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
} from './support/serve-process.ts';

const EINVAL = 22;
const ENOTTY = 25;
const MiB = 1024 * 1024;
const OTHER_BRIDGE = '0000:00:00.1';
const OTHER_GPU = '0004:03:00.0';
const { GET, SET, PROBE } = DeviceFeatureFlag;

let serve: ServeProcess;
let gpu: VfioUserClient;
let msgId = 0x7000;
before(async () => {
  serve = await startServe();
  gpu = await connectWhenFree(serve, GPU);
});
after(async () => {
  gpu.close();
  await serve.stop();
});

async function rejectsWith(p: Promise<unknown>, errno: number, what?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof ReplyError && e.remoteErrno === errno, what);
}

/** A raw DEVICE_FEATURE; resolves with the errno (0: success) and the reply payload. */
async function feature(
  c: VfioUserClient,
  argsz: number,
  flags: number,
  data: Uint8Array = new Uint8Array(0),
) {
  const id = msgId++;
  c.sendRaw(frame(id, Command.DEVICE_FEATURE, Buffer.concat([pack(argsz, flags), data])));
  const m = await c.expectReply(id, Command.DEVICE_FEATURE);
  return { errno: m.header.flags & FLAG_ERROR ? m.header.errno : 0, payload: m.payload };
}

/** A raw MIG_DATA_READ; resolves with the errno (0: success). */
async function rawRead(c: VfioUserClient, argsz: number, size: number): Promise<number> {
  const id = msgId++;
  c.sendRaw(frame(id, Command.MIG_DATA_READ, pack(argsz, size)));
  const m = await c.expectReply(id, Command.MIG_DATA_READ);
  return m.header.flags & FLAG_ERROR ? m.header.errno : 0;
}

/** Reads the whole STOP_COPY stream of `c` (RUNNING → STOP_COPY → read to the end → STOP). */
async function saveStream(c: VfioUserClient): Promise<Uint8Array> {
  await setMigrationState(c, MigState.STOP_COPY);
  const parts: Uint8Array[] = [];
  for (;;) {
    const d = await readMigrationData(c, MiB);
    parts.push(d.slice());
    if (d.length < MiB) break;
  }
  await setMigrationState(c, MigState.STOP);
  await c.reset();
  return Buffer.concat(parts);
}

/** From RUNNING (after a reset) to `state`; ERROR by leaving RESUMING with no stream. */
async function enter(c: VfioUserClient, state: MigState): Promise<void> {
  await c.reset();
  if (state === MigState.ERROR) {
    await setMigrationState(c, MigState.RESUMING);
    await rejectsWith(setMigrationState(c, MigState.STOP), EINVAL);
    return;
  }
  await setMigrationState(c, state);
}

describe('DEVICE_FEATURE', () => {
  it('MIGRATION: GET says STOP_COPY | PRE_COPY; PROBE echoes; SET, GET|SET, unknown bits are EINVAL', async () => {
    assert.equal(await migrationFlags(gpu), 1 | 4);
    const probe = await feature(gpu, 8, PROBE | GET | DeviceFeature.MIGRATION);
    assert.deepEqual([probe.errno, [...probe.payload]], [0, [...pack(8, PROBE | GET | 1)]]);
    assert.equal((await feature(gpu, 16, SET | 1, new Uint8Array(8))).errno, EINVAL);
    assert.equal((await feature(gpu, 16, PROBE | SET | 1)).errno, EINVAL, 'PROBE of SET');
    assert.equal((await feature(gpu, 16, GET | SET | 2, new Uint8Array(8))).errno, EINVAL);
    assert.equal((await feature(gpu, 16, (1 << 19) | GET | 1)).errno, EINVAL);
    assert.equal((await feature(gpu, 8, GET | 1)).errno, EINVAL, 'argsz with no room for flags');
    assert.equal((await feature(gpu, 4, GET | 1)).errno, EINVAL, 'argsz under 8');
    assert.equal((await feature(gpu, 16, 1)).errno, EINVAL, 'neither GET nor SET');
  });

  it('an unknown feature is ENOTTY; MIG_DEVICE_STATE SET with a short payload is EINVAL', async () => {
    assert.equal((await feature(gpu, 16, GET | 3)).errno, ENOTTY);
    assert.equal((await feature(gpu, 16, GET | 0x7fff)).errno, ENOTTY);
    assert.equal((await feature(gpu, 16, SET | 2, new Uint8Array(2))).errno, EINVAL);
    assert.equal(await migrationState(gpu), MigState.RUNNING);
  });
});

describe('MIG_DEVICE_STATE over the wire', () => {
  const FROM = [
    MigState.RUNNING,
    MigState.STOP,
    MigState.STOP_COPY,
    MigState.PRE_COPY,
    MigState.RESUMING,
    MigState.ERROR,
  ];
  const TO = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  for (const from of FROM) {
    it(`from ${MigState[from]} to every state`, async () => {
      for (const to of TO) {
        await enter(gpu, from);
        assert.equal(await migrationState(gpu), from);
        const allowed = migPath(from, to, 1 | 4) !== undefined;
        // Leaving RESUMING for anything passes STOP, which checks a stream that never came.
        const loads = from === MigState.RESUMING && to !== MigState.RESUMING && allowed;
        const what = `${MigState[from]} → ${MigState[to] ?? to}`;
        if (allowed && !loads) {
          await setMigrationState(gpu, to);
          assert.equal(await migrationState(gpu), to, what);
        } else {
          await rejectsWith(setMigrationState(gpu, to), EINVAL, what);
          assert.equal(await migrationState(gpu), loads ? MigState.ERROR : from, what);
        }
      }
      await gpu.reset();
      assert.equal(await migrationState(gpu), MigState.RUNNING, 'DEVICE_RESET leaves every state');
    });
  }
});

describe('MIG_DATA_READ and MIG_DATA_WRITE', () => {
  it('read only in PRE_COPY and STOP_COPY, write only in RESUMING; bad sizes are EINVAL', async () => {
    for (const s of [MigState.RUNNING, MigState.STOP, MigState.RESUMING, MigState.ERROR]) {
      await enter(gpu, s);
      await rejectsWith(readMigrationData(gpu, 4096), EINVAL, `read in ${MigState[s]}`);
    }
    for (const s of [MigState.RUNNING, MigState.STOP, MigState.STOP_COPY, MigState.PRE_COPY]) {
      await enter(gpu, s);
      await rejectsWith(
        writeMigrationData(gpu, new Uint8Array(16)),
        EINVAL,
        `write in ${MigState[s]}`,
      );
    }
    await enter(gpu, MigState.PRE_COPY);
    assert.equal(await rawRead(gpu, 8, MiB + 1), EINVAL, 'over max_data_xfer_size');
    assert.equal(await rawRead(gpu, 4, 16), EINVAL, 'argsz under 8');
    const first = await readMigrationData(gpu, 64);
    assert.equal(first.length, 64);
    assert.deepEqual([...first.subarray(12, 20)], [...Buffer.from('VFNV2MIG')], 'HEADER first');
    await enter(gpu, MigState.RESUMING);
    const id = msgId++;
    gpu.sendRaw(frame(id, Command.MIG_DATA_WRITE, Buffer.concat([pack(8, 4), new Uint8Array(2)])));
    const m = await gpu.expectReply(id, Command.MIG_DATA_WRITE);
    assert.equal(m.header.errno, EINVAL, 'size 4 with 2 bytes');
    await gpu.reset();
  });
});

describe('a saved stream', () => {
  let saved: Uint8Array;
  before(async () => {
    const from = await connectWhenFree(serve, BRIDGE);
    try {
      await from.regionWrite(9, 8n, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
      await from.regionWrite(7, 4n, new Uint8Array([6, 0]));
      saved = await saveStream(from);
    } finally {
      from.close();
    }
  });

  async function load(into: string, stream: Uint8Array, pieces = 3): Promise<VfioUserClient> {
    const c = await connectWhenFree(serve, into);
    await c.reset();
    await setMigrationState(c, MigState.RESUMING);
    const step = Math.ceil(stream.length / pieces);
    for (let at = 0; at < stream.length; at += step)
      await writeMigrationData(c, stream.subarray(at, at + step));
    return c;
  }

  it('loads into another NVLink bridge: ATSD page and config space as saved', async () => {
    const c = await load(OTHER_BRIDGE, saved);
    try {
      await setMigrationState(c, MigState.RUNNING);
      assert.deepEqual([...(await c.regionRead(9, 8n, 8))], [1, 2, 3, 4, 5, 6, 7, 8]);
      assert.deepEqual([...(await c.regionRead(7, 4n, 2))], [6, 0]);
    } finally {
      c.close();
    }
  });

  it('truncated: RESUMING → STOP is EINVAL and leaves ERROR; DEVICE_RESET recovers', async () => {
    for (const cut of [1, 12, saved.length - 1]) {
      const c = await load(OTHER_BRIDGE, saved.subarray(0, cut));
      try {
        await rejectsWith(setMigrationState(c, MigState.STOP), EINVAL, `cut at ${cut}`);
        assert.equal(await migrationState(c), MigState.ERROR);
        await rejectsWith(setMigrationState(c, MigState.RUNNING), EINVAL, 'ERROR stays');
        await c.reset();
        assert.equal(await migrationState(c), MigState.RUNNING);
      } finally {
        c.close();
      }
    }
  });

  it('corrupted: the write of the damaged record is EINVAL, later writes too, and STOP', async () => {
    const bad = saved.slice();
    const at = Math.floor(bad.length / 2);
    bad[at] = (bad[at] as number) ^ 0x40;
    const c = await connectWhenFree(serve, OTHER_BRIDGE);
    try {
      await c.reset();
      await setMigrationState(c, MigState.RESUMING);
      await rejectsWith(writeMigrationData(c, bad), EINVAL);
      await rejectsWith(writeMigrationData(c, new Uint8Array(1)), EINVAL, 'poisoned');
      await rejectsWith(setMigrationState(c, MigState.STOP), EINVAL);
      assert.equal(await migrationState(c), MigState.ERROR);
      await c.reset();
    } finally {
      c.close();
    }
  });

  it("a bridge's stream does not load into a GPU (EINVAL)", async () => {
    await gpu.reset();
    await setMigrationState(gpu, MigState.RESUMING);
    await rejectsWith(writeMigrationData(gpu, saved), EINVAL);
    await rejectsWith(setMigrationState(gpu, MigState.STOP), EINVAL);
    await gpu.reset();
  });
});

describe('a GPU stream', () => {
  it("zeros the destination's memory it did not write once loaded; what it wrote is the source's", async () => {
    const PAGE = 0x10000n;
    const sent = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    await gpu.reset();
    await gpu.regionWrite(9, 2n * PAGE + 5n, sent);
    const stream = await saveStream(gpu);
    const to = await connectWhenFree(serve, OTHER_GPU);
    try {
      await to.reset();
      // Bytes of the destination's own: in a page the stream rewrites, and in one it lacks.
      await to.regionWrite(9, 2n * PAGE, new Uint8Array(16).fill(0xee));
      await to.regionWrite(9, 7n * PAGE + 3n, new Uint8Array([0xdd, 0xdd]));
      await setMigrationState(to, MigState.RESUMING);
      const step = Math.ceil(stream.length / 3);
      for (let at = 0; at < stream.length; at += step)
        await writeMigrationData(to, stream.subarray(at, at + step));
      await setMigrationState(to, MigState.RUNNING);
      const page2 = [0, 0, 0, 0, 0, ...sent, 0, 0, 0];
      assert.deepEqual([...(await to.regionRead(9, 2n * PAGE, 16))], page2, "the source's page");
      assert.deepEqual([...(await to.regionRead(9, 7n * PAGE, 8))], [0, 0, 0, 0, 0, 0, 0, 0]);
    } finally {
      await to.reset();
      to.close();
    }
  });
});

describe('DMA logging', () => {
  const ADDRESS = 0x4000_0000n;
  const SIZE = 4n * BigInt(MiB);
  const PAGE = 4096n;

  async function engineWrite(c: VfioUserClient, page: bigint, address: bigint, data: Uint8Array) {
    await c.regionWrite(0, page + BigInt(DmaEngineReg.DATA), data);
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, address, true);
    v.setUint32(8, data.length, true);
    v.setUint32(12, DmaEngineCommand.WRITE, true);
    await c.regionWrite(0, page + BigInt(DmaEngineReg.ADDRESS), b);
  }

  it('reports the page the device wrote by DMA, and a stopped device runs no DMA', async () => {
    await gpu.reset();
    const page = (await gpu.getRegionInfo(0)).info.size - 0x1000n;
    const fd = memfdCreate('guest-ram', SIZE, { seals: 0 });
    try {
      const id = msgId++;
      gpu.sendRaw(frame(id, Command.DMA_MAP, pack(32, 3, 0n, ADDRESS, SIZE)), [fd]);
      assert.equal((await gpu.expectReply(id, Command.DMA_MAP)).header.errno, 0);
      await rejectsWith(dmaLoggingReport(gpu, ADDRESS, SIZE, PAGE), EINVAL, 'before START');
      await startDmaLogging(gpu, PAGE, [{ iova: ADDRESS, length: SIZE }]);
      await rejectsWith(startDmaLogging(gpu, PAGE, []), EINVAL, 'START twice');
      await engineWrite(gpu, page, ADDRESS + 0x5000n + 100n, new Uint8Array([9, 9, 9]));
      const bitmap = await dmaLoggingReport(gpu, ADDRESS, SIZE, PAGE);
      assert.equal(bitmap.length, Number(SIZE / PAGE / 8n));
      const set = [...bitmap.keys()].flatMap((i) =>
        [0, 1, 2, 3, 4, 5, 6, 7].filter((b) => (bitmap[i]! >> b) & 1).map((b) => i * 8 + b),
      );
      assert.deepEqual(set, [5], 'page 5 of the range');
      const back = new Uint8Array(3);
      readSync(fd, back, 0, 3, 0x5000 + 100);
      assert.deepEqual([...back], [9, 9, 9], 'the write reached guest memory');

      await setMigrationState(gpu, MigState.STOP);
      await engineWrite(gpu, page, ADDRESS + 0x9000n, new Uint8Array([7]));
      readSync(fd, back, 0, 1, 0x9000);
      assert.equal(back[0], 0, 'no DMA while stopped');
      const after = await dmaLoggingReport(gpu, ADDRESS, SIZE, PAGE);
      assert.ok(
        after.every((b) => b === 0),
        'nothing written, nothing reported',
      );
      await stopDmaLogging(gpu);
      await rejectsWith(dmaLoggingReport(gpu, ADDRESS, SIZE, PAGE), EINVAL, 'after STOP');
    } finally {
      await gpu.reset();
      closeFd(fd);
    }
  });
});
