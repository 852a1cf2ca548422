/**
 * Pipelined commands against the real server are processed in the order received
 * (vfio-user.rst "Command Concurrency"), however many of them one recvmsg returns: a large
 * REGION_WRITE, whose data the server receives in place (GPU RAM) or into a reused buffer,
 * must not land before the messages sent ahead of it are handled. Frames are hand-packed and
 * sent in one sendmsg, so the server frames them from one chunk.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Command, VfioUserClient } from '../src/vfio-user/index.ts';
import { FLAG_NO_REPLY, frame, pack, versionPayload } from './support/frames.ts';
import { GPU, type ServeProcess, startServe } from './support/serve-process.ts';

const GPU_RAM = 9;
const BAR1 = 1;
const OTHER_GPU = '0003:02:00.0';

let serve: ServeProcess;
let gpu: VfioUserClient;
before(async () => {
  serve = await startServe();
  gpu = await VfioUserClient.connect(serve.socket(GPU));
});
after(async () => {
  gpu.close();
  await serve.stop();
});

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function write(
  msgId: number,
  region: number,
  offset: bigint,
  data: Uint8Array,
  flags = 0,
): Uint8Array {
  return frame(msgId, Command.REGION_WRITE, concat(pack(offset, region, data.length), data), {
    flags,
  });
}

function read(msgId: number, region: number, offset: bigint, count: number): Uint8Array {
  return frame(msgId, Command.REGION_READ, pack(offset, region, count));
}

/** `p`, or a rejection naming `what` after 30 s (every wait is bounded). */
function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within 30 s`)), 30_000);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Awaits the replies to `ids` (registered before the frames go out: a reply nobody awaits yet is
 * dropped), sends `bytes` in one sendmsg, and returns each reply's data past its 16-byte head.
 */
async function exchange(
  client: VfioUserClient,
  bytes: Uint8Array,
  ids: [number, number][],
): Promise<Uint8Array[]> {
  const replies = ids.map(([id, command]) =>
    bounded(client.expectReply(id, command), `the reply to msg 0x${id.toString(16)}`),
  );
  client.sendRaw(bytes);
  const out: Uint8Array[] = [];
  for (const [i, p] of replies.entries()) {
    const m = await p;
    assert.equal(m.header.errno, 0, `msg 0x${ids[i]![0].toString(16)} failed`);
    const body = m.placed === undefined ? m.payload : concat(m.payload, m.placed);
    out.push(body.subarray(16));
  }
  return out;
}

const READ = Command.REGION_READ;
const WRITE = Command.REGION_WRITE;

const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

/** `actual` is `expected`, or a one-line failure naming the first byte that differs. */
function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const at = actual.findIndex((b, i) => b !== expected[i]);
  if (actual.length === expected.length && at < 0) return;
  assert.fail(
    `${what}: ${actual.length} bytes, expected ${expected.length}; first difference at ${at}: 0x${actual[at]?.toString(16)} instead of 0x${expected[at]?.toString(16)}`,
  );
}

describe('pipelined region access, all in one send', () => {
  it('posted 8-byte 0xaa then 16 KiB 0xbb writes, then a read: the read sees 0xbb (issue 7)', async () => {
    const [data] = await exchange(
      gpu,
      concat(
        write(0, GPU_RAM, 0x200000n, fill(8, 0xaa), FLAG_NO_REPLY),
        write(0, GPU_RAM, 0x200000n, fill(16384, 0xbb), FLAG_NO_REPLY),
        read(0x7101, GPU_RAM, 0x200000n, 8),
      ),
      [[0x7101, READ]],
    );
    sameBytes(data!, fill(8, 0xbb), 'the read after both writes');
  });

  it('a REGION_READ sent before a 16 KiB write returns the data from before the write', async () => {
    await gpu.regionWrite(GPU_RAM, 0x300000n, fill(16384, 0x11));
    const [before, , after] = await exchange(
      gpu,
      concat(
        read(0x7102, GPU_RAM, 0x300000n, 16384),
        write(0x7103, GPU_RAM, 0x300000n, fill(16384, 0x22)),
        read(0x7104, GPU_RAM, 0x300000n, 16384),
      ),
      [
        [0x7102, READ],
        [0x7103, WRITE],
        [0x7104, READ],
      ],
    );
    sameBytes(before!, fill(16384, 0x11), 'the read sent before the write');
    sameBytes(after!, fill(16384, 0x22), 'the read sent after the write');
  });

  it('two 16 KiB writes to a BAR (data received into one reused buffer) each keep their own data', async () => {
    const [first, second] = await exchange(
      gpu,
      concat(
        write(0, BAR1, 0x10000n, fill(16384, 0x33), FLAG_NO_REPLY),
        write(0, BAR1, 0x20000n, fill(16384, 0x44), FLAG_NO_REPLY),
        read(0x7105, BAR1, 0x10000n, 16384),
        read(0x7106, BAR1, 0x20000n, 16384),
      ),
      [
        [0x7105, READ],
        [0x7106, READ],
      ],
    );
    sameBytes(first!, fill(16384, 0x33), 'BAR1 at 0x10000');
    sameBytes(second!, fill(16384, 0x44), 'BAR1 at 0x20000');
  });

  it('a 16 KiB write sent right behind the VERSION is received once the device is open', async () => {
    const raw = await VfioUserClient.connect(serve.socket(OTHER_GPU), { negotiate: false });
    try {
      const [, data] = await exchange(
        raw,
        concat(
          frame(0x7107, Command.VERSION, versionPayload(0, 0, null)),
          write(0, GPU_RAM, 0x400000n, fill(16384, 0x55), FLAG_NO_REPLY),
          read(0x7108, GPU_RAM, 0x400000n, 16),
        ),
        [
          [0x7107, Command.VERSION],
          [0x7108, READ],
        ],
      );
      sameBytes(data!, fill(16, 0x55), 'the read after VERSION and the write');
    } finally {
      raw.close();
    }
  });
});
