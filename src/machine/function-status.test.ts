/**
 * probeHost lists no regions (serve's start does not encode and decode every region's info for
 * statuses that drop them): its verdicts must be the full doctor's, on healthy trees and on
 * trees whose functions the init refuses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Fdt } from '../fdt/index.ts';
import { buildHost, generateGrace, generateWitherspoon } from '../platform/index.ts';
import { probeHost } from './function-status.ts';
import { runHostDoctor } from './host-doctor.ts';

const omit = (property: string, target: string): Fdt =>
  generateWitherspoon({ omit: [{ property, target }] });

const TREES: [string, () => Fdt][] = [
  ['healthy Witherspoon', () => generateWitherspoon({})],
  ['no ibm,npu on a GPU (plain, ENODEV)', () => omit('ibm,npu', '0002:01:00.0')],
  ['no memory-region on a bridge (ENODEV)', () => omit('memory-region', '0000:00:00.0')],
  [
    'no ibm,device-tgt-addr on a bridge (EFAULT)',
    () => omit('ibm,device-tgt-addr', '0000:00:00.0'),
  ],
  ['Grace', () => generateGrace({})],
];

describe('probeHost (statuses without regions)', () => {
  for (const [name, tree] of TREES) {
    it(`gives the full doctor's verdict on every function: ${name}`, () => {
      const host = buildHost(tree());
      const full = runHostDoctor(host).map(
        ({ address, vendor, device, role, iommuGroup, result, errno, reason }) => ({
          address,
          vendor,
          device,
          role,
          iommuGroup,
          result,
          errno,
          reason,
        }),
      );
      assert.ok(full.some((e) => e.result === 'nvlink2' || e.result === 'nvgrace'));
      assert.deepEqual(probeHost(host), full);
    });
  }
});
