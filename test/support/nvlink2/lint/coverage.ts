/**
 * The doctor's coverage, measured: every fault `dt generate` can inject (generatorFaults) is
 * linted and the rules that fire are compared with the one FAULT_RULES names; every clean
 * variant is linted for zero findings; a fault is fixed in full when its findings' fixes give
 * back the clean tree. `npm run doctor-coverage` prints it, lint.test.ts holds
 * the same fault by fault, and README's coverage table is `coverageMarkdown` of the built-in tree.
 */
import { cells, diffTrees, type Fdt, parseFdt, serializeFdt } from '../../../../src/fdt/index.ts';
import { lintTree } from '../../../../src/nvlink2/lint/lint.ts';
import { RULES } from '../../../../src/nvlink2/lint/rules.ts';
import { PHANDLE_PROPERTIES } from '../../../../src/nvlink2/lint/tree-view.ts';
import type { Finding } from '../../../../src/nvlink2/lint/types.ts';
import type { WitherspoonOptions } from '../../../../src/platform/index.ts';
import { generateWitherspoon } from '../../../../src/platform/index.ts';
import { generatorFaults } from './faults.ts';

/** dt diff's comparison: phandles by the paths they resolve to. */
export const DIFF_OPTIONS = {
  phandleProperties: new Set(PHANDLE_PROPERTIES.map((p) => p.name)),
};

/** Applies every finding's fix in memory, as fdtput would (phandles first). */
export function applyFixes(fdt: Fdt, findings: readonly Finding[]): Fdt {
  for (const { fix } of findings) {
    if (!fix) continue;
    for (const p of fix.phandles) fdt.findNode(p.node)!.setProperty('phandle', cells.u32(p.value));
    for (const e of fix.edits) {
      const value =
        e.value.kind === 'cells'
          ? cells.u32(...e.value.cells.map((c) => (typeof c === 'number' ? c : c.phandle)))
          : cells.strings(...e.value.strings);
      fdt.findNode(e.node)!.setProperty(e.property, value);
    }
  }
  return fdt;
}

/**
 * Whether the findings' fixes, all applied, give back `clean` (none may lack a fix). The tree
 * goes through a blob first so that phandles resolve as a reader of the fixed file sees them.
 */
export function fixedInFull(fdt: Fdt, findings: readonly Finding[], clean: Fdt): boolean {
  if (findings.length === 0 || findings.some((f) => !f.fix)) return false;
  const fixed = parseFdt(serializeFdt(applyFixes(fdt, findings)), fdt.source);
  return diffTrees(clean, fixed, DIFF_OPTIONS).length === 0;
}

export interface Variant {
  readonly label: string;
  readonly options: Partial<WitherspoonOptions>;
}

export interface FaultResult {
  /** The clean variant the fault was injected into. */
  readonly variant: string;
  readonly flags: string;
  /** The rule FAULT_RULES names. */
  readonly expected: string;
  /** The rules whose findings the tree has, in report order. */
  readonly found: readonly string[];
  readonly findings: number;
  /** Every finding carries a fix, and the fixes together give back the clean tree. */
  readonly fixed: boolean;
}

export interface CleanResult {
  readonly label: string;
  /** `RULE node property: message` of each finding (none is right). */
  readonly findings: readonly string[];
}

export interface Coverage {
  readonly faults: readonly FaultResult[];
  readonly clean: readonly CleanResult[];
}

/** Found, and by exactly the rule FAULT_RULES names. */
export const exactlyExpected = (r: FaultResult): boolean =>
  r.found.length === 1 && r.found[0] === r.expected;

/**
 * Lints every generator fault injected into each of `bases` and every tree of `clean`.
 * `progress` is called after each tree with the count done and the total.
 */
export function measureCoverage(
  bases: readonly Variant[],
  clean: readonly Variant[],
  progress?: (done: number, total: number) => void,
): Coverage {
  const jobs = bases.flatMap((b) => generatorFaults(b.options).map((f) => ({ b, f })));
  const total = jobs.length + clean.length;
  let done = 0;
  const cleanOf = new Map(bases.map((b) => [b, generateWitherspoon(b.options)]));
  const faults = jobs.map(({ b, f }): FaultResult => {
    const fdt = generateWitherspoon(f.options);
    const { findings } = lintTree(fdt);
    progress?.(++done, total);
    return {
      variant: b.label,
      flags: f.flags,
      expected: f.rule,
      found: [...new Set(findings.map((x) => x.ruleId))],
      findings: findings.length,
      fixed: fixedInFull(fdt, findings, cleanOf.get(b)!),
    };
  });
  const cleanResults = clean.map((v): CleanResult => {
    const { findings } = lintTree(generateWitherspoon(v.options));
    progress?.(++done, total);
    return {
      label: v.label,
      findings: findings.map((x) => `${x.ruleId} ${x.node} ${x.property ?? ''}: ${x.message}`),
    };
  });
  return { faults, clean: cleanResults };
}

/** `--omit a@X --omit b@Y`, `--atsd-entries 0`… → "`--omit` a, b; `--atsd-entries` 0, 1". */
function summarizeFlags(flags: readonly string[]): string {
  const byFlag = new Map<string, string[]>();
  for (const f of flags) {
    const [name = '', value = ''] = f.split(' ');
    const shown = name === '--omit' ? value.slice(0, value.indexOf('@')) : value;
    const list = byFlag.get(name) ?? [];
    if (!list.includes(shown)) list.push(shown);
    byFlag.set(name, list);
  }
  return [...byFlag].map(([name, values]) => `\`${name}\` ${values.join(', ')}`).join('; ');
}

/**
 * The coverage table by rule (Markdown): how many generator faults name the rule, how many it
 * alone found, and what they inject; rules no generator flag reaches say how `--explain` shows
 * them. Faults of every base variant are counted together.
 */
export function coverageMarkdown(c: Coverage): string {
  const rows = [
    '| rule | level | faults | found by it alone | fixed in full | what `dt generate` injects |',
    '|---|---|---:|---:|---:|---|',
  ];
  for (const rule of RULES) {
    const mine = c.faults.filter((f) => f.expected === rule.id);
    const alone = mine.filter(exactlyExpected).length;
    const fixed = mine.filter((f) => f.fixed).length;
    const what =
      mine.length > 0
        ? summarizeFlags(mine.map((f) => f.flags))
        : `no generator flag; \`--explain ${rule.id}\`: ${rule.example?.description ?? 'a catch-all of the replayed init, for what no NV0xx rule claims'}`;
    rows.push(
      `| ${rule.id} ${rule.name} | ${rule.level} | ${mine.length} | ${alone} | ${fixed} | ${what.replaceAll('|', '\\|')} |`,
    );
  }
  return rows.join('\n');
}

/** The totals, one line each. */
export function coverageSummary(c: Coverage): string[] {
  const variants = new Set(c.faults.map((f) => f.variant)).size;
  const detected = c.faults.filter((f) => f.findings > 0).length;
  const exact = c.faults.filter(exactlyExpected).length;
  const dirty = c.clean.filter((v) => v.findings.length > 0).length;
  const fixed = c.faults.filter((f) => f.fixed).length;
  return [
    `generator faults: ${c.faults.length} (in ${variants} clean variant${variants === 1 ? '' : 's'}), ${detected} detected, ${exact} by exactly the rule the table names, ${c.faults.length - exact} not`,
    `fixes: ${fixed} of ${c.faults.length} faults fixed in full (every finding's fix applied gives back the clean tree), ${c.faults.length - fixed} not`,
    `clean variants: ${c.clean.length}, ${c.clean.length - dirty} without a finding, ${dirty} with`,
  ];
}

/** Whether the measurement is what the doctor promises. */
export function coverageComplete(c: Coverage): boolean {
  return c.faults.every(exactlyExpected) && c.clean.every((v) => v.findings.length === 0);
}
