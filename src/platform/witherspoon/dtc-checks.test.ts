/**
 * Every tree `dt generate` writes passes dtc's own checks without one warning (dtc -I dtb -O dtb,
 * no -q): skiboot gives each `link@N` a `reg` of N under an npu node with #address-cells 1 and
 * #size-cells 0 (hdata/spira.c add_npu); without them dtc warns unit_address_vs_reg per link.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hasDtc } from '../../../test/support/fdt/dtc.ts';
import { serializeFdt } from '../../fdt/index.ts';
import { generateWitherspoon } from './index.ts';
import { cleanWitherspoonVariants } from './variants.ts';

describe('dtc checks every generated variant', {
  skip: hasDtc() ? false : 'dtc not installed',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dtc-checks-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const variants = cleanWitherspoonVariants();

  it('enumerates 36 clean variants', () => {
    assert.equal(variants.length, 36);
  });

  for (const { label, options } of variants) {
    it(`${label}: dtc -I dtb -O dtb prints nothing on stderr`, () => {
      const file = join(dir, 'tree.dtb');
      writeFileSync(file, serializeFdt(generateWitherspoon(options)));
      const r = spawnSync('dtc', ['-I', 'dtb', '-O', 'dtb', '-o', '/dev/null', file], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0);
      assert.equal(r.stderr, '');
    });
  }
});
