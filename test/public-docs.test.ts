/**
 * Every exported declaration of src/ carries TSDoc (issue 12.7; STYLE.md rule 7): a `/** … *\/`
 * comment on the exported function, class, interface, type, enum or variable statement,
 * found by TypeScript's own parser (ts.getJSDocCommentsAndTags). An exported function whose own
 * body throws must say so with `@throws`. Tests (`*.test.ts`) are left out (their helpers live
 * in test/support/, outside src/). Each missing comment prints as `src/x/y.ts:LINE: function name: no TSDoc`, so whoever
 * merges new modules sees exactly what to write.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { ROOT } from './support/root.ts';

const SRC = join(ROOT, 'src');

function publicSources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) publicSources(path, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

/** One exported declaration: where, what, and what its comment says. */
interface Exported {
  readonly where: string;
  readonly what: string;
  readonly docs: readonly ts.JSDoc[];
  readonly throwsInBody: boolean;
}

const isExported = (node: ts.Node): boolean =>
  ts.canHaveModifiers(node) &&
  (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);

/** Whether `body` throws itself (not from a nested function or class it defines). */
function throwsDirectly(body: ts.Node | undefined): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isThrowStatement(n)) {
      found = true;
      return;
    }
    if (ts.isFunctionLike(n) || ts.isClassLike(n)) return;
    ts.forEachChild(n, visit);
  };
  if (body) ts.forEachChild(body, visit);
  return found;
}

function kindName(node: ts.Node): string {
  if (ts.isFunctionDeclaration(node)) return 'function';
  if (ts.isClassDeclaration(node)) return 'class';
  if (ts.isInterfaceDeclaration(node)) return 'interface';
  if (ts.isTypeAliasDeclaration(node)) return 'type';
  if (ts.isEnumDeclaration(node)) return 'enum';
  if (ts.isVariableStatement(node)) return 'const';
  return ts.SyntaxKind[node.kind];
}

function declaredName(node: ts.Node): string {
  if (ts.isVariableStatement(node))
    return node.declarationList.declarations.map((d) => d.name.getText()).join(', ');
  const name = (node as ts.NamedDeclaration).name;
  return name ? name.getText() : 'default';
}

/** The exported top-level declarations of one module (re-exports are documented at home). */
export function exportedDeclarations(file: string, text: string): Exported[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Exported[] = [];
  const seen = new Set<string>(); // overloads: the first signature carries the comment
  for (const node of source.statements) {
    if (!isExported(node)) continue;
    const name = declaredName(node);
    const key = `${kindName(node)} ${name}`;
    if (ts.isFunctionDeclaration(node)) {
      if (seen.has(key)) continue;
      seen.add(key);
    }
    const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    const docs = ts.getJSDocCommentsAndTags(node).filter((d): d is ts.JSDoc => ts.isJSDoc(d));
    let throwsInBody = false;
    if (ts.isFunctionDeclaration(node)) throwsInBody = throwsDirectly(node.body);
    out.push({ where: `${file}:${line}`, what: key, docs, throwsInBody });
  }
  return out;
}

const hasThrowsTag = (docs: readonly ts.JSDoc[]): boolean =>
  docs.some((d) => (d.tags ?? []).some((t) => t.tagName.text === 'throws'));

/** The complaints about one module, one line each. */
export function missingDocs(file: string, text: string): string[] {
  const out: string[] = [];
  for (const e of exportedDeclarations(file, text)) {
    if (e.docs.length === 0) out.push(`${e.where}: ${e.what}: no TSDoc`);
    else if (e.throwsInBody && !hasThrowsTag(e.docs))
      out.push(`${e.where}: ${e.what}: throws, but its TSDoc has no @throws`);
  }
  return out;
}

const files = publicSources(SRC).map((abs) => relative(ROOT, abs).split(sep).join('/'));

describe('public TSDoc of src/ (*.test.ts left out)', () => {
  it('finds the modules and their exports (the test itself can fail)', () => {
    assert.ok(files.length > 100, `only ${files.length} modules found`);
    const all = files.flatMap((f) => exportedDeclarations(f, readFileSync(join(ROOT, f), 'utf8')));
    assert.ok(all.length > 300, `only ${all.length} exported declarations found`);
  });

  it('every exported declaration has TSDoc; every exported function that throws, @throws', () => {
    const bad = files.flatMap((f) => missingDocs(f, readFileSync(join(ROOT, f), 'utf8')));
    assert.deepEqual(
      bad,
      [],
      `${bad.length} exported declarations to document:\n  ${bad.join('\n  ')}`,
    );
  });

  it('the check catches what it is for', () => {
    const text = [
      '/** Documented. */',
      'export function a(): void {}',
      '// A line comment is not TSDoc.',
      'export const b = 1;',
      'export interface C { x: number }',
      '/** Throws, silently. */',
      "export function d(): void { throw new Error('x'); }",
      '/** Throws. @throws Error always */',
      "export function e(): void { throw new Error('x'); }",
      '/** Throws only inside a callback it makes. */',
      "export function f(): () => void { return () => { throw new Error('x'); }; }",
      'function g(): void {}',
      "export { g } from './g.ts';",
    ].join('\n');
    assert.deepEqual(missingDocs('src/x.ts', text), [
      'src/x.ts:4: const b: no TSDoc',
      'src/x.ts:5: interface C: no TSDoc',
      'src/x.ts:7: function d: throws, but its TSDoc has no @throws',
    ]);
  });
});
