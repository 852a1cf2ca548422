/**
 * The tree as Linux unflattens a blob at boot: drivers/of/fdt.c (v5.0–v5.12)
 * `unflatten_dt_nodes` keeps `struct device_node *nps[FDT_MAX_DEPTH]` and, walking the blob
 * with `fdt_next_node`, does `if (WARN_ON_ONCE(depth >= FDT_MAX_DEPTH)) continue;`: every node
 * at depth 64 or more (the root is depth 0) is skipped, with one warning, and the kernel boots
 * with the rest. (Upstream 2f945a792f67, v6.0 and later stable kernels, skips depth 63 too: at
 * 63 the v5.x loop stores the new node in nps[64], one past the array.)
 */
import { Fdt, FdtNode } from './tree.ts';

/** FDT_MAX_DEPTH of drivers/of/fdt.c: nodes at this depth and deeper are skipped. */
export const FDT_MAX_DEPTH = 64;

/** A tree as Linux keeps it after unflattening, and what was skipped. */
export interface UnflattenedTree {
  /** The tree Linux keeps: `fdt` itself when nothing is skipped, else a copy without those nodes. */
  readonly fdt: Fdt;
  /** How many nodes were skipped (0: `fdt` is the input). */
  readonly skipped: number;
  /** The first skipped node in tree order, in the input tree. */
  readonly firstSkipped: FdtNode | undefined;
}

/**
 * The nodes of `fdt` Linux v5.x keeps, never recursing (any depth is fine). A copy shares the
 * property values (byte arrays) with the input but not the nodes or property records.
 */
export function unflattenLikeLinux(fdt: Fdt, maxDepth = FDT_MAX_DEPTH): UnflattenedTree {
  let skipped = 0;
  let firstSkipped: FdtNode | undefined;
  const stack: [FdtNode, number][] = [[fdt.root, 0]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [node, depth] = item;
    if (depth >= maxDepth) {
      skipped++;
      firstSkipped ??= node;
    }
    for (let i = node.children.length - 1; i >= 0; i--) stack.push([node.children[i]!, depth + 1]);
  }
  if (skipped === 0) return { fdt, skipped, firstSkipped };

  const copy = new Fdt(copyNode(fdt.root, undefined), fdt.source);
  copy.memoryReservations = [...fdt.memoryReservations];
  copy.bootCpuId = fdt.bootCpuId;
  copy.version = fdt.version;
  const copies: [FdtNode, FdtNode, number][] = [[fdt.root, copy.root, 0]];
  for (let item = copies.pop(); item; item = copies.pop()) {
    const [from, to, depth] = item;
    if (depth + 1 >= maxDepth) continue;
    // Children are made in tree order here; the order the stack visits them in does not matter.
    for (const child of from.children) copies.push([child, copyNode(child, to), depth + 1]);
  }
  return { fdt: copy, skipped, firstSkipped };
}

/** `from` without its children, appended to `parent`. */
function copyNode(from: FdtNode, parent: FdtNode | undefined): FdtNode {
  const to = parent ? parent.addChild(from.name) : new FdtNode(from.name);
  to.offset = from.offset;
  for (const p of from.properties) to.properties.push({ name: p.name, value: p.value });
  return to;
}
