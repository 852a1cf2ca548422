/**
 * Following phandle chains (`interrupt-parent`-like properties that lead from node to node)
 * with loop detection. The kernel trusts the tree here (drivers/of/irq.c `of_irq_find_parent`
 * would spin forever on a loop); we refuse a loop with a typed error instead.
 */
import { be32At } from './be.ts';
import { FdtError } from './errors.ts';
import type { Fdt, FdtNode } from './tree.ts';

/** Options of `phandleChain`. */
export interface PhandleChainOptions {
  /** Stop at the first node (after the start) for which this holds, e.g. one with `#interrupt-cells`. */
  readonly stopAt?: (node: FdtNode) => boolean;
}

/**
 * The nodes reached from `node` by repeatedly following the first phandle of `property`,
 * starting with `node` itself. The chain ends at a node without the property (or with a value
 * shorter than one cell), at a phandle that resolves to no node, or where `stopAt` holds.
 * @throws FdtError PHANDLE_LOOP when a node is reached twice; the offset is that node's.
 */
export function followPhandleChain(
  fdt: Fdt,
  node: FdtNode,
  property: string,
  options: PhandleChainOptions = {},
): FdtNode[] {
  const chain: FdtNode[] = [node];
  const seen = new Set<FdtNode>([node]);
  for (let current = node; ; ) {
    const prop = current.getProperty(property);
    if (!prop || prop.value.length < 4) return chain;
    const phandle = be32At(prop.value, 0);
    const next = fdt.findByPhandle(phandle);
    if (!next) return chain;
    if (seen.has(next)) {
      // The whole chain may be any length: name its ends and where it closes, not every node.
      const path =
        chain.length <= 4
          ? chain.map((n) => n.shortPath).join(' -> ')
          : `${node.shortPath} -> … (${chain.length - 2} more) -> ${current.shortPath}`;
      throw new FdtError(
        'PHANDLE_LOOP',
        next.offset ?? 0,
        `${property} chain to end, but ${path} -> ${next.shortPath} loops`,
        fdt.source,
      );
    }
    chain.push(next);
    seen.add(next);
    if (options.stopAt?.(next)) return chain;
    current = next;
  }
}
