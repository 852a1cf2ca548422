/**
 * Every Grace tree `dt generate --machine grace-hopper|grace-blackwell` writes passes dtc's own
 * checks without one warning: each host bridge carries `ranges` (a 64-bit prefetchable window),
 * without which dtc's check_pci_bridge warns "missing ranges for PCI bridge".
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hasDtc } from '../../../test/support/fdt/dtc.ts';
import { serializeFdt } from '../../fdt/index.ts';
import { generateGrace } from './index.ts';

describe('dtc checks the Grace trees', { skip: hasDtc() ? false : 'dtc not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dtc-grace-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  for (const machine of ['grace-hopper', 'grace-blackwell'] as const) {
    for (const gpus of [1, 2, 4]) {
      it(`${machine} with ${gpus} GPU(s): dtc -I dtb -O dtb prints nothing on stderr`, () => {
        const file = join(dir, 'tree.dtb');
        writeFileSync(file, serializeFdt(generateGrace({ machine, gpus })));
        const r = spawnSync('dtc', ['-I', 'dtb', '-O', 'dtb', '-o', '/dev/null', file], {
          encoding: 'utf8',
        });
        assert.equal(r.status, 0);
        assert.equal(r.stderr, '');
      });
    }
  }
});
