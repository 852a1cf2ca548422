/**
 * What one connection may cost the real server (issue 7 item 4), against `serve` in a second
 * process over raw sockets: replies a client never reads stop the server reading its requests
 * (back-pressure) instead of piling up in memory, while other devices are served and every
 * reply still arrives, in order, once the client reads; a client that stalls inside a
 * message, or never sends VERSION, is closed after the (tiny, for the test) timeouts, with
 * one log line. Bounds here are on resources (RSS), never on speed.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  closeFd,
  connectUnix,
  FdEvent,
  FdWatcher,
  isSystemCallError,
  receiveInto,
  sendMessage,
} from '../src/native/index.ts';
import { Command, VfioUserClient } from '../src/vfio-user/index.ts';
import { frame, pack, QEMU_VERSION_JSON, versionPayload } from './support/frames.ts';
import {
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';

const GPU_RAM = 9;
const OTHER_GPU = '0003:02:00.0';
const THIRD_GPU = '0004:03:00.0';
const FOURTH_GPU = '0005:01:00.0';
const MiB = 1 << 20;
const TIMEOUT_S = 0.5;

let serve: ServeProcess;
before(async () => {
  serve = await startServe([
    '--idle-timeout',
    String(TIMEOUT_S),
    '--stall-timeout',
    String(TIMEOUT_S),
  ]);
});
after(async () => {
  await serve.stop();
});

/** VmRSS of the server in bytes (/proc/PID/status). */
function serverRss(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${serve.pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS in /proc/PID/status');
  return Number(m[1]) * 1024;
}

/** Sends all of `bytes` on a non-blocking fd, waiting (bounded) while the socket is full. */
async function sendAll(fd: number, bytes: Uint8Array): Promise<void> {
  let at = 0;
  await waitFor('the socket to take the request', () => {
    at += sendMessage(fd, bytes.subarray(at));
    return at === bytes.length;
  });
}

/**
 * Fills `buf` from a non-blocking fd as it becomes readable (bounded wait); 'eof' when the
 * peer closed (or reset the connection) first.
 */
function receiveExactly(fd: number, buf: Uint8Array): Promise<'ok' | 'eof'> {
  let at = 0;
  return new Promise((resolve, reject) => {
    const done = (result: 'ok' | 'eof' | Error) => {
      watcher.close();
      clearTimeout(timer);
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(() => done(new Error('no bytes from the server within 30 s')), 30_000);
    const watcher = new FdWatcher(fd, FdEvent.READABLE, () => {
      try {
        for (;;) {
          const r = receiveInto(fd, buf.subarray(at), 0);
          if (r === null) return;
          if (r.bytes === 0) return done('eof');
          at += r.bytes;
          if (at === buf.length) return done('ok');
        }
      } catch (e) {
        done(isSystemCallError(e) && e.code === 'ECONNRESET' ? 'eof' : (e as Error));
      }
    });
  });
}

/** A raw connection to `address` that has negotiated VERSION (reply read and checked). */
async function rawSession(address: string): Promise<number> {
  const fd = connectUnix(serve.socket(address));
  const version = frame(1, Command.VERSION, versionPayload(0, 0, QEMU_VERSION_JSON));
  await sendAll(fd, version);
  const head = new Uint8Array(16);
  assert.equal(await receiveExactly(fd, head), 'ok');
  const v = new DataView(head.buffer);
  assert.equal(v.getUint32(12, true), 0, 'VERSION accepted');
  assert.equal(await receiveExactly(fd, new Uint8Array(v.getUint32(4, true) - 16)), 'ok');
  return fd;
}

/** Waits (bounded) until the server closes `fd`; what was read before does not matter. */
async function closedByServer(fd: number): Promise<void> {
  const sink = new Uint8Array(64 * 1024);
  for (;;) if ((await receiveExactly(fd, sink)) === 'eof') return;
}

/** The server's log lines containing `text`, once there is one (bounded wait). */
async function logLines(text: string): Promise<string[]> {
  const find = () =>
    serve
      .stderr()
      .split('\n')
      .filter((l) => l.includes(text));
  await waitFor(`a log line with '${text}'`, () => find().length > 0);
  return find();
}

describe('back-pressure: replies the client does not read', () => {
  it('1,024 × 1 MiB REGION_READ unread: the server stays small, serves others, then sends on', async (t) => {
    const fd = await rawSession(GPU);
    try {
      await unreadReplies(t, fd);
    } finally {
      closeFd(fd);
    }
    // Leaving with ~960 requests unanswered releases the device at once.
    const next = await connectWhenFree(serve, GPU);
    assert.equal((await next.regionRead(GPU_RAM, 0n, 4)).length, 4);
    next.close();
  });
});

async function unreadReplies(t: { diagnostic(message: string): void }, fd: number): Promise<void> {
  const base = serverRss();
  const count = 1024;
  const requests = new Uint8Array(count * 32);
  for (let i = 0; i < count; i++) {
    requests.set(frame(0x100 + i, Command.REGION_READ, pack(0n, GPU_RAM, MiB)), i * 32);
  }
  await sendAll(fd, requests);
  // Another device of the same server answers while this client reads nothing.
  const other = await VfioUserClient.connect(serve.socket(OTHER_GPU));
  const probe = await other.regionRead(GPU_RAM, 0n, 8);
  assert.equal(probe.length, 8);
  other.close();
  let peak = 0;
  for (let i = 0; i < 10; i++) {
    peak = Math.max(peak, serverRss());
    await new Promise((r) => setTimeout(r, 50));
  }
  const growth = peak - base;
  assert.ok(growth < 200e6, `server RSS grew by ${(growth / 1e6).toFixed(0)} MB`);
  t.diagnostic(
    `server RSS growth with 1,024 unread 1 MiB replies: ${(growth / 1e6).toFixed(1)} MB`,
  );
  // Replies arrive whole and in order once the client reads, well past what the server held
  // when it stopped reading: it reads again as its queue drains.
  const reply = new Uint8Array(32 + MiB);
  for (let i = 0; i < 64; i++) {
    assert.equal(await receiveExactly(fd, reply), 'ok', `reply ${i}`);
    const v = new DataView(reply.buffer);
    assert.equal(v.getUint16(0, true), 0x100 + i);
    assert.equal(v.getUint32(4, true), 32 + MiB);
    assert.equal(v.getUint32(12, true), 0);
  }
}

describe('timeouts', () => {
  it(`a client silent inside a 1 MiB message is closed after --stall-timeout, with one log line`, async () => {
    const fd = await rawSession(FOURTH_GPU);
    const partial = new Uint8Array(16 + 100);
    partial.set(frame(7, Command.REGION_WRITE, new Uint8Array(0), { size: 16 + 16 + MiB }));
    partial.set(pack(0n, GPU_RAM, MiB), 16);
    await sendAll(fd, partial);
    await closedByServer(fd);
    closeFd(fd);
    const lines = await logLines(`sent nothing for ${TIMEOUT_S} s inside a message`);
    assert.equal(lines.length, 1, serve.stderr());
    assert.match(lines[0]!, /0005:01:00\.0: closing the connection of pid \d+/);
    // The device is free again.
    const again = await connectWhenFree(serve, FOURTH_GPU);
    assert.equal((await again.regionRead(GPU_RAM, 0n, 4)).length, 4);
    again.close();
  });

  it('a connection that never sends VERSION is closed after --idle-timeout, with one log line', async () => {
    const fd = connectUnix(serve.socket(THIRD_GPU));
    await closedByServer(fd);
    closeFd(fd);
    const lines = await logLines(`no VERSION within ${TIMEOUT_S} s`);
    assert.equal(lines.length, 1, serve.stderr());
    assert.match(lines[0]!, /0004:03:00\.0: closing the connection of pid \d+/);
  });

  it('a negotiated session idle for longer than both timeouts stays open', async () => {
    const client = await connectWhenFree(serve, THIRD_GPU);
    await new Promise((r) => setTimeout(r, 2 * TIMEOUT_S * 1000));
    assert.equal((await client.regionRead(GPU_RAM, 0n, 4)).length, 4);
    client.close();
  });
});
