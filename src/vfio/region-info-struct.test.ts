/**
 * struct vfio_region_info's one codec (region-info.ts encodeRegionInfoStruct /
 * decodeRegionInfoStruct), which the kernel's reply and the vfio-user wire both use: bytes
 * against a DataView layout built here (include/uapi/linux/vfio.h: argsz, flags, index,
 * cap_offset u32; size, offset u64; little-endian), round trips of any values, and the error
 * for a struct cut short, which names the member it ends in.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { VfioError } from './errors.ts';
import {
  decodeRegionInfoStruct,
  encodeRegionInfoStruct,
  type RegionInfoFields,
} from './region-info.ts';

function expected(f: RegionInfoFields, chain: Uint8Array): Uint8Array {
  const out = new Uint8Array(32 + chain.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, f.argsz, true);
  v.setUint32(4, f.flags, true);
  v.setUint32(8, f.index, true);
  v.setUint32(12, f.capOffset, true);
  v.setBigUint64(16, f.size, true);
  v.setBigUint64(24, f.offset, true);
  out.set(chain, 32);
  return out;
}

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const fields = fc.record({
  argsz: u32,
  flags: u32,
  index: u32,
  capOffset: u32,
  size: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  offset: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
});

describe('struct vfio_region_info, defined once', () => {
  it('encodes to the uapi layout and decodes back, with the chain after it', () => {
    fc.assert(
      fc.property(fields, fc.uint8Array({ maxLength: 64 }), (f, chain) => {
        const bytes = encodeRegionInfoStruct(f, chain);
        assert.deepEqual(bytes, expected(f, chain));
        const back = decodeRegionInfoStruct(bytes);
        assert.deepEqual(back.fields, { ...f });
        assert.deepEqual(back.chain, chain);
      }),
    );
  });

  it('decodes from a view at any offset of a larger buffer', () => {
    const f = { argsz: 40, flags: 15, index: 0, capOffset: 32, size: 1n << 24n, offset: 0n };
    const chain = Uint8Array.of(3, 0, 1, 0, 0, 0, 0, 0);
    const big = new Uint8Array(100);
    big.set(expected(f, chain), 11);
    const back = decodeRegionInfoStruct(big.subarray(11, 11 + 40));
    assert.deepEqual(back.fields, f);
    assert.deepEqual(back.chain, chain);
  });

  it('a struct cut short is EINVAL naming the member it ends in', () => {
    const cases: [number, string][] = [
      [0, 'argsz needs 4 bytes at offset 0'],
      [3, 'argsz needs 4 bytes at offset 0'],
      [12, 'cap_offset needs 4 bytes at offset 12'],
      [20, 'size needs 8 bytes at offset 16'],
      [31, 'offset needs 8 bytes at offset 24'],
    ];
    for (const [length, why] of cases) {
      assert.throws(
        () => decodeRegionInfoStruct(new Uint8Array(length), 'GET_REGION_INFO reply'),
        (e: unknown) =>
          e instanceof VfioError &&
          e.errno === 22 &&
          e.message.includes(`GET_REGION_INFO reply: ${why}, payload has ${length}`),
        `${length} bytes`,
      );
    }
  });
});
