/**
 * Source text as the structure tests read it: the .ts files under a folder, their tokens with
 * comments left out (TypeScript's own scanner, so strings, templates and regular expressions
 * are told apart from comments), and the relative modules they import.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';

export function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

export interface Token {
  readonly kind: ts.SyntaxKind;
  readonly text: string;
  readonly line: number;
}

/** Every token of `text` but comments and whitespace, with its 1-based line. */
export function tokens(text: string): Token[] {
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, true, ts.LanguageVariant.Standard, text);
  const out: Token[] = [];
  let previous = ts.SyntaxKind.Unknown;
  // Open braces inside each template substitution still open: the `}` at 0 resumes the template.
  const substitutions: number[] = [];
  for (let kind = scanner.scan(); kind !== ts.SyntaxKind.EndOfFileToken; kind = scanner.scan()) {
    const depth = substitutions.length - 1;
    if (kind === ts.SyntaxKind.OpenBraceToken && depth >= 0) substitutions[depth]!++;
    if (kind === ts.SyntaxKind.CloseBraceToken && depth >= 0) {
      if (substitutions[depth] === 0) {
        substitutions.pop();
        kind = scanner.reScanTemplateToken(false);
      } else substitutions[depth]!--;
    }
    if (kind === ts.SyntaxKind.TemplateHead || kind === ts.SyntaxKind.TemplateMiddle) {
      substitutions.push(0);
    }
    // A `/` where an expression starts is a regular expression.
    if (
      (kind === ts.SyntaxKind.SlashToken || kind === ts.SyntaxKind.SlashEqualsToken) &&
      !isOperandEnd(previous)
    ) {
      kind = scanner.reScanSlashToken();
    }
    const line = text.slice(0, scanner.getTokenStart()).split('\n').length;
    out.push({ kind, text: scanner.getTokenText(), line });
    previous = kind;
  }
  return out;
}

function isOperandEnd(kind: ts.SyntaxKind): boolean {
  return (
    kind === ts.SyntaxKind.Identifier ||
    kind === ts.SyntaxKind.NumericLiteral ||
    kind === ts.SyntaxKind.BigIntLiteral ||
    kind === ts.SyntaxKind.StringLiteral ||
    kind === ts.SyntaxKind.CloseParenToken ||
    kind === ts.SyntaxKind.CloseBracketToken ||
    kind === ts.SyntaxKind.CloseBraceToken ||
    kind === ts.SyntaxKind.ThisKeyword
  );
}

/** The relative module specifiers of `import … from` / `export … from` / `import(…)`. */
export function imports(path: string): string[] {
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      out.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      out.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(path), s));
}
