/**
 * Property-based round trips (fast-check): for every command, any request or reply value
 * survives encode → decode unchanged, and the encoded length is what the layout says.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeReply, decodeRequest, encodeReply, encodeRequest } from './codec.ts';
import { Command, IrqSetFlag } from './constants.ts';
import type { Reply, Request } from './messages.ts';
import type { VersionCapabilities } from './version-capabilities.ts';

// fast-check builds records with a null prototype; structuredClone gives the plain objects
// the decoders return, so deepEqual compares values only.
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const bytes = fc.uint8Array({ maxLength: 96 });
const small = fc.nat({ max: 2 ** 40 });
const KNOWN = [
  'max_msg_fds',
  'max_data_xfer_size',
  'max_dma_maps',
  'pgsizes',
  'twin_socket',
  'write_multiple',
  'migration',
];

const capabilities: fc.Arbitrary<VersionCapabilities | null> = fc.option(
  fc.record(
    {
      maxMsgFds: small,
      maxDataXferSize: small,
      maxDmaMaps: small,
      pgsizes: small,
      twinSocket: fc.record({ supported: fc.boolean(), fdIndex: small }, { requiredKeys: [] }),
      writeMultiple: fc.boolean(),
      migration: fc.record({ pgsize: small, maxBitmapSize: small }, { requiredKeys: [] }),
      unknown: fc.dictionary(
        fc.string({ minLength: 1 }).filter((k) => !KNOWN.includes(k) && k !== '__proto__'),
        fc.oneof(fc.string(), fc.integer(), fc.boolean()),
        { minKeys: 1 },
      ),
    },
    { requiredKeys: [] },
  ),
);

const four = { argsz: u32, flags: u32 };
const writes = fc.array(
  fc.record({ offset: u64, region: u32, data: fc.uint8Array({ maxLength: 8 }) }),
  { maxLength: 20 },
);

const setIrqs = fc
  .record({
    argsz: u32,
    flags: u32,
    index: u32,
    start: u32,
    count: fc.nat({ max: 64 }),
    seed: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  })
  .map(({ seed, ...s }) => ({
    command: Command.DEVICE_SET_IRQS as const,
    ...s,
    data: (s.flags & IrqSetFlag.DATA_BOOL) !== 0 ? seed.slice(0, s.count) : new Uint8Array(0),
  }));

const requests: fc.Arbitrary<Request> = fc.oneof(
  fc.record({
    command: fc.constant(Command.VERSION as const),
    major: u16,
    minor: u16,
    capabilities,
  }),
  fc.record({
    command: fc.constant(Command.DMA_MAP as const),
    ...four,
    offset: u64,
    address: u64,
    size: u64,
  }),
  fc.record({ command: fc.constant(Command.DMA_UNMAP as const), ...four, address: u64, size: u64 }),
  fc.record({
    command: fc.constant(Command.DEVICE_GET_INFO as const),
    ...four,
    numRegions: u32,
    numIrqs: u32,
  }),
  fc.record({
    command: fc.constant(Command.DEVICE_GET_REGION_INFO as const),
    ...four,
    index: u32,
    capOffset: u32,
    size: u64,
    offset: u64,
  }),
  fc.record({
    command: fc.constant(Command.DEVICE_GET_REGION_IO_FDS as const),
    ...four,
    index: u32,
    count: u32,
  }),
  fc.record({
    command: fc.constant(Command.DEVICE_GET_IRQ_INFO as const),
    ...four,
    index: u32,
    count: u32,
  }),
  setIrqs,
  fc.record({
    command: fc.constant(Command.REGION_READ as const),
    offset: u64,
    region: u32,
    count: u32,
  }),
  fc.record({
    command: fc.constant(Command.REGION_WRITE as const),
    offset: u64,
    region: u32,
    data: bytes,
  }),
  fc.record({ command: fc.constant(Command.DMA_READ as const), address: u64, count: u64 }),
  fc.record({ command: fc.constant(Command.DMA_WRITE as const), address: u64, data: bytes }),
  fc.constant({ command: Command.DEVICE_RESET as const }),
  fc.record({ command: fc.constant(Command.REGION_WRITE_MULTI as const), writes }),
  fc.record({ command: fc.constant(Command.DEVICE_FEATURE as const), ...four, data: bytes }),
  fc.record({ command: fc.constant(Command.MIG_DATA_READ as const), argsz: u32, size: u32 }),
  fc.record({ command: fc.constant(Command.MIG_DATA_WRITE as const), argsz: u32, data: bytes }),
);

const replies: fc.Arbitrary<Reply> = fc.oneof(
  fc.record({
    command: fc.constant(Command.VERSION as const),
    major: u16,
    minor: u16,
    capabilities,
  }),
  fc.constant({ command: Command.DMA_MAP as const }),
  fc.record({ command: fc.constant(Command.DMA_UNMAP as const), ...four, address: u64, size: u64 }),
  fc.record({
    command: fc.constant(Command.DEVICE_GET_INFO as const),
    ...four,
    numRegions: u32,
    numIrqs: u32,
  }),
  fc.record({
    command: fc.constant(Command.DEVICE_GET_REGION_INFO as const),
    info: fc.record({ ...four, index: u32, capOffset: u32, size: u64, offset: u64 }),
    capabilities: bytes,
  }),
  fc.record({
    command: fc.constant(Command.DEVICE_GET_REGION_IO_FDS as const),
    ...four,
    index: u32,
    count: u32,
    subRegions: bytes,
  }),
  fc.record({
    command: fc.constant(Command.DEVICE_GET_IRQ_INFO as const),
    ...four,
    index: u32,
    count: u32,
  }),
  fc.constant({ command: Command.DEVICE_SET_IRQS as const }),
  fc.record({
    command: fc.constant(Command.REGION_READ as const),
    offset: u64,
    region: u32,
    data: bytes,
  }),
  fc.record({
    command: fc.constant(Command.REGION_WRITE as const),
    offset: u64,
    region: u32,
    count: u32,
  }),
  fc.record({ command: fc.constant(Command.DMA_READ as const), address: u64, data: bytes }),
  fc.record({ command: fc.constant(Command.DMA_WRITE as const), address: u64, count: u64 }),
  fc.constant({ command: Command.DEVICE_RESET as const }),
  fc.record({ command: fc.constant(Command.REGION_WRITE_MULTI as const), count: u64 }),
  fc.record({ command: fc.constant(Command.DEVICE_FEATURE as const), ...four, data: bytes }),
  fc.record({ command: fc.constant(Command.MIG_DATA_READ as const), argsz: u32, data: bytes }),
  fc.constant({ command: Command.MIG_DATA_WRITE as const }),
);

test('any request survives encode → decode', () => {
  fc.assert(
    fc.property(requests, (r) => {
      assert.deepEqual(decodeRequest(r.command, encodeRequest(r)), structuredClone(r));
    }),
    { numRuns: 2000 },
  );
});

test('any reply survives encode → decode', () => {
  fc.assert(
    fc.property(replies, (r) => {
      assert.deepEqual(decodeReply(r.command, encodeReply(r)), structuredClone(r));
    }),
    { numRuns: 2000 },
  );
});

test('decoding arbitrary bytes either succeeds or throws VfioError EINVAL, never anything else', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 20 }),
      fc.uint8Array({ maxLength: 80 }),
      (command, payload) => {
        for (const decode of [decodeRequest, decodeReply]) {
          try {
            decode(command, payload);
          } catch (e) {
            assert.equal((e as { code?: string }).code, 'EINVAL', String(e));
          }
        }
      },
    ),
    { numRuns: 3000 },
  );
});
