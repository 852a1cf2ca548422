/**
 * Errno values are named, never written as numbers: production code of src/ says
 * `Errno.EINVAL`, not `22` (src/errors/errno.ts is the one table; its own file is left out).
 * A number counts as an errno when it is what an errno-named binding (`errno`, `remoteErrno`,
 * `sendErrno`…) is given, defaults to or is compared with, directly or as a branch of `?:`,
 * `??` or `||`. Zero ("no error") is not an errno.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { ROOT } from './support/root.ts';
import { tsFiles } from './support/source-tokens.ts';

const ERRNO_NAME = /errno/i;
const TABLE = 'src/errors/errno.ts';

/** `file:line: N given to errno-named X` for each errno written as a number in `text`. */
export function errnoLiterals(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const named = (n: ts.Node | undefined) => n !== undefined && ERRNO_NAME.test(n.getText(source));
  const visit = (node: ts.Node): void => {
    if (ts.isNumericLiteral(node) && Number(node.text) !== 0) {
      // Up through the expressions that pass a value on unchanged.
      let at: ts.Node = node;
      let parent = at.parent;
      while (
        ts.isParenthesizedExpression(parent) ||
        ts.isConditionalExpression(parent) ||
        (ts.isBinaryExpression(parent) &&
          [ts.SyntaxKind.QuestionQuestionToken, ts.SyntaxKind.BarBarToken].includes(
            parent.operatorToken.kind,
          ))
      ) {
        if (ts.isConditionalExpression(parent) && parent.condition === at) break;
        at = parent;
        parent = at.parent;
      }
      let target: ts.Node | undefined;
      if (
        (ts.isVariableDeclaration(parent) ||
          ts.isPropertyAssignment(parent) ||
          ts.isParameter(parent) ||
          ts.isPropertyDeclaration(parent)) &&
        parent.initializer === at
      )
        target = parent.name;
      else if (ts.isBinaryExpression(parent))
        target = parent.left === at ? parent.right : parent.left;
      if (named(target)) {
        const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
        out.push(`${file}:${line}: ${node.text} given to ${target?.getText(source)}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

describe('errno values are named (Errno.X), not numbers', () => {
  it('production code of src/ writes no errno as a number', () => {
    const bad: string[] = [];
    for (const abs of tsFiles(join(ROOT, 'src'))) {
      const file = relative(ROOT, abs).split(sep).join('/');
      if (file.endsWith('.test.ts') || file === TABLE) continue;
      bad.push(...errnoLiterals(file, readFileSync(abs, 'utf8')));
    }
    assert.deepEqual(bad, [], `errnos written as numbers (use Errno.X):\n  ${bad.join('\n  ')}`);
  });

  it('the check catches what it is for', () => {
    const text = [
      'const errno = e instanceof VfioError ? e.errno : 22;',
      'const a = { remoteErrno: 5 };',
      'if (h.sendErrno === 11) f();',
      'const ok = h.errno !== 0;',
      'const b = { errno: getU32(bytes, 12) };',
      'const c = e.errno ?? Errno.EIO;',
      'const d = x ? 22 : 5;',
    ].join('\n');
    assert.deepEqual(errnoLiterals('src/x.ts', text), [
      'src/x.ts:1: 22 given to errno',
      'src/x.ts:2: 5 given to remoteErrno',
      'src/x.ts:3: 11 given to h.sendErrno',
    ]);
  });
});
