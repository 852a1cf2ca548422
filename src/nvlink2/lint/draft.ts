/**
 * Building findings and fixes: a check names the rule, the node and property, says what is
 * wrong, and (when the value can be derived from the rest of the tree) the edits that fix it.
 */
import type { FdtNode } from '../../fdt/index.ts';
import { rule } from './rules.ts';
import { type NvTree, phandleOf, u64Cells } from './tree-view.ts';
import type { Finding, Fix, FixCell, FixEdit, Level } from './types.ts';

/**
 * A finding as a rule drafts it: rule, node, property, message, fix and level; `makeFinding`
 * completes it.
 */
export interface Draft {
  readonly ruleId: string;
  readonly node: FdtNode;
  readonly property?: string;
  readonly message: string;
  readonly fix?: Fix;
  /** Overrides the rule's default level. */
  readonly level?: Level;
  /** Overrides the functions derived from `node`. */
  readonly functions?: readonly string[];
}

/**
 * A rule's draft as a finding: the rule's level unless overridden, the node's path, the PCI
 * functions the node concerns; kernels and effects are filled in later (the replay).
 */
export function makeFinding(tree: NvTree, d: Draft): Finding {
  return {
    ruleId: d.ruleId,
    level: d.level ?? rule(d.ruleId).level,
    message: d.message,
    node: d.node.path,
    ...(d.property !== undefined ? { property: d.property } : {}),
    functions: d.functions ?? tree.functionsOf(d.node),
    kernels: '',
    effects: [],
    ...(d.fix ? { fix: d.fix } : {}),
  };
}

/** Hands out phandles for nodes that need one, above every phandle in the tree. */
export class PhandleAllocator {
  private next: number;
  constructor(tree: NvTree) {
    this.next = tree.fdt.maxPhandle() + 1;
  }
  take(): number {
    return this.next++;
  }
}

/** A fix in the making: edits, plus phandles for referenced nodes that have none. */
export class FixBuilder {
  private readonly edits: FixEdit[] = [];
  private readonly phandles: { node: string; value: number }[] = [];

  constructor(
    private readonly alloc: PhandleAllocator,
    private description: string,
  ) {}

  /** Says where the value comes from, when the check knows better than its default. */
  describe(description: string): this {
    this.description = description;
    return this;
  }

  /** A reference to `node`, giving it a new phandle first when it has none. */
  ref(node: FdtNode): FixCell {
    const own = phandleOf(node) ?? this.phandles.find((p) => p.node === node.path)?.value;
    if (own !== undefined) return { ref: node.path, phandle: own };
    const value = this.alloc.take();
    this.phandles.push({ node: node.path, value });
    return { ref: node.path, phandle: value };
  }

  /** `node` gets phandle `value` (a dangling reference's number). */
  givePhandle(node: FdtNode, value: number): this {
    this.phandles.push({ node: node.path, value });
    return this;
  }

  cells(node: FdtNode, property: string, cells: readonly FixCell[]): this {
    this.edits.push({ node: node.path, property, value: { kind: 'cells', cells } });
    return this;
  }

  u64(node: FdtNode, property: string, ...values: bigint[]): this {
    return this.cells(node, property, u64Cells(...values));
  }

  strings(node: FdtNode, property: string, ...strings: string[]): this {
    this.edits.push({ node: node.path, property, value: { kind: 'strings', strings } });
    return this;
  }

  build(): Fix {
    return { description: this.description, phandles: this.phandles, edits: this.edits };
  }
}
