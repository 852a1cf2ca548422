/**
 * Devicetree source (DTS) text for a tree, formatted as `dtc -I dtb -O dts` decompiles a blob
 * (dtc's treesource.c): strings when the bytes are text, u32 cells when the length allows,
 * bytes otherwise. Syntax per the Devicetree Specification v0.3, chapter 6 "Devicetree Source
 * (DTS) Format"; names are checked against dtc's lexer (dtc-lexer.l, PROPNODECHAR) so that
 * `dtc -I dts` re-reads every file we write (that nests no deeper than dtc's parser allows:
 * about 3,300 levels for dtc 1.6, whose bison stack runs out). Any depth is written, without
 * recursion and in linear space (DTS_MAX_INDENT).
 */

import { hex, hexDigits } from '../text/index.ts';
import { be32Cells } from './be.ts';
import { FdtError } from './errors.ts';
import type { Fdt, FdtNode } from './tree.ts';

/**
 * No line has more tabs than this. dtc indents by depth (treesource.c), which makes
 * a deep tree's text quadratic (a 100,000-deep chain would be 10 GB); the capped text reads
 * back the same, and equals dtc's output for every tree Linux keeps whole (depth below 64).
 */
export const DTS_MAX_INDENT = 64;

/** Characters dtc's lexer accepts in a node or property name. */
const NAME_CHARS = /^[a-zA-Z0-9,._+*#?@-]+$/;

/** Escapes dtc's string lexer understands, for the control characters we call text. */
const ESCAPES: Record<number, string> = {
  7: '\\a',
  8: '\\b',
  9: '\\t',
  10: '\\n',
  11: '\\v',
  12: '\\f',
  13: '\\r',
  34: '\\"',
  92: '\\\\',
};

function checkName(name: string, node: FdtNode, what: string): string {
  if (!NAME_CHARS.test(name)) {
    throw new FdtError(
      'BAD_NAME',
      node.offset ?? 0,
      `a ${what} of [a-zA-Z0-9,._+*#?@-] characters at ${node.shortPath}, found '${name}'`,
      'tree',
    );
  }
  return name;
}

/** dtc refuses a node with two properties, or two children, of one name. */
function checkUnique(node: FdtNode): void {
  for (const [what, names] of [
    ['property', node.properties.map((p) => p.name)],
    ['child node', node.children.map((c) => c.name)],
  ] as const) {
    const seen = new Set<string>();
    for (const name of names) {
      if (seen.has(name)) {
        throw new FdtError(
          'BAD_NAME',
          node.offset ?? 0,
          `unique ${what} names in ${node.shortPath}, found '${name}' twice`,
          'tree',
        );
      }
      seen.add(name);
    }
  }
}

/** Printable text (and the escapable controls), NUL-terminated, no empty strings. */
function isStringList(v: Uint8Array): boolean {
  if (v.length < 2 || v[v.length - 1] !== 0 || v[0] === 0) return false;
  for (let i = 0; i < v.length - 1; i++) {
    const c = v[i]!;
    if (c === 0) {
      if (v[i + 1] === 0) return false;
    } else if ((c < 0x20 || c > 0x7e) && ESCAPES[c] === undefined) {
      return false;
    }
  }
  return true;
}

function formatStrings(v: Uint8Array): string {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c === 0) {
      parts.push(`"${current}"`);
      current = '';
    } else {
      current += ESCAPES[c] ?? String.fromCharCode(c);
    }
  }
  return parts.join(', ');
}

function formatCells(v: Uint8Array): string {
  return `<${be32Cells(v)
    .map((c) => hex(c))
    .join(' ')}>`;
}

function formatBytes(v: Uint8Array): string {
  return `[${Array.from(v, (b) => hexDigits(b, 2)).join(' ')}]`;
}

/** A property value as dtc would decompile it; '' for an empty property. */
export function formatPropertyValue(value: Uint8Array): string {
  if (value.length === 0) return '';
  if (isStringList(value)) return formatStrings(value);
  if (value.length % 4 === 0) return formatCells(value);
  return formatBytes(value);
}

/** Appends the DTS lines of `top` and its subtree, without recursion. */
function emitNode(top: FdtNode, lines: string[], baseDepth: number): void {
  const stack: [FdtNode, number, boolean][] = [[top, baseDepth, true]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [node, depth, entering] = item;
    const indent = '\t'.repeat(Math.min(depth, DTS_MAX_INDENT));
    if (!entering) {
      lines.push(`${indent}};`);
      continue;
    }
    const name = node.parent ? checkName(node.name, node, 'node name') : '/';
    // dtc separates a node from the properties and siblings before it with a blank line.
    if (node !== top) lines.push('');
    lines.push(`${indent}${name} {`);
    checkUnique(node);
    const inner = '\t'.repeat(Math.min(depth + 1, DTS_MAX_INDENT));
    for (const prop of node.properties) {
      const propName = checkName(prop.name, node, 'property name');
      const value = formatPropertyValue(prop.value);
      lines.push(value ? `${inner}${propName} = ${value};` : `${inner}${propName};`);
    }
    stack.push([node, depth, false]);
    for (let i = node.children.length - 1; i >= 0; i--) {
      stack.push([node.children[i]!, depth + 1, true]);
    }
  }
}

/**
 * One node and its subtree as DTS (the root is written as `/`). Not a complete file: no
 * `/dts-v1/;` header.
 * @throws FdtError BAD_NAME when a name holds characters dtc cannot read back, or repeats.
 */
export function nodeToDts(node: FdtNode): string {
  const lines: string[] = [];
  emitNode(node, lines, 0);
  return `${tidy(lines).join('\n')}\n`;
}

/**
 * The whole tree as a DTS file: `/dts-v1/;`, one `/memreserve/` line per reservation, the tree.
 * @throws FdtError BAD_NAME when a name holds characters dtc cannot read back, or repeats.
 */
export function toDts(fdt: Fdt): string {
  const lines = ['/dts-v1/;', ''];
  for (const r of fdt.memoryReservations) {
    if (r.address === 0n && r.size === 0n) continue; // would end the list, as in serializeFdt
    const hex64 = (n: bigint): string => hex(BigInt.asUintN(64, n), 16);
    lines.push(`/memreserve/\t${hex64(r.address)} ${hex64(r.size)};`);
  }
  emitNode(fdt.root, lines, 0);
  return `${tidy(lines).join('\n')}\n`;
}

/** No blank line right after an opening brace. */
function tidy(lines: string[]): string[] {
  return lines.filter((line, i) => !(line === '' && (lines[i - 1] ?? '').endsWith(' {')));
}
