/**
 * Codecs against hand-packed bytes (test/support/wire-fixtures.ts): every request and reply encodes to
 * exactly the fixture's bytes and decodes back to its value; malformed payloads give EINVAL.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pack, packHeader } from '../../../test/support/frames.ts';
import { REPLY_FIXTURES, REQUEST_FIXTURES } from '../../../test/support/wire-fixtures.ts';
import { VfioError } from '../../vfio/index.ts';
import { decodeReply, decodeRequest, encodeReply, encodeRequest } from './codec.ts';
import { Command, commandName } from './constants.ts';
import { decodeHeader, encodeHeader, errorReplyHeader } from './header.ts';
import { ByteReader } from './reader.ts';
import { ByteWriter } from './writer.ts';

const commands = Object.values(Command).filter((c): c is Command => typeof c === 'number');

test('every command has a request fixture and a reply fixture', () => {
  for (const c of commands) {
    assert.ok(
      REQUEST_FIXTURES.some((f) => f.value.command === c),
      `request ${commandName(c)}`,
    );
    assert.ok(
      REPLY_FIXTURES.some((f) => f.value.command === c),
      `reply ${commandName(c)}`,
    );
  }
});

for (const f of REQUEST_FIXTURES) {
  test(`request ${f.name}: bytes and value agree`, () => {
    assert.deepEqual(encodeRequest(f.value), f.payload);
    assert.deepEqual(decodeRequest(f.value.command, f.payload), f.value);
  });
}

for (const f of REPLY_FIXTURES) {
  test(`reply ${f.name}: bytes and value agree`, () => {
    assert.deepEqual(encodeReply(f.value), f.payload);
    assert.deepEqual(decodeReply(f.value.command, f.payload), f.value);
  });
}

test('the header packs msg_id, command, size, flags, errno little-endian', () => {
  const h = { msgId: 0x1234, command: 9, size: 32, flags: 0x10, errno: 0 };
  assert.deepEqual(encodeHeader(h), packHeader(0x1234, 9, 32, 0x10));
  assert.deepEqual(decodeHeader(packHeader(7, 5, 16, 0x21, 22)), {
    msgId: 7,
    command: 5,
    size: 16,
    flags: 0x21,
    errno: 22,
  });
  assert.deepEqual(encodeHeader(errorReplyHeader(h, 22)), packHeader(0x1234, 9, 16, 0x21, 22));
});

test("a DMA_WRITE reply with the spec table's 4-byte count decodes too", () => {
  const r = decodeReply(Command.DMA_WRITE, pack(['u64', 0x1000n], ['u32', 3]));
  assert.deepEqual(r, { command: Command.DMA_WRITE, address: 0x1000n, count: 3n });
});

const MALFORMED: Array<[string, number, Uint8Array]> = [
  ['unknown command 14', 14, new Uint8Array(0)],
  ['unknown command 99', 99, new Uint8Array(8)],
  ['VERSION shorter than 4 bytes', Command.VERSION, pack(['u16', 0])],
  ['VERSION JSON without NUL', Command.VERSION, pack(['u16', 0], ['u16', 0], ['text', '{}'])],
  [
    'VERSION JSON that is not JSON',
    Command.VERSION,
    pack(['u16', 0], ['u16', 0], ['text', '{nope'], ['bytes', Uint8Array.of(0)]),
  ],
  [
    'VERSION JSON array root',
    Command.VERSION,
    pack(['u16', 0], ['u16', 0], ['text', '[]'], ['bytes', Uint8Array.of(0)]),
  ],
  [
    'VERSION max_msg_fds a string',
    Command.VERSION,
    pack(
      ['u16', 0],
      ['u16', 0],
      ['text', '{"capabilities":{"max_msg_fds":"8"}}'],
      ['bytes', Uint8Array.of(0)],
    ),
  ],
  [
    'VERSION invalid UTF-8',
    Command.VERSION,
    pack(['u16', 0], ['u16', 0], ['bytes', Uint8Array.of(0xff, 0xfe, 0)]),
  ],
  ['DMA_MAP of 31 bytes', Command.DMA_MAP, new Uint8Array(31)],
  ['DMA_MAP of 40 bytes', Command.DMA_MAP, new Uint8Array(40)],
  ['DMA_UNMAP of 16 bytes', Command.DMA_UNMAP, new Uint8Array(16)],
  ['DEVICE_GET_INFO of 4 bytes', Command.DEVICE_GET_INFO, new Uint8Array(4)],
  ['DEVICE_GET_REGION_INFO of 16 bytes', Command.DEVICE_GET_REGION_INFO, new Uint8Array(16)],
  [
    'DEVICE_GET_REGION_INFO with trailing bytes',
    Command.DEVICE_GET_REGION_INFO,
    new Uint8Array(40),
  ],
  ['DEVICE_GET_IRQ_INFO of 12 bytes', Command.DEVICE_GET_IRQ_INFO, new Uint8Array(12)],
  ['DEVICE_SET_IRQS of 16 bytes', Command.DEVICE_SET_IRQS, new Uint8Array(16)],
  [
    'DEVICE_SET_IRQS bool with too few bytes',
    Command.DEVICE_SET_IRQS,
    pack(
      ['u32', 22],
      ['u32', 0x0a],
      ['u32', 0],
      ['u32', 0],
      ['u32', 3],
      ['bytes', Uint8Array.of(1, 1)],
    ),
  ],
  [
    'DEVICE_SET_IRQS eventfd with data',
    Command.DEVICE_SET_IRQS,
    pack(
      ['u32', 21],
      ['u32', 0x24],
      ['u32', 0],
      ['u32', 0],
      ['u32', 1],
      ['bytes', Uint8Array.of(1)],
    ),
  ],
  ['REGION_READ of 12 bytes', Command.REGION_READ, new Uint8Array(12)],
  [
    'REGION_WRITE count larger than data',
    Command.REGION_WRITE,
    pack(['u64', 0n], ['u32', 0], ['u32', 8], ['u32', 0]),
  ],
  [
    'REGION_WRITE count smaller than data',
    Command.REGION_WRITE,
    pack(['u64', 0n], ['u32', 0], ['u32', 2], ['u32', 0]),
  ],
  ['DMA_WRITE count mismatch', Command.DMA_WRITE, pack(['u64', 0n], ['u64', 9n], ['u32', 0])],
  ['DEVICE_RESET with a payload', Command.DEVICE_RESET, new Uint8Array(4)],
  [
    'REGION_WRITE_MULTI wr_cnt past the entries',
    Command.REGION_WRITE_MULTI,
    pack(['u64', 2n], ['u64', 0n], ['u32', 0], ['u32', 4], ['u64', 0n]),
  ],
  [
    'REGION_WRITE_MULTI entry count 9',
    Command.REGION_WRITE_MULTI,
    pack(['u64', 1n], ['u64', 0n], ['u32', 0], ['u32', 9], ['u64', 0n]),
  ],
  ['DEVICE_FEATURE of 4 bytes', Command.DEVICE_FEATURE, new Uint8Array(4)],
  [
    'MIG_DATA_WRITE size mismatch',
    Command.MIG_DATA_WRITE,
    pack(['u32', 12], ['u32', 4], ['u16', 0]),
  ],
];

for (const [name, command, payload] of MALFORMED) {
  test(`malformed request: ${name} → EINVAL`, () => {
    assert.throws(
      () => decodeRequest(command, payload),
      (e: unknown) => e instanceof VfioError && e.code === 'EINVAL',
    );
  });
}

test('cursors: u64 little-endian at the 2^32 edges and modulo 2^64, u16/u32 byte order', () => {
  const values = [0n, 1n, 0xffffffffn, 0x100000000n, 0x123456789abcdef0n, 2n ** 64n - 1n];
  for (const v of values) {
    const bytes = new ByteWriter(8).u64(v).finish();
    const expected = new Uint8Array(8);
    for (let i = 0; i < 8; i++) expected[i] = Number((v >> BigInt(8 * i)) & 0xffn);
    assert.deepEqual(bytes, expected, `u64 ${v}`);
    assert.equal(new ByteReader(bytes, 'test').u64('v'), v);
  }
  assert.deepEqual(new ByteWriter(8).u64(-1n).finish(), new Uint8Array(8).fill(0xff));
  const w = new ByteWriter(6).u16(0xbeef).u32(0xdeadbeef).finish();
  assert.deepEqual(w, Uint8Array.of(0xef, 0xbe, 0xef, 0xbe, 0xad, 0xde));
  const r = new ByteReader(w, 'test');
  assert.equal(r.u16('a'), 0xbeef);
  assert.equal(r.u32('b'), 0xdeadbeef);
  r.end();
});
