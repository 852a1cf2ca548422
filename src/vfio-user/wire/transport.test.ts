/**
 * The socket transport on real socket pairs: multi-megabyte messages through partial writes and
 * direct receives, fds queued behind a full socket buffer (sent as duplicates), fds over the
 * limit (MSG_CTRUNC) and short sizes closing only that connection, EOF, and no fd left behind.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fstatSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { packHeader } from '../../../test/support/frames.ts';
import { openFds } from '../../../test/support/native/helpers.ts';
import {
  closeFd,
  eventfdCreate,
  isSystemCallError,
  memfdCreate,
  sendBuffer,
  sendMessage,
  socketPair,
} from '../../native/index.ts';
import { Command } from './constants.ts';
import type { FramedMessage } from './framer.ts';
import { commandHeader, replyHeader } from './header.ts';
import { type CloseReason, Connection, type ConnectionOptions } from './transport.ts';
import { FramingError } from './wire-errors.ts';

const LIMITS = { maxMessageSize: 16 << 20, maxFds: 4 };

/** The next call of the wake function given to `set`, or an error naming `what` after 60 s. */
function woken(set: (wake: () => void) => void, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out after 60 s waiting for ${what}`)),
      60_000,
    );
    set(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function endpoint(fd: number) {
  const messages: FramedMessage[] = [];
  let wake: () => void = () => {};
  let closed: CloseReason | null = null;
  const conn = new Connection(
    fd,
    {
      onMessage: (m) => {
        messages.push(m);
        wake();
      },
      onClose: (r) => {
        closed = r;
        wake();
      },
    },
    LIMITS,
  );
  return {
    conn,
    messages,
    closed: () => closed,
    async waitFor(pred: () => boolean): Promise<void> {
      while (!pred()) await woken((w) => (wake = w), `fd ${fd} to receive or close`);
    },
  };
}

/**
 * `length` bytes, byte i = i × step mod 256 (a plain loop: Uint8Array.from over an array-like
 * takes ~5 times as long at MiBs).
 */
function ramp(length: number, step: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * step) & 0xff;
  return bytes;
}

test('12 MiB messages both ways survive partial writes and direct receives', async () => {
  const [a, b] = socketPair();
  const left = endpoint(a);
  const right = endpoint(b);
  const big = ramp(12 << 20, 31);
  for (let i = 0; i < 3; i++) left.conn.send(commandHeader(i, Command.REGION_WRITE, 0), [big]);
  right.conn.send(commandHeader(9, Command.DMA_WRITE, 0), [big.subarray(5)]);
  await right.waitFor(() => right.messages.length === 3);
  await left.waitFor(() => left.messages.length === 1);
  for (const [i, m] of right.messages.entries()) {
    assert.equal(m.header.msgId, i);
    assert.equal(m.header.size, 16 + big.length);
    assert.ok(Buffer.from(m.payload).equals(Buffer.from(big)));
  }
  assert.ok(Buffer.from(left.messages[0]!.payload).equals(Buffer.from(big.subarray(5))));
  left.conn.close();
  right.conn.close();
});

test('fds queued behind a full socket buffer arrive with their own message, as duplicates', async () => {
  const [a, b] = socketPair();
  const left = endpoint(a);
  const right = endpoint(b);
  left.conn.send(commandHeader(1, Command.REGION_WRITE, 0), [new Uint8Array(8 << 20)]);
  const memfd = memfdCreate('queued', 4096n);
  const efd = eventfdCreate();
  left.conn.send(commandHeader(2, Command.DMA_MAP, 0), [new Uint8Array(32)], [memfd, efd]);
  closeFd(memfd); // the caller may close at once: the queue holds duplicates
  closeFd(efd);
  await right.waitFor(() => right.messages.length === 2);
  assert.deepEqual(right.messages[0]!.fds, []);
  const got = right.messages[1]!.fds;
  assert.equal(got.length, 2);
  assert.equal(fstatSync(got[0]!).size, 4096);
  for (const fd of got) closeFd(fd);
  left.conn.close();
  right.conn.close();
});

test('more fds than allowed close that connection (MSG_CTRUNC), the other keeps working', async () => {
  const [a, b] = socketPair();
  const [c, d] = socketPair();
  const bad = endpoint(b);
  const good = endpoint(d);
  const before = openFds().size;
  const fds = Array.from({ length: 6 }, () => eventfdCreate());
  sendMessage(a, packHeader(1, Command.DEVICE_SET_IRQS, 16, 0), fds);
  for (const fd of fds) closeFd(fd);
  sendMessage(c, packHeader(2, Command.DEVICE_RESET, 16, 0));
  await bad.waitFor(() => bad.closed() !== null);
  await good.waitFor(() => good.messages.length === 1);
  const reason = bad.closed();
  assert.ok(
    reason?.kind === 'error' &&
      reason.error instanceof FramingError &&
      reason.error.kind === 'fds-truncated',
  );
  assert.equal(good.closed(), null);
  closeFd(a);
  assert.equal(openFds().size, before - 2); // a and b
  good.conn.close();
  closeFd(c);
});

test('a size under 16 closes the connection with a FramingError; EOF at a boundary is clean', async () => {
  const [a, b] = socketPair();
  const bad = endpoint(b);
  sendMessage(a, packHeader(1, Command.VERSION, 8, 0));
  await bad.waitFor(() => bad.closed() !== null);
  const reason = bad.closed();
  assert.ok(reason?.kind === 'error' && reason.error instanceof FramingError);
  assert.equal(reason.error.kind, 'message-too-short');
  closeFd(a);

  const [c, d] = socketPair();
  const clean = endpoint(d);
  sendMessage(c, packHeader(1, Command.DEVICE_RESET, 16, 0));
  closeFd(c);
  await clean.waitFor(() => clean.closed() !== null);
  assert.equal(clean.messages.length, 1);
  assert.deepEqual(clean.closed(), { kind: 'eof' });
});

test('EOF inside a message is an error, and the fds of the partial message are closed', async () => {
  const [a, b] = socketPair();
  const ep = endpoint(b);
  const before = openFds().size;
  const memfd = memfdCreate('partial', 4096n);
  sendMessage(a, packHeader(1, Command.DMA_MAP, 48, 0), [memfd]);
  closeFd(memfd);
  closeFd(a);
  await ep.waitFor(() => ep.closed() !== null);
  assert.equal(ep.closed()?.kind, 'error');
  assert.equal(openFds().size, before - 2);
});

test('lent parts queued after a partial send are copied: changing them after send changes nothing', async () => {
  const [a, b] = socketPair();
  const left = endpoint(a);
  const right = endpoint(b);
  const live = ramp(4 << 20, 7);
  const expected = live.slice();
  left.conn.send(commandHeader(1, Command.REGION_READ, 0), [live], [], true);
  left.conn.send(commandHeader(2, Command.REGION_READ, 0), [live.subarray(100)], [], true);
  live.fill(0); // what a later region write would do to the memory the reply viewed
  await right.waitFor(() => right.messages.length === 2);
  assert.ok(Buffer.from(right.messages[0]!.payload).equals(Buffer.from(expected)));
  assert.ok(Buffer.from(right.messages[1]!.payload).equals(Buffer.from(expected.subarray(100))));
  left.conn.close();
  right.conn.close();
});

test('small messages queued behind a full socket keep their bytes (the send buffer is reused)', async () => {
  const [a, b] = socketPair();
  const left = endpoint(a);
  const right = endpoint(b);
  left.conn.send(commandHeader(0, Command.REGION_WRITE, 0), [new Uint8Array(6 << 20)]);
  for (let i = 1; i <= 200; i++) {
    left.conn.send(commandHeader(i, Command.REGION_READ, 0), [new Uint8Array(16).fill(i)]);
  }
  await right.waitFor(() => right.messages.length === 201);
  for (let i = 1; i <= 200; i++) {
    const m = right.messages[i]!;
    assert.equal(m.header.msgId, i);
    assert.deepEqual([...m.payload], new Array(16).fill(i));
  }
  left.conn.close();
  right.conn.close();
});

test('a queue of large messages behind a full socket drains completely and in order', async () => {
  const [a, b] = socketPair();
  const left = endpoint(a);
  const right = endpoint(b);
  const parts = Array.from({ length: 5 }, (_, i) => new Uint8Array((1 << 20) + i).fill(i + 1));
  for (const [i, p] of parts.entries()) {
    left.conn.send(commandHeader(i, Command.REGION_WRITE, 0), [p.subarray(0, 16), p.subarray(16)]);
  }
  await right.waitFor(() => right.messages.length === 5);
  for (const [i, m] of right.messages.entries()) {
    assert.equal(m.header.msgId, i);
    assert.ok(Buffer.from(m.payload).equals(Buffer.from(parts[i]!)));
  }
  left.conn.close();
  right.conn.close();
});

/** An endpoint whose handler answers every message with a `replyBytes` payload. */
function replier(fd: number, replyBytes: number, options: ConnectionOptions) {
  const handled: number[] = [];
  const reply = new Uint8Array(replyBytes);
  let closed: CloseReason | null = null;
  const conn: Connection = new Connection(
    fd,
    {
      onMessage: (m) => {
        handled.push(m.header.msgId);
        conn.send(replyHeader(m.header, 0), [reply]);
      },
      onClose: (r) => {
        closed = r;
      },
    },
    LIMITS,
    options,
  );
  return { conn, handled, closed: () => closed };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

test('back-pressure: replies the peer does not read stop reading; all arrive in order once it does', async () => {
  const [a, b] = socketPair();
  const server = replier(a, 512 * 1024, { maxQueuedBytes: 1 << 20 });
  const requests = Buffer.concat(
    Array.from({ length: 100 }, (_, i) => packHeader(i, Command.REGION_READ, 16, 0)),
  );
  assert.equal(sendMessage(b, requests), requests.length);
  // The peer reads nothing: the server stops once its queue passes 1 MiB (plus what the
  // socket buffer took), leaving the other requests unread.
  let last = -1;
  for (let i = 0; i < 50 && server.handled.length !== last; i++) {
    last = server.handled.length;
    await tick();
  }
  // The socket takes what its send buffer holds (the Connection asks for 4 MiB; what it got:)
  const socketTakes = sendBuffer(a, 4 * 1024 * 1024);
  const most = Math.ceil((socketTakes + (1 << 20)) / (512 * 1024)) + 2;
  assert.ok(
    server.handled.length <= most,
    `handled ${server.handled.length} of 100 (${most} at most)`,
  );
  assert.ok(server.conn.queuedBytes <= (1 << 20) + 512 * 1024 + 16);
  const client = endpoint(b);
  await client.waitFor(() => client.messages.length === 100);
  assert.deepEqual(
    client.messages.map((m) => m.header.msgId),
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.deepEqual(
    server.handled,
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.equal(server.conn.queuedBytes, 0);
  server.conn.close();
  client.conn.close();
});

test('pause: no message is handed out until resume, then the rest of the chunk in order', async () => {
  const [a, b] = socketPair();
  const got: number[] = [];
  let wake: () => void = () => {};
  const conn: Connection = new Connection(
    a,
    {
      onMessage: (m) => {
        got.push(m.header.msgId);
        if (m.header.msgId === 1) conn.pause();
        wake();
      },
      onClose: () => {},
    },
    LIMITS,
  );
  const bytes = Buffer.concat([1, 2, 3].map((i) => packHeader(i, Command.DEVICE_RESET, 16, 0)));
  sendMessage(b, bytes);
  while (got.length === 0) await woken((w) => (wake = w), 'the first message');
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(got, [1]);
  conn.resume();
  assert.deepEqual(got, [1, 2, 3], 'the rest of the chunk at once, in order');
  sendMessage(b, packHeader(4, Command.DEVICE_RESET, 16, 0));
  while (got.length < 4) await woken((w) => (wake = w), 'message 4');
  assert.deepEqual(got, [1, 2, 3, 4]);
  conn.close();
  closeFd(b);
});

test('MSG_CTRUNC: whole messages of the same read are handled first, across a pause, then it closes', async () => {
  const [a, b] = socketPair();
  const got: number[] = [];
  let closed: CloseReason | null = null;
  let wake: () => void = () => {};
  const conn: Connection = new Connection(
    a,
    {
      onMessage: (m) => {
        got.push(m.header.msgId);
        for (const fd of m.fds) closeFd(fd);
        if (m.header.msgId === 1) conn.pause();
        wake();
      },
      onClose: (r) => {
        closed = r;
        wake();
      },
    },
    LIMITS,
  );
  const before = openFds().size;
  // One sendmsg: three whole messages, then the one the 6 fds (over LIMITS.maxFds) came with.
  const bytes = Buffer.concat([1, 2, 3, 4].map((i) => packHeader(i, Command.DEVICE_RESET, 16, 0)));
  const fds = Array.from({ length: 6 }, () => eventfdCreate());
  sendMessage(b, bytes, fds);
  for (const fd of fds) closeFd(fd);
  while (got.length === 0 && closed === null)
    await woken((w) => (wake = w), 'the first message or the close');
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(got, [1], 'paused after the first');
  assert.equal(closed, null, 'not closed while whole messages wait');
  conn.resume();
  assert.deepEqual(got, [1, 2, 3], 'the whole ones, not the one the fds came with');
  const reason = closed as CloseReason | null;
  assert.ok(reason?.kind === 'error' && reason.error instanceof FramingError);
  assert.equal(reason.error.kind, 'fds-truncated');
  assert.equal(openFds().size, before - 1, 'a is closed, no received fd is left');
  closeFd(b);
});

test('stall timeout: a peer silent inside a message is closed; one silent between messages is not', async () => {
  const [a, b] = socketPair();
  const [c, d] = socketPair();
  const stalled = replier(a, 0, { stallTimeoutMs: 30 });
  const idle = replier(c, 0, { stallTimeoutMs: 30 });
  sendMessage(b, packHeader(1, Command.REGION_WRITE, 16 + 1000, 0).subarray(0, 16));
  sendMessage(b, new Uint8Array(10));
  sendMessage(d, packHeader(1, Command.DEVICE_RESET, 16, 0));
  for (let i = 0; i < 1500 && stalled.closed() === null; i++) await tick();
  const reason = stalled.closed();
  assert.ok(reason?.kind === 'error', 'closed with an error');
  assert.match(reason.error.message, /sent nothing for 0\.03 s inside a message \(26 bytes/);
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(idle.closed(), null);
  assert.deepEqual(idle.handled, [1]);
  idle.conn.close();
  closeFd(b);
  closeFd(d);
});

test('out of fds, a message with fds that must wait is refused whole: no duplicate leaks', async () => {
  const [a, b] = socketPair();
  const left = endpoint(a);
  const right = endpoint(b);
  // A full socket: the next message waits in the queue, which holds duplicates of its fds.
  left.conn.send(commandHeader(1, Command.REGION_WRITE, 0), [new Uint8Array(8 << 20)]);
  const mine = [eventfdCreate(), eventfdCreate()];
  const limit = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))![1];
  const spare = Array.from({ length: 64 }, () => eventfdCreate()); // room to restore the limit
  const open = openFds().size;
  // RLIMIT_NOFILE bounds fd numbers: the lowest free one is the only one left, so the first
  // duplicate is made and the second fails with EMFILE.
  const lowest = eventfdCreate();
  closeFd(lowest);
  execFileSync('prlimit', [`--pid=${process.pid}`, `--nofile=${lowest + 1}:`]);
  try {
    assert.throws(
      () => left.conn.send(commandHeader(2, Command.DMA_MAP, 0), [new Uint8Array(32)], mine),
      (e: unknown) => isSystemCallError(e) && e.code === 'EMFILE',
    );
    assert.equal(openFds().size, open, 'the duplicate made before the failure is closed');
  } finally {
    for (const fd of spare) closeFd(fd);
    execFileSync('prlimit', [`--pid=${process.pid}`, `--nofile=${limit}:`]);
  }
  left.conn.send(commandHeader(3, Command.DMA_MAP, 0), [new Uint8Array(32)], mine);
  await right.waitFor(() => right.messages.length === 2);
  assert.deepEqual(
    right.messages.map((m) => [m.header.msgId, m.fds.length]),
    [
      [1, 0],
      [3, 2],
    ],
  );
  for (const fd of [...mine, ...right.messages[1]!.fds]) closeFd(fd);
  left.conn.close();
  right.conn.close();
});
