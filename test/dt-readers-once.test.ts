/**
 * Device-tree property readers exist once, in src/fdt/props.ts with the kernel's of_*
 * semantics: outside src/fdt no production code takes a property's raw bytes
 * (FdtNode.getProperty) to decode them itself. The Witherspoon generator may, to rewrite bytes
 * of a tree it is building (faults that truncate or append), never to read a value.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { it } from 'node:test';
import ts from 'typescript';
import { tokens, tsFiles } from './support/source-tokens.ts';

const ROOT = resolve(import.meta.dirname, '..');
const ALLOWED = /^src\/fdt\/|^src\/platform\/witherspoon\/|\.test\.ts$|\/testing\//;

it('outside src/fdt, property bytes are read through the fdt readers', () => {
  const bad: string[] = [];
  for (const file of tsFiles(join(ROOT, 'src'))) {
    const path = relative(ROOT, file);
    if (ALLOWED.test(path)) continue;
    for (const t of tokens(readFileSync(file, 'utf8'))) {
      if (t.kind === ts.SyntaxKind.Identifier && t.text === 'getProperty')
        bad.push(`${path}:${t.line}`);
    }
  }
  assert.deepEqual(bad, []);
});
