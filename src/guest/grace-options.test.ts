/**
 * guest's QEMU plan for Grace GPUs: a GPU nvgrace-gpu bound (fake BAR2/BAR4) gets a root port
 * reserving BAR2 + BAR4 of 64-bit prefetchable window and 8 generic-initiator NUMA nodes; one
 * whose probe failed (a plain vfio-pci device, no fake BARs) gets neither.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { formatGraceQemuPlan, graceQemuPlan } from './grace-options.ts';

const GiB = 1n << 30n;

it('a bound GPU reserves BAR2 + BAR4 and gets 8 NUMA nodes; a plain one neither', () => {
  const plan = graceQemuPlan(
    [
      {
        address: '0009:01:00.0',
        socket: '/s/a.sock',
        model: 'GH200',
        barSizes: [16n << 20n, 0n, GiB, 0n, 2n * GiB, 0n],
      },
      { address: '0019:01:00.0', socket: '/s/b.sock', model: 'GH200', barSizes: [16n << 20n] },
    ],
    { ramBytes: 512n << 20n },
  );
  assert.deepEqual(plan.gpus[0]?.nodes, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(plan.gpus[0]?.pref64Reserve, 3n * GiB);
  assert.deepEqual(plan.gpus[1]?.nodes, []);
  const rp1 = plan.args.find((a) => a.includes('id=rp1'));
  assert.ok(rp1 && !rp1.includes('pref64-reserve'), rp1);
  assert.ok(!plan.args.some((a) => a.includes('pci-dev=gpu1')));
  assert.match(formatGraceQemuPlan(plan), /0019:01:00\.0 GH200: no coherent memory/);
});
