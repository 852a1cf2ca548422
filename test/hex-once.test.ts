/**
 * hex() is defined once, in src/text (hex, hexDigits): production code of src/ writes no hex
 * number by hand. Caught: a template that puts `0x` before `${x.toString(16)}` (a local
 * `const h = (v) => \`0x${v.toString(16)}\`` is one), and `x.toString(16).padStart(…)`.
 * Bare digits (`memory@${a.toString(16)}`, kernel messages that print %x) are left alone:
 * hexDigits() is the one way to pad them, and unpadded they are the digits.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { ROOT } from './support/root.ts';
import { tsFiles } from './support/source-tokens.ts';

const HOME = 'src/text/hex.ts';

/**
 * Leaves other than text, which import no other folder (test/layering.test.ts), text included:
 * trace's Chrome sink writes a bigint argument as `0x…` itself.
 */
const LEAVES_WITHOUT_TEXT = /^src\/(trace|native|errors)\//;

/** Whether `node` is `x.toString(16)`. */
function isToHex(node: ts.Node): node is ts.CallExpression {
  return (
    ts.isCallExpression(node) &&
    ts.isPropertyAccessExpression(node.expression) &&
    node.expression.name.text === 'toString' &&
    node.arguments.length === 1 &&
    ts.isNumericLiteral(node.arguments[0] as ts.Expression) &&
    (node.arguments[0] as ts.NumericLiteral).text === '16'
  );
}

/** `file:line: what` for each hex number `text` writes by hand. */
export function handHex(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const at = (n: ts.Node) => source.getLineAndCharacterOfPosition(n.getStart(source)).line + 1;
  const visit = (node: ts.Node): void => {
    if (ts.isTemplateExpression(node)) {
      let before = node.head.text;
      for (const span of node.templateSpans) {
        if (before.endsWith('0x') && isToHex(span.expression))
          out.push(`${file}:${at(span)}: 0x\${${span.expression.getText(source)}} (use hex())`);
        before = span.literal.text;
      }
    }
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      node.expression.name.text === 'padStart' &&
      isToHex(node.expression.expression)
    )
      out.push(`${file}:${at(node)}: ${node.getText(source)} (use hexDigits(v, width))`);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

describe('hex numbers are written by src/text hex() only', () => {
  it('production code of src/ writes no 0x… nor padded hex digits by hand', () => {
    const bad: string[] = [];
    for (const abs of tsFiles(join(ROOT, 'src'))) {
      const file = relative(ROOT, abs).split(sep).join('/');
      if (file.endsWith('.test.ts') || file === HOME || LEAVES_WITHOUT_TEXT.test(file)) continue;
      bad.push(...handHex(file, readFileSync(abs, 'utf8')));
    }
    assert.deepEqual(bad, [], `hex written by hand:\n  ${bad.join('\n  ')}`);
  });

  it('the check catches what it is for', () => {
    const text = [
      'const h = (v: number) => `0x${v.toString(16)}`;',
      'const s = `at ${a} 0x${b.toString(16)} end`;',
      "const p = at.toString(16).padStart(2, '0');",
      'const u = `memory@${a.toString(16)}`;',
      'const k = `0x${hex(a)}`;',
      "const q = '0x' + a.toString(16);",
    ].join('\n');
    assert.deepEqual(handHex('src/x.ts', text), [
      'src/x.ts:1: 0x${v.toString(16)} (use hex())',
      'src/x.ts:2: 0x${b.toString(16)} (use hex())',
      "src/x.ts:3: at.toString(16).padStart(2, '0') (use hexDigits(v, width))",
    ]);
  });
});
