/**
 * The doctor's findings: a rule (stable ID, see rules.ts), where in the tree (node path and
 * property; locate.ts adds file:line:column for DTS, the byte offset for a DTB), which kernels
 * 5.0–5.12 it affects and how (replayed, see replay.ts), and the fix when one can be derived.
 */

/** SARIF's levels (SARIF 2.1.0 §3.27.10), which `--fail-on` compares. */
export type Level = 'error' | 'warning' | 'note';

/** Levels in order of severity (note < warning < error), for --fail-on. */
export const LEVEL_RANK: Record<Level, number> = { note: 0, warning: 1, error: 2 };

/**
 * A u32 cell of a fix's value: a number, or the phandle of the node at `ref` (a path):
 * `phandle` is its number (its own, or the one the fix gives it).
 */
export type FixCell = number | { readonly ref: string; readonly phandle: number };

/** The value a fix sets: u32 cells (numbers or phandles of nodes) or strings. */
export type FixValue =
  | { readonly kind: 'cells'; readonly cells: readonly FixCell[] }
  | { readonly kind: 'strings'; readonly strings: readonly string[] };

/** Set `property` of the node at `node` (a path that exists in the tree) to `value`. */
export interface FixEdit {
  readonly node: string;
  readonly property: string;
  readonly value: FixValue;
}

/**
 * A fix: property edits, and the phandles some nodes need first (a node that has none and
 * that an edit or a dangling reference must point to; `value` is the number to give it).
 */
export interface Fix {
  readonly description: string;
  readonly phandles: readonly { readonly node: string; readonly value: number }[];
  readonly edits: readonly FixEdit[];
}

/** Where a finding is, once located: a DTS file position, a DTB offset or a /proc file. */
export interface Location {
  /** The file (a DTS, a DTB, or under /proc/device-tree for --live). */
  readonly file: string;
  /** 1-based, DTS only. */
  readonly line?: number;
  readonly column?: number;
  readonly endLine?: number;
  readonly endColumn?: number;
  /** Byte offset of the property's FDT_PROP (or the node's FDT_BEGIN_NODE) token, DTB only. */
  readonly offset?: number;
}

/** What one range of kernels does to the functions a finding touches (from the replay). */
export interface KernelEffect {
  /** e.g. "5.0–5.1". */
  readonly kernels: string;
  /** One line per function whose init is not clean, e.g. "0000:00:00.1 error EFAULT: …". */
  readonly lines: readonly string[];
}

/**
 * One finding: rule, level, message, node and property at fault, the PCI functions it concerns, the
 * kernels and their effects, the fix if there is one, and its location in the input.
 */
export interface Finding {
  readonly ruleId: string;
  readonly level: Level;
  readonly message: string;
  /** The node at fault (its path in the tree). */
  readonly node: string;
  /** The property at fault (missing or wrong), when one is. */
  readonly property?: string;
  /** PCI functions ("DDDD:BB:DD.F") whose NVLink2 init this finding explains. */
  readonly functions: readonly string[];
  /** The kernels 5.0–5.12 it affects, as ranges ("5.0–5.12", "5.7–5.12"). */
  kernels: string;
  /** Per kernel range, what the replayed init did to `functions` (empty when it was clean). */
  effects: readonly KernelEffect[];
  readonly fix?: Fix;
  location?: Location;
}
