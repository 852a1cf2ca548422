/**
 * The in-memory device tree: nodes with ordered properties and children, as dtc and the kernel
 * see them. Property values are raw big-endian bytes; `props.ts` reads them with the kernel's
 * semantics, the `cells` helpers here build them.
 */
import { be32At, setBe32At, setBe64At } from './be.ts';
import { FdtError } from './errors.ts';

/**
 * A property: its name and raw value bytes (big-endian cells, NUL-terminated strings; spec 2.2.4).
 */
export interface FdtProperty {
  readonly name: string;
  value: Uint8Array;
}

/**
 * A node of a device tree: its name (`name@unit`), properties in order, children in order, and its
 * parent; `path` is its full path.
 */
export class FdtNode {
  /** Properties in blob order (names unique; setProperty keeps a name's place). */
  readonly properties: FdtProperty[] = [];
  /** Child nodes in blob order; each one's `parent` is this node. */
  readonly children: FdtNode[] = [];
  /** Byte offset of this node's FDT_BEGIN_NODE token when it was parsed from a blob. */
  offset: number | undefined;

  constructor(
    /** Full node name with unit address, e.g. `pciex@600c3c0000000`; the root's is ''. */
    readonly name: string,
    readonly parent: FdtNode | undefined = undefined,
  ) {}

  /** `/xscom@603fc00000000/npu@5011000`; the root is `/`. */
  get path(): string {
    // Iterative: a parsed blob may nest deeper than the call stack allows.
    const parts: string[] = [];
    for (let n: FdtNode | undefined = this; n?.parent; n = n.parent) parts.push(n.name);
    return `/${parts.reverse().join('/')}`;
  }

  /**
   * `path` for messages: a path past 160 characters (a deep or long-named node) keeps its start
   * and end around `…`, with the node's depth, so an error stays one readable line.
   */
  get shortPath(): string {
    const path = this.path;
    if (path.length <= 160) return path;
    let depth = 0;
    for (let n: FdtNode | undefined = this; n?.parent; n = n.parent) depth++;
    return `${path.slice(0, 60)}…${path.slice(-60)} (depth ${depth})`;
  }

  /** The name before `@`. */
  get baseName(): string {
    const at = this.name.indexOf('@');
    return at < 0 ? this.name : this.name.slice(0, at);
  }

  /** The unit address after `@`, or '' when there is none. */
  get unitAddress(): string {
    const at = this.name.indexOf('@');
    return at < 0 ? '' : this.name.slice(at + 1);
  }

  /** The property called `name` (exact, no unit address rules), or undefined. */
  getProperty(name: string): FdtProperty | undefined {
    return this.properties.find((p) => p.name === name);
  }

  /** Whether a property called `name` exists (an empty value still counts, as `fdt_getprop`). */
  hasProperty(name: string): boolean {
    return this.getProperty(name) !== undefined;
  }

  /** Sets (replacing in place, or appending) a property. */
  setProperty(name: string, value: Uint8Array): this {
    const existing = this.getProperty(name);
    if (existing) existing.value = value;
    else this.properties.push({ name, value });
    return this;
  }

  /** Deletes the property called `name`; false when there was none (libfdt's fdt_delprop). */
  removeProperty(name: string): boolean {
    const i = this.properties.findIndex((p) => p.name === name);
    if (i < 0) return false;
    this.properties.splice(i, 1);
    return true;
  }

  /** The child whose full name (`name@unit`) is `name`, or undefined. */
  getChild(name: string): FdtNode | undefined {
    return this.children.find((c) => c.name === name);
  }

  /** Appends and returns a new empty child called `name` (`name@unit`); names are not checked. */
  addChild(name: string): FdtNode {
    const child = new FdtNode(name, this);
    this.children.push(child);
    return child;
  }

  /** Detaches `child` (the node itself, not a name); false when it is not a child here. */
  removeChild(child: FdtNode): boolean {
    const i = this.children.indexOf(child);
    if (i < 0) return false;
    this.children.splice(i, 1);
    return true;
  }

  /** This node and every descendant, depth first in tree order. */
  *walk(): Generator<FdtNode> {
    // Explicit stack rather than recursion, for arbitrarily deep trees.
    const stack: FdtNode[] = [this];
    for (let n = stack.pop(); n; n = stack.pop()) {
      yield n;
      for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]!);
    }
  }
}

/** One entry of the memory reservation block (spec 5.3): address and size in bytes. */
export interface MemoryReservation {
  readonly address: bigint;
  readonly size: bigint;
}

/** A whole tree with the header fields a blob carries besides the structure. */
export class Fdt {
  /** The root node (name ''); the whole structure block hangs under it. */
  readonly root: FdtNode;
  /** The memory reservation block (spec 5.3), in order; the terminating 0/0 entry is not kept. */
  memoryReservations: MemoryReservation[] = [];
  /** The header's boot_cpuid_phys (spec 5.2): the boot CPU's physical ID. */
  bootCpuId = 0;
  /** Version of the blob this tree was read from (we always write 17). */
  version = 17;
  /** Where the tree came from, for error messages (a file name, or 'generated'). */
  source: string;
  private phandleIndex: Map<number, FdtNode> | undefined;

  constructor(root?: FdtNode, source = 'tree') {
    this.root = root ?? new FdtNode('');
    this.source = source;
  }

  /**
   * Node by absolute path (`/a/b@1`). A path component without a unit address matches a node
   * whose base name is equal when exactly that name is not present, like the kernel's lookup.
   */
  findNode(path: string): FdtNode | undefined {
    if (!path.startsWith('/')) return undefined;
    let node: FdtNode | undefined = this.root;
    for (const part of path.split('/').filter((s) => s.length > 0)) {
      if (!node) return undefined;
      const current: FdtNode = node;
      node =
        current.getChild(part) ??
        (part.includes('@') ? undefined : current.children.find((c) => c.baseName === part));
    }
    return node;
  }

  /** Node whose `phandle` (or legacy `linux,phandle`) equals `phandle`; 0 and ~0 find nothing. */
  findByPhandle(phandle: number): FdtNode | undefined {
    if (phandle === 0 || phandle === 0xffffffff) return undefined;
    if (!this.phandleIndex) this.phandleIndex = this.buildPhandleIndex();
    return this.phandleIndex.get(phandle);
  }

  /** Call after changing phandles of an already-indexed tree. */
  invalidatePhandles(): void {
    this.phandleIndex = undefined;
  }

  /** Largest phandle in use (0 when none), for allocating new ones. */
  maxPhandle(): number {
    if (!this.phandleIndex) this.phandleIndex = this.buildPhandleIndex();
    let max = 0;
    for (const k of this.phandleIndex.keys()) max = Math.max(max, k);
    return max;
  }

  private buildPhandleIndex(): Map<number, FdtNode> {
    const index = new Map<number, FdtNode>();
    for (const node of this.root.walk()) {
      const p = node.getProperty('phandle') ?? node.getProperty('linux,phandle');
      if (p?.value.length !== 4) continue;
      const v = be32At(p.value, 0);
      if (!index.has(v)) index.set(v, node);
    }
    return index;
  }
}

/** Builders for property values (device-tree cells are big-endian). */
export const cells = {
  empty(): Uint8Array {
    return new Uint8Array(0);
  },
  u32(...values: number[]): Uint8Array {
    const out = new Uint8Array(values.length * 4);
    for (let i = 0; i < values.length; i++) setBe32At(out, i * 4, values[i] as number);
    return out;
  },
  u64(...values: bigint[]): Uint8Array {
    const out = new Uint8Array(values.length * 8);
    for (let i = 0; i < values.length; i++) setBe64At(out, i * 8, values[i] as bigint);
    return out;
  },
  string(value: string): Uint8Array {
    return cells.strings(value);
  },
  /** A string list: each NUL-terminated, concatenated. */
  strings(...values: string[]): Uint8Array {
    return new TextEncoder().encode(values.map((s) => `${s}\0`).join(''));
  },
  bytes(...values: number[]): Uint8Array {
    return Uint8Array.from(values);
  },
  concat(...parts: Uint8Array[]): Uint8Array {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  },
};

/**
 * The node at `path`, for lookups that must succeed.
 * @throws FdtError DT_PARSE, kind BAD_PATH, naming the path and the tree's source.
 */
export function requireNode(fdt: Fdt, path: string): FdtNode {
  const node = fdt.findNode(path);
  if (!node) throw new FdtError('BAD_PATH', 0, `a node at ${path}`, fdt.source);
  return node;
}
