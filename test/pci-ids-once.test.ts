/**
 * PCI vendor and device IDs are defined once (src/platform/pci-ids.ts, citing pci_ids.h,
 * pci.ids and skiboot) and named everywhere else: no other production file under src/ spells
 * one as a number, nor a region type made of one (VFIO_REGION_TYPE_PCI_VENDOR_TYPE | vendor).
 * Tests and their fixtures may: they state the expected bytes independently.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { it } from 'node:test';
import ts from 'typescript';
import { ROOT } from './support/root.ts';
import { tokens, tsFiles } from './support/source-tokens.ts';

const HOME = join(ROOT, 'src', 'platform', 'pci-ids.ts');
/** The emulated functions' vendor and device IDs, and the NVLink2 region types. */
const IDS =
  /^0x0*(10de|1014|8086|1db1|1db5|15f9|04ea|04c1|2342|2345|2348|2941|31c2|800010de|80001014)$/i;
const NOT_PRODUCTION = /\.test\.ts$/;

it('only src/platform/pci-ids.ts spells a PCI ID as a number', () => {
  const bad: string[] = [];
  for (const file of tsFiles(join(ROOT, 'src'))) {
    if (file === HOME || NOT_PRODUCTION.test(file)) continue;
    for (const t of tokens(readFileSync(file, 'utf8'))) {
      if (t.kind === ts.SyntaxKind.NumericLiteral && IDS.test(t.text))
        bad.push(`${relative(ROOT, file)}:${t.line}: ${t.text}`);
    }
  }
  assert.deepEqual(bad, []);
});
