/**
 * Where a finding is, in the file the user gave: for a DTB, the byte offset of the property's
 * FDT_PROP token (or of the node's FDT_BEGIN_NODE when the property is missing), found by
 * walking the structure block from the node (Devicetree Specification v0.3 §5.4); for a DTS,
 * file, line and column from the source positions dtc itself records (`dtc -O dts -T -T`
 * annotates every node and property with `file:line:column-line:column`, following
 * /include/ and cpp line markers); for a live tree read through `dtc -I fs`, the file under
 * the directory (/proc/device-tree/<node>/<property>). Pure: the caller runs dtc.
 */
import type { Fdt } from '../../fdt/index.ts';
import { hex } from '../../text/index.ts';
import type { Finding, Location } from './types.ts';

/**
 * Finds where a node or property is in the user's input (DTB offset, DTS line:column, live-tree
 * file).
 */
export interface Locator {
  locate(node: string, property?: string): Location;
}

const align4 = (n: number) => (n + 3) & ~3;

/** Offsets in a well-formed blob (one `parseFdt` accepted) of the nodes of `fdt` and their properties. */
export function blobLocator(bytes: Uint8Array, file: string, fdt: Fdt): Locator {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (at: number) => (at + 4 <= bytes.length ? v.getUint32(at) : 0);
  const strings = u32(12);
  const cstr = (at: number) => {
    const end = bytes.indexOf(0, at);
    return new TextDecoder('latin1').decode(bytes.subarray(at, end < 0 ? bytes.length : end));
  };
  const skipName = (at: number) => {
    const nul = bytes.indexOf(0, at);
    return align4((nul < 0 ? bytes.length : nul) + 1);
  };
  /** The FDT_PROP of `name` among the node's own properties (not its children's). */
  const propAt = (nodeAt: number, name: string): { offset: number; length: number } | undefined => {
    if (u32(nodeAt) !== 1) return undefined;
    let at = skipName(nodeAt + 4);
    let depth = 0;
    while (at + 4 <= bytes.length) {
      const token = u32(at);
      if (token === 3) {
        const len = u32(at + 4);
        if (depth === 0 && cstr(strings + u32(at + 8)) === name)
          return { offset: at, length: 12 + len };
        at = align4(at + 12 + len);
      } else if (token === 4) at += 4;
      else if (token === 1) {
        depth++;
        at = skipName(at + 4);
      } else if (token === 2) {
        if (depth === 0) return undefined;
        depth--;
        at += 4;
      } else return undefined;
    }
    return undefined;
  };
  return {
    locate(path, property) {
      const node = fdt.findNode(path);
      const at = node?.offset;
      if (at === undefined) return { file };
      const prop = property !== undefined ? propAt(at, property) : undefined;
      return { file, offset: prop?.offset ?? at };
    },
  };
}

/** A span of DTS text: file, start and end line and column (1-based). */
export interface SourcePosition {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly endLine: number;
  readonly endColumn: number;
}

interface NodePositions {
  node: SourcePosition | undefined;
  readonly props: Map<string, SourcePosition>;
}

/** `file:L:C-L:C` (dtc srcpos_string_last with -T -T); the file name may hold colons. */
function parsePosition(text: string): SourcePosition | undefined {
  const m = /^(.*):(\d+):(\d+)-(\d+):(\d+)$/.exec(text.trim());
  if (!m) return undefined;
  return {
    file: m[1]!,
    line: Number(m[2]),
    column: Number(m[3]),
    endLine: Number(m[4]),
    endColumn: Number(m[5]),
  };
}

/**
 * The positions in dtc's annotated output (`dtc -I dts -O dts -T -T`), by node path: a node
 * defined in several places (a `&label { … }` later) keeps its first definition; a property,
 * the definition that won.
 */
export function parseDtcAnnotations(text: string): Map<string, NodePositions> {
  const out = new Map<string, NodePositions>();
  const stack: string[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    let pos: SourcePosition | undefined;
    const at = line.lastIndexOf(' /* ');
    if (at >= 0 && line.endsWith(' */')) {
      pos = parsePosition(line.slice(at + 4, -3).split(', ')[0] ?? '');
      line = line.slice(0, at);
    }
    if (line === '};') {
      stack.pop();
      continue;
    }
    const open = /^(?:[\w,.+-]+:\s+)*(\/|[^\s{}]+) \{$/.exec(line);
    if (open) {
      const name = open[1]!;
      const parent = stack.at(-1);
      const path =
        name === '/'
          ? '/'
          : parent === undefined || parent === '/'
            ? `/${name}`
            : `${parent}/${name}`;
      stack.push(path);
      const entry = out.get(path) ?? { node: undefined, props: new Map() };
      entry.node ??= pos;
      out.set(path, entry);
      continue;
    }
    const prop = /^(?:[\w,.+-]+:\s+)*([^\s=;]+)(?: = .*)?;$/.exec(line);
    const path = stack.at(-1);
    if (prop && path !== undefined && pos) out.get(path)?.props.set(prop[1]!, pos);
  }
  return out;
}

/**
 * Positions from dtc's annotations. A node's position is where dtc puts it, at its `{`; when
 * the source line can be read, the column moves back to the node's name on that line.
 */
export function dtsLocator(
  annotated: string,
  fallbackFile: string,
  readSourceLine?: (file: string, line: number) => string | undefined,
): Locator {
  const map = parseDtcAnnotations(annotated);
  const toLocation = (p: SourcePosition): Location => ({
    file: p.file,
    line: p.line,
    column: p.column,
    endLine: p.endLine,
    endColumn: p.endColumn,
  });
  return {
    locate(path, property) {
      const entry = map.get(path);
      const prop = property !== undefined ? entry?.props.get(property) : undefined;
      if (prop) return toLocation(prop);
      const node = entry?.node;
      if (!node) return { file: fallbackFile };
      const name = path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1);
      const text = readSourceLine?.(node.file, node.line);
      const at = text?.slice(0, node.column).lastIndexOf(name) ?? -1;
      return toLocation(at >= 0 ? { ...node, column: at + 1 } : node);
    },
  };
}

/**
 * The file of a node or property under a live tree directory (`/proc/device-tree`); `exists`
 * tells a property's file from one the tree lacks (then the node's directory).
 */
export function liveLocator(dir: string, exists: (file: string) => boolean): Locator {
  const base = dir.endsWith('/') ? dir.slice(0, -1) : dir;
  return {
    locate(path, property) {
      const node = path === '/' ? base : `${base}${path}`;
      // A property the tree lacks: its node's directory, as a blob's finding points at the node.
      const file = property !== undefined ? `${node}/${property}` : undefined;
      return { file: file !== undefined && exists(file) ? file : node };
    },
  };
}

/** A locator that knows only the source's name (the built-in tree). */
export function nameLocator(file: string): Locator {
  return { locate: () => ({ file }) };
}

/** Sets each finding's `location` from `locator`. */
export function attachLocations(findings: readonly Finding[], locator: Locator): void {
  for (const f of findings) f.location = locator.locate(f.node, f.property);
}

/** `file:line:column`, `file: offset 0x…` or `file`, for text output. */
export function formatLocation(l: Location): string {
  if (l.line !== undefined) return `${l.file}:${l.line}:${l.column ?? 1}`;
  if (l.offset !== undefined) return `${l.file}: offset ${hex(l.offset)}`;
  return l.file;
}
