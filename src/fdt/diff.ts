/**
 * A semantic diff of two trees: nodes added and removed (a whole subtree once, at its root),
 * properties added, removed and changed, with phandle-valued properties compared by the paths
 * their phandles resolve to, so renumbered phandles are no difference; `phandle` and
 * `linux,phandle` themselves count only when one side has one and the other none. Values print
 * as DTS (dts.ts). Nodes pair up by name under paired parents, without recursion, and paths are
 * built only for what is reported, so deep trees cost linear time.
 */

import { hex } from '../text/index.ts';
import { be32Cells } from './be.ts';
import { formatPropertyValue } from './dts.ts';
import type { Fdt, FdtNode, MemoryReservation } from './tree.ts';

/**
 * One difference between two trees: a node added or removed (with its descendants), or a property
 * added, removed or changed (old and new values).
 */
export type DiffEntry =
  | {
      readonly kind: 'node-added' | 'node-removed';
      readonly path: string;
      readonly descendants: number;
    }
  | {
      readonly kind: 'property-added' | 'property-removed';
      readonly path: string;
      readonly property: string;
      readonly value: string;
    }
  | {
      readonly kind: 'property-changed';
      readonly path: string;
      readonly property: string;
      readonly from: string;
      readonly to: string;
    }
  | { readonly kind: 'memreserve-changed'; readonly from: string; readonly to: string };

/**
 * Options of `diffTrees`: which properties hold phandles (compared by the node they point at, not
 * by number).
 */
export interface DiffOptions {
  /** Properties whose every cell is a phandle (e.g. `interrupt-parent`, `ibm,npu`). */
  readonly phandleProperties: ReadonlySet<string>;
}

const PHANDLE_NAMES = new Set(['phandle', 'linux,phandle']);

function cellsOf(v: Uint8Array): number[] | undefined {
  if (v.length === 0 || v.length % 4 !== 0) return undefined;
  return be32Cells(v);
}

/** A phandle list as `<&{/path} …>`; a dangling cell keeps its number. */
function phandleText(fdt: Fdt, v: Uint8Array): string {
  const cells = cellsOf(v);
  if (!cells) return formatPropertyValue(v);
  return `<${cells
    .map((c) => {
      const n = fdt.findByPhandle(c);
      return n ? `&{${n.path}}` : `${hex(c)} (no such phandle)`;
    })
    .join(' ')}>`;
}

function valueText(fdt: Fdt, name: string, v: Uint8Array, options: DiffOptions): string {
  return options.phandleProperties.has(name) ? phandleText(fdt, v) : formatPropertyValue(v);
}

function countDescendants(node: FdtNode): number {
  let n = -1;
  for (const _ of node.walk()) n++;
  return n;
}

function memreserveText(list: readonly MemoryReservation[]): string {
  return list.map((r) => `${hex(r.address)} ${hex(r.size)}`).join(', ') || 'none';
}

/** What changed from `a` to `b`, in `a`'s tree order (nodes only in `b` after their siblings). */
export function diffTrees(a: Fdt, b: Fdt, options: DiffOptions): DiffEntry[] {
  const out: DiffEntry[] = [];
  const ma = memreserveText(a.memoryReservations);
  const mb = memreserveText(b.memoryReservations);
  if (ma !== mb) out.push({ kind: 'memreserve-changed', from: ma, to: mb });
  const stack: [FdtNode, FdtNode][] = [[a.root, b.root]];
  for (let pair = stack.pop(); pair; pair = stack.pop()) {
    const [x, y] = pair;
    let path: string | undefined;
    const here = () => {
      path ??= x.path;
      return path;
    };
    const yProps = new Map(y.properties.map((p) => [p.name, p]));
    for (const p of x.properties) {
      const q = yProps.get(p.name);
      if (!q) {
        out.push({
          kind: 'property-removed',
          path: here(),
          property: p.name,
          value: valueText(a, p.name, p.value, options),
        });
        continue;
      }
      if (PHANDLE_NAMES.has(p.name)) continue;
      const from = valueText(a, p.name, p.value, options);
      const to = valueText(b, q.name, q.value, options);
      const same = options.phandleProperties.has(p.name)
        ? from === to
        : p.value.length === q.value.length && p.value.every((byte, i) => byte === q.value[i]);
      if (!same) out.push({ kind: 'property-changed', path: here(), property: p.name, from, to });
    }
    const xNames = new Set(x.properties.map((p) => p.name));
    for (const q of y.properties) {
      if (!xNames.has(q.name))
        out.push({
          kind: 'property-added',
          path: here(),
          property: q.name,
          value: valueText(b, q.name, q.value, options),
        });
    }
    const yChildren = new Map(y.children.map((c) => [c.name, c]));
    const pairs: [FdtNode, FdtNode][] = [];
    for (const c of x.children) {
      const d = yChildren.get(c.name);
      if (d) pairs.push([c, d]);
      else out.push({ kind: 'node-removed', path: c.path, descendants: countDescendants(c) });
    }
    const xChildren = new Set(x.children.map((c) => c.name));
    for (const d of y.children) {
      if (!xChildren.has(d.name))
        out.push({ kind: 'node-added', path: d.path, descendants: countDescendants(d) });
    }
    // Reversed so the stack visits children in tree order.
    for (let i = pairs.length - 1; i >= 0; i--) stack.push(pairs[i]!);
  }
  return out;
}

/** One entry's line. */
function diffLine(e: DiffEntry): string {
  switch (e.kind) {
    case 'node-added':
    case 'node-removed': {
      const sign = e.kind === 'node-added' ? '+' : '-';
      const more = e.descendants
        ? ` (and ${e.descendants} node${e.descendants === 1 ? '' : 's'} under it)`
        : '';
      return `${sign} ${e.path}${more}`;
    }
    case 'property-added':
    case 'property-removed': {
      const sign = e.kind === 'property-added' ? '+' : '-';
      return `${sign} ${e.path}: ${e.property}${e.value ? ` = ${e.value}` : ''}`;
    }
    case 'property-changed':
      return `~ ${e.path}: ${e.property}: ${e.from || '(empty)'} → ${e.to || '(empty)'}`;
    case 'memreserve-changed':
      return `~ /memreserve/: ${e.from} → ${e.to}`;
  }
}

/** One line per entry: `- node`, `+ node`, `- path: prop = v`, `+ …`, `~ path: prop: v → w`. */
export function formatDiff(entries: readonly DiffEntry[]): string {
  return entries.map(diffLine).join('\n');
}
