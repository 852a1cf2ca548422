/**
 * The capability chain and the region-info reply as properties over arbitrary chains (vfio.c
 * vfio_info_cap_add / vfio_info_cap_shift, vfio_pci.c VFIO_DEVICE_GET_REGION_INFO, v5.12): the
 * chain decodes back, the reply needs exactly 32 + the chain, the decoder never throws. The
 * byte-exact replies of real regions are in src/nvlink2/core-tests/region-info.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeCapChain, encodeCapChain } from './info-caps.ts';
import { RegionFlag } from './region.ts';
import { decodeRegionInfo, encodeRegionInfo } from './region-info.ts';

describe('capability chain encoder / decoder (properties)', () => {
  const capArb = fc.record({
    id: fc.integer({ min: 0, max: 0xffff }),
    version: fc.integer({ min: 0, max: 0xffff }),
    body: fc.uint8Array({ maxLength: 40 }),
  });

  it('every chain decodes to its capabilities with next offsets shifted by the base', () => {
    fc.assert(
      fc.property(
        fc.array(capArb, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 8, max: 64 }),
        (caps, base) => {
          const chain = encodeCapChain(caps, base);
          const info = new Uint8Array(base + chain.length);
          info.set(chain, base);
          const { caps: decoded, error } = decodeCapChain(info, base);
          assert.equal(error, undefined);
          assert.equal(decoded.length, caps.length);
          decoded.forEach((d, i) => {
            const c = caps[i];
            assert.ok(c);
            assert.equal(d.id, c.id);
            assert.equal(d.version, c.version);
            assert.deepEqual(d.body, c.body);
            assert.equal(d.next, i + 1 < caps.length ? (decoded[i + 1]?.offset ?? -1) : 0);
          });
        },
      ),
    );
  });

  it('the reply needs exactly 32 + chain bytes; one byte less drops the chain', () => {
    fc.assert(
      fc.property(fc.array(capArb, { minLength: 1, maxLength: 6 }), (caps) => {
        const need = 32 + encodeCapChain(caps, 32).length;
        const region = { index: 9, flags: RegionFlag.READ, size: 4096n, caps };
        const full = encodeRegionInfo(region, need);
        const short = encodeRegionInfo(region, need - 1);
        assert.equal(full.bytes.length, need);
        assert.equal(full.info.capOffset, 32);
        assert.equal(short.bytes.length, 32);
        assert.equal(short.info.argsz, need);
        assert.equal(short.info.capOffset, 0);
        assert.equal(decodeRegionInfo(full.bytes).caps.length, caps.length);
      }),
    );
  });

  it('the decoder never throws on arbitrary bytes of 32 or more and stops on loops', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 200 }), (bytes) => {
        const d = decodeRegionInfo(bytes);
        assert.ok(d.caps.length <= bytes.length);
      }),
    );
  });
});
