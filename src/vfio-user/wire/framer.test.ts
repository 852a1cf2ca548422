/**
 * The framer against hand-packed messages: every fixture split at every offset, two messages
 * split at every offset, fds attached to the message holding the chunk's last byte, and a
 * table of malformed headers with their FramingError kind and errno.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { frame, packHeader } from '../../../test/support/frames.ts';
import { REPLY_FIXTURES, REQUEST_FIXTURES } from '../../../test/support/wire-fixtures.ts';
import { Command } from './constants.ts';
import { type FramedMessage, MessageFramer, messageSizeLimit } from './framer.ts';
import { FramingError } from './wire-errors.ts';

const LIMITS = { maxMessageSize: messageSizeLimit(1 << 20), maxFds: 4 };

const FIXTURES = [
  ...REQUEST_FIXTURES.map((f, i) => ({
    name: f.name,
    bytes: frame(i, f.value.command, f.payload),
  })),
  ...REPLY_FIXTURES.map((f, i) => ({
    name: f.name,
    bytes: frame(100 + i, f.value.command, f.payload, { flags: 1 }),
  })),
];

function feed(framer: MessageFramer, chunks: Uint8Array[]): FramedMessage[] {
  return chunks.flatMap((c) => framer.push(c));
}

/** Every message of `chunk` through `frame` (the way with a placer). */
function frameAll(framer: MessageFramer, chunk: Uint8Array): FramedMessage[] {
  const out: FramedMessage[] = [];
  assert.equal(
    framer.frame(chunk, (m) => out.push(m) > 0),
    chunk.length,
  );
  return out;
}

function same(m: FramedMessage, bytes: Uint8Array): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  assert.equal(m.header.msgId, v.getUint16(0, true));
  assert.equal(m.header.command, v.getUint16(2, true));
  assert.equal(m.header.size, bytes.length);
  assert.deepEqual(m.payload, bytes.subarray(16));
}

for (const f of FIXTURES) {
  test(`framer: ${f.name} split at every offset`, () => {
    for (let cut = 0; cut <= f.bytes.length; cut++) {
      const framer = new MessageFramer(LIMITS);
      const out = feed(framer, [f.bytes.subarray(0, cut), f.bytes.subarray(cut)]);
      assert.equal(out.length, 1, `cut ${cut}`);
      same(out[0]!, f.bytes);
      assert.equal(framer.buffered, 0);
    }
  });
}

test('framer: every pair of consecutive fixtures split at every offset, then byte by byte', () => {
  for (let i = 0; i + 1 < FIXTURES.length; i++) {
    const a = FIXTURES[i]!.bytes;
    const b = FIXTURES[i + 1]!.bytes;
    const both = new Uint8Array(a.length + b.length);
    both.set(a);
    both.set(b, a.length);
    for (let cut = 0; cut <= both.length; cut++) {
      const out = feed(new MessageFramer(LIMITS), [both.subarray(0, cut), both.subarray(cut)]);
      assert.equal(out.length, 2);
      same(out[0]!, a);
      same(out[1]!, b);
    }
    const bytewise = feed(
      new MessageFramer(LIMITS),
      [...both].map((x) => Uint8Array.of(x)),
    );
    assert.equal(bytewise.length, 2);
  }
});

test('framer: fds go to the message holding the last byte of their chunk', () => {
  const a = frame(1, Command.REGION_READ, new Uint8Array(16));
  const b = frame(2, Command.DMA_MAP, new Uint8Array(32));
  const both = new Uint8Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  // A recvmsg ends right after the segment that carried fds: fds belong to b.
  for (let cut = a.length + 1; cut <= both.length; cut++) {
    const framer = new MessageFramer(LIMITS);
    const first = framer.push(both.subarray(0, cut), [7]);
    const rest = cut < both.length ? framer.push(both.subarray(cut)) : [];
    const out = [...first, ...rest];
    assert.deepEqual(out[0]!.fds, []);
    assert.deepEqual(out[1]!.fds, [7]);
  }
  // fds arriving with a chunk wholly inside a message belong to that message.
  const framer = new MessageFramer(LIMITS);
  framer.push(b.subarray(0, 20));
  framer.push(b.subarray(20, 30), [8, 9]);
  assert.deepEqual(framer.push(b.subarray(30))[0]!.fds, [8, 9]);
});

test('framer: direct receive into a large body, which grows as its bytes arrive', () => {
  const payload = new Uint8Array(300_000).map((_, i) => i & 0xff);
  const bytes = frame(3, Command.REGION_WRITE, payload);
  const framer = new MessageFramer(LIMITS);
  assert.deepEqual(framer.push(bytes.subarray(0, 40)), []);
  let at = 40;
  let m: FramedMessage | null = null;
  let largest = 0;
  for (let i = 0; m === null; i++) {
    const target = framer.directTarget(1024);
    assert.ok(target, `a direct target after ${at} bytes`);
    // Never more than twice what arrived (and 64 KiB at first): a header alone costs little.
    assert.ok(target.buffer.byteLength <= Math.max(64 * 1024, 2 * (at - 16)), `at ${at}`);
    largest = Math.max(largest, target.buffer.byteLength);
    const n = Math.min(target.length, bytes.length - at);
    target.set(bytes.subarray(at, at + n));
    m = framer.commitDirect(n, i === 0 ? [5] : []);
    at += n;
  }
  assert.equal(at, bytes.length);
  assert.equal(largest, payload.length);
  assert.deepEqual(m.payload, payload);
  assert.deepEqual(m.fds, [5]);
  assert.equal(framer.directTarget(1), null);
});

test('framer: a header announcing 1 MiB allocates 64 KiB until more arrives', () => {
  const framer = new MessageFramer(LIMITS);
  assert.deepEqual(framer.push(packHeader(1, Command.REGION_WRITE, 16 + (1 << 20), 0)), []);
  assert.equal(framer.directTarget(1)?.buffer.byteLength, 64 * 1024);
  // Bytes through push grow it too, and the message comes out whole.
  const body = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 13) & 0xff);
  const out = [
    ...framer.push(body.subarray(0, 100_000)),
    ...framer.push(body.subarray(100_000, 700_001)),
    ...framer.push(body.subarray(700_001)),
  ];
  assert.equal(out.length, 1);
  assert.ok(Buffer.from(out[0]!.payload).equals(Buffer.from(body)));
});

test('framer: each message reaches the sink before the next header is read or its body placed', () => {
  const big = frame(2, Command.REGION_WRITE, new Uint8Array(16 + 64).fill(0xbb));
  const bytes = Buffer.concat([
    frame(1, Command.REGION_WRITE, new Uint8Array(16 + 8).fill(0xaa)),
    big,
    frame(3, Command.REGION_READ, new Uint8Array(16)),
  ]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const events: string[] = [];
    const framer = new MessageFramer(LIMITS, (h) => {
      events.push(`header ${h.msgId}`);
      return h.msgId === 2
        ? {
            head: 16,
            data: () => {
              events.push('place 2');
              return new Uint8Array(64);
            },
          }
        : null;
    });
    const sink = (m: FramedMessage) => events.push(`handle ${m.header.msgId}`) > 0;
    framer.frame(bytes.subarray(0, cut), sink);
    framer.frame(bytes.subarray(cut), sink);
    assert.deepEqual(
      events,
      ['header 1', 'handle 1', 'header 2', 'place 2', 'handle 2', 'header 3', 'handle 3'],
      `cut ${cut}`,
    );
  }
});

test('framer: a sink that stops gets the rest when framing resumes where it stopped; fds wait', () => {
  const a = frame(1, Command.DEVICE_RESET, new Uint8Array(0));
  const b = frame(2, Command.REGION_READ, new Uint8Array(16));
  const c = frame(3, Command.DMA_MAP, new Uint8Array(32));
  const bytes = Buffer.concat([a, b, c]);
  const framer = new MessageFramer(LIMITS);
  const got: FramedMessage[] = [];
  const stopEach = (m: FramedMessage) => {
    got.push(m);
    return false;
  };
  let at = framer.frame(bytes, stopEach, [7]);
  assert.equal(at, a.length);
  assert.deepEqual(framer.releaseFds(), [], "the fds stay the caller's while bytes are left");
  at = framer.frame(bytes, stopEach, [7], at);
  assert.equal(at, a.length + b.length);
  assert.equal(framer.frame(bytes, stopEach, [7], at), bytes.length);
  assert.deepEqual(
    got.map((m) => [m.header.msgId, m.fds]),
    [
      [1, []],
      [2, []],
      [3, [7]],
    ],
  );
});

test('framer: push refuses a framer with a placer (it would place ahead of unhandled messages)', () => {
  const framer = new MessageFramer(LIMITS, () => null);
  assert.throws(() => framer.push(new Uint8Array(16)), /use frame\(\)/);
});

test("framer: a placed body goes past its head into the placer's buffer, split at every offset", () => {
  const payload = Uint8Array.from({ length: 16 + 300 }, (_, i) => (i * 5) & 0xff);
  const bytes = frame(4, Command.REGION_READ, payload);
  const small = frame(5, Command.REGION_READ, Uint8Array.of(1, 2, 3)); // no room: own body
  for (let cut = 0; cut <= bytes.length; cut++) {
    const into = new Uint8Array(400);
    const framer = new MessageFramer(LIMITS, (h) =>
      h.msgId === 4 ? { head: 16, data: into } : { head: 0, data: new Uint8Array(1) },
    );
    const got = [
      ...frameAll(framer, bytes.subarray(0, cut)),
      ...frameAll(framer, bytes.subarray(cut)),
      ...frameAll(framer, small),
    ];
    assert.equal(got.length, 2);
    assert.deepEqual(got[0]!.payload, payload.subarray(0, 16));
    assert.equal(got[0]!.placed?.buffer, into.buffer);
    assert.deepEqual(got[0]!.placed, payload.subarray(16));
    assert.deepEqual(got[1]!.payload, Uint8Array.of(1, 2, 3));
    assert.equal(got[1]!.placed, undefined);
  }
});

test("framer: a placed body is received directly into the placer's buffer", () => {
  const payload = Uint8Array.from({ length: 16 + 100_000 }, (_, i) => i & 0xff);
  const bytes = frame(6, Command.REGION_WRITE, payload);
  const into = new Uint8Array(100_000);
  const framer = new MessageFramer(LIMITS, () => ({ head: 16, data: into }));
  assert.deepEqual(frameAll(framer, bytes.subarray(0, 40)), []);
  const target = framer.directTarget(1024)!;
  assert.equal(target.buffer, into.buffer);
  assert.equal(target.length, bytes.length - 40);
  target.set(bytes.subarray(40));
  const m = framer.commitDirect(bytes.length - 40);
  assert.ok(m);
  assert.deepEqual(m.payload, payload.subarray(0, 16));
  assert.deepEqual(into, payload.subarray(16));
});

test('framer: a placement chosen from the head gets the rest, split at every offset', () => {
  const payload = Uint8Array.from({ length: 16 + 200 }, (_, i) => (i * 3) & 0xff);
  const bytes = frame(8, Command.REGION_WRITE, payload);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const into = new Uint8Array(300);
    const heads: Uint8Array[] = [];
    const framer = new MessageFramer(LIMITS, () => ({
      head: 16,
      data: (head) => {
        heads.push(head.slice());
        return into.subarray(50);
      },
    }));
    const got = [
      ...frameAll(framer, bytes.subarray(0, cut)),
      ...frameAll(framer, bytes.subarray(cut)),
    ];
    assert.equal(got.length, 1);
    assert.deepEqual(heads, [payload.subarray(0, 16)]);
    assert.deepEqual(got[0]!.payload, payload.subarray(0, 16));
    assert.equal(got[0]!.placed?.byteOffset, 50);
    assert.deepEqual(got[0]!.placed, payload.subarray(16));
  }
});

test('framer: push up to `end` of a reused receive buffer ignores the stale bytes after it', () => {
  const one = frame(1, Command.DEVICE_RESET, new Uint8Array(0));
  const two = frame(2, Command.REGION_READ, Uint8Array.of(7, 7, 7));
  const buf = new Uint8Array(100).fill(0xee);
  buf.set(one);
  buf.set(two, one.length);
  const framer = new MessageFramer(LIMITS);
  const got = framer.push(buf, [], one.length + 5);
  assert.deepEqual(
    got.map((m) => m.header.msgId),
    [1],
  );
  buf.copyWithin(0, one.length + 5, one.length + two.length);
  const rest = framer.push(buf, [], two.length - 5);
  assert.deepEqual(rest[0]?.payload, Uint8Array.of(7, 7, 7));
  assert.equal(framer.buffered, 0);
});

const BAD_HEADERS: Array<[string, Uint8Array, number[], string, string]> = [
  ['size 0', packHeader(1, 1, 0, 0), [], 'message-too-short', 'EINVAL'],
  ['size 15', packHeader(1, 1, 15, 0), [], 'message-too-short', 'EINVAL'],
  [
    'size past the limit',
    packHeader(1, 10, LIMITS.maxMessageSize + 1, 0),
    [],
    'message-too-long',
    'E2BIG',
  ],
  ['size 4 GiB - 1', packHeader(1, 10, 0xffffffff, 0), [], 'message-too-long', 'E2BIG'],
  ['type 2', packHeader(1, 1, 16, 2), [], 'bad-message-type', 'EINVAL'],
  ['type 15 with NO_REPLY', packHeader(1, 1, 16, 0x1f), [], 'bad-message-type', 'EINVAL'],
  [
    'five fds, four allowed',
    packHeader(1, 8, 16, 0),
    [10, 11, 12, 13, 14],
    'too-many-fds',
    'EINVAL',
  ],
];

for (const [name, bytes, fds, kind, code] of BAD_HEADERS) {
  test(`framer: malformed header, ${name} → ${kind} ${code}, fds kept for closing`, () => {
    const framer = new MessageFramer(LIMITS);
    assert.throws(
      () => framer.push(bytes, fds),
      (e: unknown) => e instanceof FramingError && e.kind === kind && e.code === code,
    );
    assert.deepEqual(framer.releaseFds().sort(), [...fds].sort());
  });
}

test('framer: nothing is allocated for an oversized message', () => {
  const framer = new MessageFramer({ maxMessageSize: 64, maxFds: 1 });
  assert.throws(() => framer.push(packHeader(1, 10, 65, 0)), FramingError);
  assert.equal(framer.directTarget(0), null);
});

test('framer: fds with no bytes are a framing error', () => {
  const framer = new MessageFramer(LIMITS);
  assert.throws(
    () => framer.push(new Uint8Array(0), [3]),
    (e: unknown) => e instanceof FramingError && e.kind === 'fds-without-bytes',
  );
  assert.deepEqual(framer.releaseFds(), [3]);
});
