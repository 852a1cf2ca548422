/**
 * guest's report of a vPHB: every ibm,mmio-atsd address as hex of its own width, in the table
 * and in JSON (a `map(hex)` would pass each index as a zero-padding width).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPlacement, placementToJson } from './guest-report.ts';
import type { GuestPlacement } from './placement.ts';

const PLACEMENT: GuestPlacement = {
  numaNodes: 1,
  vphbs: [
    {
      index: 0,
      buid: 0x800000020000000n,
      ramWindow: 0x400000000000n,
      atsdWindow: 0x800000000000n,
      devices: [],
      slots: [],
      mmioAtsd: [0x1n, 0x2n, 0x30n, 0x4n],
      errors: [],
      notes: [],
    },
  ],
};

test('ibm,mmio-atsd addresses print unpadded, in the table and in JSON', () => {
  assert.match(formatPlacement(PLACEMENT), /^ {2}ibm,mmio-atsd: 0x1 0x2 0x30 0x4$/m);
  const json = placementToJson(PLACEMENT) as { vphbs: { mmioAtsd: string[] }[] };
  assert.deepEqual(json.vphbs[0]?.mmioAtsd, ['0x1', '0x2', '0x30', '0x4']);
});
