/**
 * `dt doctor`'s linter: every rule (rules.ts) over a tree, each finding with the kernels it
 * affects (the replay of every kernel that behaves differently) and its fix when one can be
 * derived, plus the per-function table of the chosen kernel as the doctor always printed it.
 * Pure: no files, no processes (locate.ts and the CLI add where findings are).
 */
import type { Fdt } from '../../fdt/index.ts';
import { unflattenLikeLinux } from '../../fdt/index.ts';
import type { DoctorEntry } from '../doctor.ts';
import type { KernelVersion } from '../kernel-version.ts';
import {
  checkAtsd,
  checkBridgeFixups,
  checkLinkSpeed,
  checkSharedMemory,
  checkTgt,
} from './check-bridges.ts';
import { checkAssociativity, checkMemoryNodes, checkOverlap } from './check-memory.ts';
import { checkP100, checkPciNodes, checkPhandles, checkReciprocal } from './check-refs.ts';
import { checkPlacement, checkShape, checkTopology } from './check-topology.ts';
import { makeFinding, PhandleAllocator } from './draft.ts';
import { attributeReplays, replayAllKernels } from './replay.ts';
import { rule } from './rules.ts';
import { NvTree } from './tree-view.ts';
import { type Finding, LEVEL_RANK, type Level } from './types.ts';

/** Options of `lintTree`. */
export interface LintOptions {
  /** The kernel of the per-function table (findings cover them all). Default 5.12. */
  readonly kernel?: KernelVersion;
}

/**
 * What `dt doctor` found in a tree: findings, the per-function verdicts for one kernel, boot
 * warnings, and why the host could not be modelled if it could not.
 */
export interface LintReport {
  /** The tree's source (file name). */
  readonly source: string;
  readonly kernel: KernelVersion;
  /** The doctor's per-function verdicts for `kernel`, or null when the host could not be modelled. */
  readonly functions: readonly DoctorEntry[] | null;
  /** What Linux warns about the tree at boot (skipped deep nodes). */
  readonly hostWarnings: readonly string[];
  /** Why the host could not be modelled (also an NV015 finding), or null. */
  readonly hostError: string | null;
  readonly findings: readonly Finding[];
}

/** Lints `fdt`. Never throws for a malformed tree: problems are findings. */
export function lintTree(fdt: Fdt, options: LintOptions = {}): LintReport {
  const kernel = options.kernel ?? '5.12';
  const tree = new NvTree(fdt, unflattenLikeLinux(fdt).fdt);
  const alloc = new PhandleAllocator(tree);
  const drafts = [
    ...checkPhandles(tree, alloc),
    ...checkReciprocal(tree, alloc),
    ...checkSharedMemory(tree, alloc),
    ...checkBridgeFixups(tree, alloc),
    ...checkTgt(tree, alloc),
    ...checkMemoryNodes(tree, alloc),
    ...checkAssociativity(tree, alloc),
    ...checkOverlap(tree),
    ...checkLinkSpeed(tree, alloc),
    ...checkAtsd(tree, alloc),
    ...checkTopology(tree, alloc),
    ...checkPlacement(tree),
    ...checkP100(tree),
    ...checkShape(tree, alloc),
    ...checkPciNodes(tree, alloc),
  ];
  const findings = drafts.map((d) => makeFinding(tree, d));
  const replays = replayAllKernels(tree);
  if (replays) findings.push(...attributeReplays(tree, replays, findings));
  else for (const f of findings) f.kernels = rule(f.ruleId).kernels;
  // Rule order, then tree order of the node (paths only for nodes named like a finding's:
  // a deep tree's paths are long).
  const order = new Map<string, number>();
  const wanted = new Set(findings.map((f) => f.node));
  const names = new Set([...wanted].map((p) => p.slice(p.lastIndexOf('/') + 1)));
  for (const node of findings.length ? tree.fdt.root.walk() : []) {
    if (!names.has(node.name)) continue;
    const path = node.path;
    if (wanted.has(path) && !order.has(path)) order.set(path, order.size);
  }
  findings.sort(
    (a, b) =>
      a.ruleId.localeCompare(b.ruleId) || (order.get(a.node) ?? 0) - (order.get(b.node) ?? 0),
  );
  return {
    source: fdt.source,
    kernel,
    functions: replays?.get(kernel) ?? null,
    hostWarnings: tree.host?.warnings ?? [],
    hostError: tree.hostError?.message ?? null,
    findings,
  };
}

/** How many findings at each level. */
export function countLevels(findings: readonly Finding[]): Record<Level, number> {
  const out: Record<Level, number> = { error: 0, warning: 0, note: 0 };
  for (const f of findings) out[f.level]++;
  return out;
}

/** Whether any finding is at `level` or above (`--fail-on`). */
export function failsAt(findings: readonly Finding[], level: Level): boolean {
  return findings.some((f) => LEVEL_RANK[f.level] >= LEVEL_RANK[level]);
}
