import assert from 'node:assert/strict';
import { test } from 'node:test';
import { atsdAddress, gpuMemoryBase, npuRegsBase, tgtFromSystemAddress } from './phys-map.ts';

test('tgt compression: the three worked values of the reference', () => {
  assert.equal(tgtFromSystemAddress(0x40000000000n), 0x40000000000n);
  assert.equal(tgtFromSystemAddress(0x240000000000n), 0xc0000000000n);
  assert.equal(tgtFromSystemAddress(0x23e000000000n), 0xbe000000000n);
});

test('GPU memory bases: 4T down and 4T up, chip select shift 42', () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((g) => gpuMemoryBase('4t-down', 0, g)),
    [
      0x3e0_0000_0000n,
      0x3c0_0000_0000n,
      0x3a0_0000_0000n,
      0x380_0000_0000n,
      0x360_0000_0000n,
      0x340_0000_0000n,
    ],
  );
  assert.equal(gpuMemoryBase('4t-up', 0, 3), 0x460_0000_0000n);
  assert.equal(gpuMemoryBase('4t-down', 8, 0), 0x23e000000000n);
  assert.equal(gpuMemoryBase('4t-up', 8, 0), 0x240000000000n);
  assert.throws(() => gpuMemoryBase('4t-up', 0, 4), RangeError);
});

test('NPU registers and ATSD blocks', () => {
  assert.equal(npuRegsBase(0), 0x0006_0302_0000_0000n);
  assert.equal(atsdAddress(0, 0), 0x6030200800000n);
  assert.equal(atsdAddress(0, 7), 0x6030200870000n);
  assert.equal(atsdAddress(8, 1), 0x6030200810000n + (8n << 42n));
});
