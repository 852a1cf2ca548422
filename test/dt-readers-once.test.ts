/**
 * Device-tree property readers exist once, in src/fdt/props.ts with the kernel's of_*
 * semantics: outside src/fdt no production code takes a property's raw bytes
 * (FdtNode.getProperty) to decode them itself. The Witherspoon generator may, to rewrite bytes
 * of a tree it is building (faults that truncate or append), never to read a value. The
 * doctor's linter (src/nvlink2/lint) may too: it judges a property's raw shape (its length, a
 * cell past the end, text without its NUL), which the kernel-semantics readers refuse before a
 * rule could name it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { it } from 'node:test';
import ts from 'typescript';
import { ROOT } from './support/root.ts';
import { tokens, tsFiles } from './support/source-tokens.ts';

const ALLOWED = /^src\/fdt\/|^src\/platform\/witherspoon\/|^src\/nvlink2\/lint\/|\.test\.ts$/;

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
