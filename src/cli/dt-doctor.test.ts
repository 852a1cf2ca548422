import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from '../../test/support/cli.ts';
import { serializeFdt } from '../fdt/index.ts';
import { generateWitherspoon } from '../platform/index.ts';

function cli(...args: string[]) {
  return runCli(['dt', 'doctor', ...args]);
}

describe('vfio-nvlink2 dt doctor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dt-doctor-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--json on the built-in platform: one object per function with the documented fields', () => {
    const r = cli('--json');
    assert.equal(r.status, 0, r.stderr);
    const entries = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.equal(entries.length, 24);
    const gpu = entries.find((e) => e.address === '0002:01:00.0');
    assert.deepEqual(gpu, {
      address: '0002:01:00.0',
      vendor: '0x10de',
      device: '0x1db1',
      role: 'gpu',
      // Linux 5.12's compound group of chip 0's NPU (see src/platform/host.test.ts)
      iommuGroup: 6,
      result: 'nvlink2',
      errno: null,
      reason: null,
      regions: [
        {
          index: 9,
          type: '0x800010de',
          subtype: 1,
          size: '0x2000000000',
          flags: 7,
          caps: { tgt: '0x3e000000000' },
        },
      ],
      warnings: [],
    });
  });

  it('a tree with a fault: the errno and reason, in the table for people', () => {
    const file = join(dir, 'no-speed.dtb');
    writeFileSync(
      file,
      serializeFdt(
        generateWitherspoon({ omit: [{ property: 'ibm,nvlink-speed', target: '0001:00:01.1' }] }),
      ),
    );
    const r = cli(file);
    assert.equal(r.status, 0, r.stderr);
    const line = r.stdout.split('\n').find((l) => l.startsWith('0001:00:01.1'));
    assert.match(
      line ?? '',
      /bridge +0 +error +EFAULT: bridge 0001:00:01.1 has no ibm,nvlink-speed$/,
    );
    assert.match(r.stdout, /warning: No ibm,nvlink-speed found/);
    // A root port has no IOMMU group (bridges skip DMA setup, pnv_pci_ioda_dma_dev_setup).
    assert.match(r.stdout, /^0002:00:00\.0 +1014:04c1 +other +- +plain/m);
    assert.match(r.stdout, /24 functions: 17 nvlink2, 6 plain, 1 error/);
  });

  it('rejects an unknown kernel version', () => {
    const r = cli('--kernel', '4.19');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--kernel must be one of 5.0, 5.1, 5.2, 5.7, 5.12/);
  });
});
