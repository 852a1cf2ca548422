/**
 * The doctor's table for as many functions as a tree can hold (two PHBs of 65,536 addresses
 * each): no argument spread of one value per row, which overflows the stack past ~125,000.
 * Its verdicts with the probes' memory in this process (the default) are those with memfds,
 * the server's memory, for the built-in tree and every fault `dt generate` can inject.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generatorFaults } from '../../test/support/nvlink2/lint/faults.ts';
import { buildHost, generateWitherspoon } from '../platform/index.ts';
import { createMemfdMemory } from '../vfio/index.ts';
import { type DoctorEntry, formatDoctorReport, runDoctorOnHost } from './doctor.ts';
import { KERNEL_VERSIONS } from './kernel-version.ts';

test('200,000 functions: one row each, columns as wide as their widest cell', () => {
  const entries: DoctorEntry[] = Array.from({ length: 200_000 }, (_, i) => ({
    address: `${(i >> 16).toString(16).padStart(4, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:00.${i & 7}`,
    vendor: '0x1234',
    device: '0x0001',
    role: 'other',
    iommuGroup: i,
    result: 'plain',
    errno: null,
    reason: 'no NVLink2 hook for vendor 0x1234',
    regions: [],
    warnings: [],
  }));
  const lines = formatDoctorReport(entries).split('\n');
  assert.equal(lines.length, 1 + 200_000 + 2);
  assert.equal(lines[0], 'ADDRESS       ID         ROLE   GROUP   RESULT  WHAT');
  assert.equal(
    lines[1],
    '0000:00:00.0  1234:0001  other  0       plain   no NVLink2 hook for vendor 0x1234',
  );
  assert.equal(lines.at(-1), '200000 functions: 0 nvlink2, 200000 plain, 0 error');
});

test('every verdict with the memory in this process is the one with memfds, fault by fault', () => {
  const trees = [{ flags: 'built-in', options: {} }, ...generatorFaults()];
  let examined = 0;
  trees.forEach(({ flags, options }, i) => {
    let host: ReturnType<typeof buildHost>;
    try {
      host = buildHost(generateWitherspoon(options));
    } catch {
      return; // no host model (the doctor reports why instead of probing)
    }
    // A kernel each, in turn: every kernel over the faults, each fault once.
    const kernel = KERNEL_VERSIONS[i % KERNEL_VERSIONS.length];
    const probed = runDoctorOnHost(host, { kernel });
    const withMemfds = runDoctorOnHost(host, { kernel, memory: createMemfdMemory });
    assert.deepEqual(probed, withMemfds, `${flags} (kernel ${kernel})`);
    examined++;
  });
  assert.ok(examined > 100, `only ${examined} trees had a host model`);
});
