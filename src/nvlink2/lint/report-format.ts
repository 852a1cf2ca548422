/**
 * The linter's report for people (text after the doctor's per-function table) and for programs
 * (`--format json`): each finding with where it is, the kernels it affects and how, and its fix
 * as fdtput commands and a .dtso overlay.
 */

import { fdtputCommands, overlayText } from './fix-render.ts';
import { countLevels, type LintReport } from './lint.ts';
import { formatLocation } from './locate.ts';
import type { Finding, Fix } from './types.ts';

/** The finding's one-line head: location, node, property, level, rule, kernels, message. */
export function findingHead(f: Finding): string {
  const where = f.location ? `${formatLocation(f.location)}: ` : '';
  const what = `${f.node}${f.property !== undefined ? ` ${f.property}` : ''}`;
  return `${where}${what}: ${f.level} ${f.ruleId} [${f.kernels || 'no kernel'}]: ${f.message}`;
}

/**
 * The replayed effects, one line per kernel range and verdict: functions with the same verdict
 * (apart from their address) share a line.
 */
export function effectLines(f: Finding): string[] {
  const out: string[] = [];
  for (const e of f.effects) {
    const byVerdict = new Map<string, string[]>();
    for (const line of e.lines) {
      const sp = line.indexOf(' ');
      const rest = line.slice(sp + 1);
      byVerdict.set(rest, [...(byVerdict.get(rest) ?? []), line.slice(0, sp)]);
    }
    for (const [rest, names] of byVerdict) out.push(`${e.kernels}: ${names.join(', ')} ${rest}`);
  }
  return out;
}

/**
 * The findings as text: one head line each, the replayed effects per kernel range indented
 * under it, then the fix and its fdtput commands; a summary line. Empty for no findings (the
 * doctor's table stays as it always was).
 */
export function formatFindingsText(report: LintReport, dtb: string): string {
  if (report.findings.length === 0) return '';
  const out: string[] = [''];
  for (const f of report.findings) {
    out.push(findingHead(f));
    for (const line of effectLines(f)) out.push(`    ${line}`);
    if (f.fix) {
      out.push(`    fix: ${f.fix.description}`);
      for (const c of fdtputCommands(f.fix, dtb)) out.push(`      ${c}`);
    }
  }
  const n = countLevels(report.findings);
  const plural = (k: number, w: string) => `${k} ${w}${k === 1 ? '' : 's'}`;
  out.push(
    '',
    `${plural(report.findings.length, 'finding')}: ${plural(n.error, 'error')}, ${plural(n.warning, 'warning')}, ${plural(n.note, 'note')} (vfio-nvlink2 dt doctor --explain RULE)`,
  );
  return out.join('\n');
}

/** One overlay for every fix of the report (`--fix-dtso`), or undefined when none is fixable. */
export function combinedOverlay(report: LintReport): string | undefined {
  const fixes = report.findings
    .filter((f): f is Finding & { fix: Fix } => f.fix !== undefined)
    .map((f) => ({
      fix: f.fix,
      comment: `${f.ruleId} ${f.node}${f.property ? ` ${f.property}` : ''}`,
    }));
  return fixes.length ? overlayText(fixes) : undefined;
}

/**
 * Every fix's fdtput commands, as a shell script (`--fix-script`), or undefined. `makeDtb`, when
 * the input was not a blob (a DTS, a live tree, the built-in tree), writes `dtb` first.
 */
export function combinedScript(
  report: LintReport,
  dtb: string,
  makeDtb?: string,
): string | undefined {
  const fixed = report.findings.filter((f) => f.fix !== undefined);
  if (fixed.length === 0) return undefined;
  const lines = ['#!/bin/sh', `# vfio-nvlink2 dt doctor: fixes for ${report.source}`, 'set -e'];
  if (makeDtb !== undefined)
    lines.push(`# fdtput edits a blob: ${dtb} from ${report.source}`, makeDtb);
  for (const f of fixed)
    lines.push(
      `# ${f.ruleId} ${f.node}${f.property ? ` ${f.property}` : ''}: ${f.fix!.description}`,
      ...fdtputCommands(f.fix!, dtb),
    );
  return `${lines.join('\n')}\n`;
}

/** A finding for programs: the fix with its edits, fdtput commands and overlay. */
export function findingJson(f: Finding, dtb: string) {
  return {
    ruleId: f.ruleId,
    level: f.level,
    message: f.message,
    node: f.node,
    property: f.property ?? null,
    location: f.location ?? null,
    functions: f.functions,
    kernels: f.kernels,
    effects: f.effects,
    fix: f.fix
      ? {
          description: f.fix.description,
          phandles: f.fix.phandles,
          edits: f.fix.edits,
          fdtput: fdtputCommands(f.fix, dtb),
          dtso: overlayText([{ fix: f.fix, comment: `${f.ruleId} ${f.node}` }]),
        }
      : null,
  };
}

/** `--format json`: the per-function verdicts and every finding. */
export function reportJson(report: LintReport, dtb: string) {
  return {
    source: report.source,
    kernel: report.kernel,
    hostError: report.hostError,
    hostWarnings: report.hostWarnings,
    functions: report.functions,
    findings: report.findings.map((f) => findingJson(f, dtb)),
    summary: countLevels(report.findings),
  };
}
