/**
 * The stream codec and its incremental parser (stream-format.ts, stream-parser.ts), property
 * based: any sequence of records survives encode → split anywhere → parse; every single-byte
 * change, every truncation, a dropped or repeated record and bytes after END are refused with
 * EINVAL naming the fault. Expected head bytes are packed here by hand, not by the encoder.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { VfioError } from '../vfio/index.ts';
import {
  allocPages,
  encodeConfig,
  encodeEnd,
  encodeHeader,
  encodeIrqs,
  encodeRegisters,
  RecordType,
  type StreamDescription,
  type StreamRecord,
  sealRecord,
} from './stream-format.ts';
import { StreamParser } from './stream-parser.ts';

const DESCRIPTION: StreamDescription = {
  device: '0004:03:00.0',
  vendor: 0x10de,
  deviceId: 0x1db1,
  configSize: 4096,
  regions: [{ index: 9, size: String(128n << 30n) }],
  lpid: 3,
};

type Body =
  | { kind: 'pages'; region: number; offset: bigint; data: Uint8Array }
  | { kind: 'config'; bytes: Uint8Array }
  | { kind: 'registers'; bar: number; start: bigint; bytes: Uint8Array }
  | { kind: 'irqs'; index: number | undefined; vectors: number; masked: boolean; pending: boolean };

const body: fc.Arbitrary<Body> = fc.oneof(
  fc.record({
    kind: fc.constant('pages' as const),
    region: fc.nat(20),
    offset: fc.bigInt(0n, (1n << 64n) - 1n),
    data: fc.uint8Array({ maxLength: 300 }),
  }),
  fc.record({ kind: fc.constant('config' as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({
    kind: fc.constant('registers' as const),
    bar: fc.nat(5),
    start: fc.bigInt(0n, (1n << 64n) - 1n),
    bytes: fc.uint8Array({ maxLength: 100 }),
  }),
  fc.record({
    kind: fc.constant('irqs' as const),
    index: fc.option(fc.nat(4), { nil: undefined }),
    vectors: fc.nat(2048),
    masked: fc.boolean(),
    pending: fc.boolean(),
  }),
);

function encodeBody(seq: number, b: Body): Uint8Array {
  switch (b.kind) {
    case 'pages': {
      const r = allocPages(seq, b.region, b.offset, b.data.length);
      r.data.set(b.data);
      return sealRecord(r.record);
    }
    case 'config':
      return encodeConfig(seq, b.bytes);
    case 'registers':
      return encodeRegisters(seq, b.bar, b.start, b.bytes);
    case 'irqs':
      return encodeIrqs(seq, {
        index: b.index,
        vectors: b.vectors,
        intxMasked: b.masked,
        intxPending: b.pending,
      });
  }
}

/** HEADER, the bodies, END: the records' bytes. */
function stream(bodies: readonly Body[]): Uint8Array[] {
  const records = [encodeHeader(0, DESCRIPTION), ...bodies.map((b, i) => encodeBody(i + 1, b))];
  const bytes = records.reduce((n, r) => n + r.length, 0);
  records.push(encodeEnd(records.length, records.length, BigInt(bytes)));
  return records;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A PAGES record's data in one piece (a stable push may hand it out in two). */
function whole(r: StreamRecord): StreamRecord {
  if (r.type !== RecordType.PAGES || r.more === undefined) return structuredClone(r);
  const { more, ...rest } = r;
  return structuredClone({ ...rest, data: concat([r.data, more]) });
}

/**
 * Feeds `bytes` cut at `cuts`; the records, or the EINVAL thrown. `stable`: each piece is
 * copied into one of two buffers in turn (as the server receives MIG_DATA_WRITE), the other
 * one's old bytes scribbled over, and pushed as stable: a view kept past its turn reads junk.
 */
function parse(
  bytes: Uint8Array,
  cuts: readonly number[],
  stable = false,
): StreamRecord[] | VfioError {
  const p = new StreamParser();
  const out: StreamRecord[] = [];
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const turns = [new Uint8Array(bytes.length), new Uint8Array(bytes.length)];
  let from = 0;
  try {
    for (const [i, to] of [...points, bytes.length].entries()) {
      let piece = bytes.subarray(from, to);
      if (stable) {
        const buffer = turns[i % 2] as Uint8Array;
        buffer.fill(0xa5);
        buffer.set(piece);
        piece = buffer.subarray(0, piece.length);
      }
      p.push(piece, (r) => out.push(whole(r)), stable); // views of a reused buffer
      from = to;
    }
    p.finish();
    return out;
  } catch (err) {
    if (err instanceof VfioError) return err;
    throw err;
  }
}

function isEinval(r: StreamRecord[] | VfioError, pattern?: RegExp): boolean {
  return (
    r instanceof VfioError &&
    r.code === 'EINVAL' &&
    (pattern === undefined || pattern.test(r.message))
  );
}

describe('migration stream', () => {
  it('a record is type u16, flags u16, seq u32, length u32, payload, CRC-32 (bytes packed by hand)', () => {
    const r = encodeConfig(7, new Uint8Array([0xaa, 0xbb]));
    assert.deepEqual([...r.subarray(0, 14)], [3, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 0xaa, 0xbb]);
    assert.equal(r.length, 18);
  });

  it('any records survive encode → split anywhere → parse (copied, or stable pushes)', () => {
    fc.assert(
      fc.property(
        fc.array(body, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.boolean(),
        (bodies, cuts, stable) => {
          const got = parse(concat(stream(bodies)), cuts, stable);
          assert.ok(!(got instanceof VfioError), String(got));
          assert.equal(got.length, bodies.length + 2);
          assert.equal(got[0]?.type, RecordType.HEADER);
          assert.equal(got[got.length - 1]?.type, RecordType.END);
          for (const [i, b] of bodies.entries()) {
            const r = got[i + 1] as StreamRecord;
            if (b.kind === 'pages' && r.type === RecordType.PAGES) {
              assert.deepEqual(
                [r.region, r.offset, [...r.data]],
                [b.region, b.offset, [...b.data]],
              );
            } else if (b.kind === 'config' && r.type === RecordType.CONFIG) {
              assert.deepEqual([...r.bytes], [...b.bytes]);
            } else if (b.kind === 'registers' && r.type === RecordType.REGISTERS) {
              assert.deepEqual([r.bar, r.start, [...r.bytes]], [b.bar, b.start, [...b.bytes]]);
            } else if (b.kind === 'irqs' && r.type === RecordType.IRQS) {
              assert.deepEqual(
                [r.index, r.vectors, r.intxMasked, r.intxPending],
                [b.index, b.vectors, b.masked, b.pending],
              );
            } else assert.fail(`record ${i + 1}: ${b.kind} came back as type ${r.type}`);
          }
        },
      ),
    );
  });

  it('every single-byte change is refused (EINVAL), split anywhere, stable or not', () => {
    fc.assert(
      fc.property(
        fc.array(body, { maxLength: 4 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        fc.boolean(),
        (bodies, at, xor, cuts, stable) => {
          const bytes = concat(stream(bodies));
          const i = at % bytes.length;
          bytes[i] = (bytes[i] as number) ^ xor;
          assert.ok(isEinval(parse(bytes, cuts, stable)), `byte ${i} ^ ${xor} went unnoticed`);
        },
      ),
    );
  });

  it('every truncation is refused at the end (EINVAL: truncated)', () => {
    fc.assert(
      fc.property(fc.array(body, { maxLength: 4 }), fc.nat(), (bodies, at) => {
        const bytes = concat(stream(bodies));
        const cut = at % bytes.length;
        assert.ok(isEinval(parse(bytes.subarray(0, cut), []), /truncated/), `cut at ${cut}`);
      }),
    );
  });

  it('a dropped or repeated record, bytes after END, and a wrong END are refused', () => {
    const records = stream([
      { kind: 'config', bytes: new Uint8Array(4) },
      { kind: 'pages', region: 9, offset: 0n, data: new Uint8Array(8) },
    ]);
    const without = (i: number) => concat(records.filter((_, k) => k !== i));
    assert.ok(isEinval(parse(without(1), []), /record 1 expected, record 2 found/));
    const twice = concat([records[0]!, records[1]!, records[1]!, ...records.slice(2)]);
    assert.ok(isEinval(parse(twice, []), /record 2 expected, record 1 found/));
    const extra = concat([...records, new Uint8Array([0])]);
    assert.ok(isEinval(parse(extra, []), /after END/));
    const wrongEnd = concat([...records.slice(0, 3), encodeEnd(3, 3, 1n)]);
    assert.ok(isEinval(parse(wrongEnd, []), /END counts 3 records and 1 bytes/));
  });

  it('refuses another format version, a bad magic, flags, and an over-long record', () => {
    const header = encodeHeader(0, DESCRIPTION);
    const v2 = header.slice();
    v2[12 + 8] = 2;
    assert.ok(isEinval(parse(sealRecord(v2), []), /format version 2/));
    const magic = header.slice();
    magic[12] = 0x58;
    assert.ok(isEinval(parse(sealRecord(magic), []), /magic/));
    const flags = header.slice();
    flags[2] = 1;
    assert.ok(isEinval(parse(flags, []), /flags 1 must be 0/));
    const long = header.slice(0, 12);
    new DataView(long.buffer).setUint32(8, 0x7fffffff, true);
    assert.ok(isEinval(parse(long, []), /over the \d+-byte limit/));
  });
});
