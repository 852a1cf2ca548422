import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultPlatformTree } from '../platform/index.ts';
import { VfioError } from '../vfio/index.ts';
import { createMachine } from './machine.ts';

describe('createMachine', () => {
  it('boots every GPU into the host partition (LPID 0) and claims KVM host/reserved LPIDs', () => {
    const m = createMachine(defaultPlatformTree());
    try {
      const entries = m.firmwareSnapshot().flatMap((n) => n.bdfMap);
      assert.equal(entries.length, 6);
      assert.ok(entries.every((e) => e.lpid === 0 && e.valid));
      assert.deepEqual(m.lpids.inUse(), [0, 0xfff]);
    } finally {
      m.dispose();
    }
  });

  it('creates one device per function on first use and serves GPUs and bridges', () => {
    const m = createMachine(defaultPlatformTree());
    try {
      const served = m.servedFunctions();
      assert.equal(served.length, 18);
      assert.ok(served.every((f) => f.role !== 'other'));
      const gpu = served.find((f) => f.role === 'gpu')!;
      assert.equal(m.device(gpu.name), m.device(gpu.name), 'the same device object');
      assert.throws(
        () => m.device('ffff:00:00.0'),
        (e: unknown) => e instanceof VfioError && e.code === 'ENODEV',
      );
    } finally {
      m.dispose();
    }
  });

  it("gives the doctor's verdict per function without touching the machine's firmware", () => {
    const m = createMachine(defaultPlatformTree());
    try {
      const before = JSON.stringify(m.firmwareSnapshot(), (_k, v) =>
        typeof v === 'bigint' ? `${v}` : v,
      );
      const statuses = m.statuses();
      assert.equal(statuses.length, m.functions.length);
      assert.ok(statuses.filter((s) => s.role !== 'other').every((s) => s.result === 'nvlink2'));
      assert.ok(statuses.filter((s) => s.role === 'other').every((s) => s.result === 'plain'));
      const after = JSON.stringify(m.firmwareSnapshot(), (_k, v) =>
        typeof v === 'bigint' ? `${v}` : v,
      );
      assert.equal(after, before);
      assert.equal(m.status(statuses[0]!.address), statuses[0]);
    } finally {
      m.dispose();
    }
  });
});
