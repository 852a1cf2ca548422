/**
 * `dt doctor --explain RULE`: the rule, what goes wrong when it does not hold, its sources, and
 * its example run for real (the example tree generated, linted and the finding printed as the
 * doctor prints it, with its fix).
 */
import { parseFdt, serializeFdt } from '../../fdt/index.ts';
import { generateWitherspoon } from '../../platform/index.ts';
import { fdtputCommands } from './fix-render.ts';
import { lintTree } from './lint.ts';
import { attachLocations, blobLocator } from './locate.ts';
import { effectLines, findingHead } from './report-format.ts';
import { RULES, type Rule } from './rules.ts';

/** Every rule, one line each (for `--explain` with an unknown ID, and the README). */
export function ruleTable(): string {
  return RULES.map((r) => `${r.id}  ${r.name.padEnd(20)} ${r.level.padEnd(7)} ${r.summary}`).join(
    '\n',
  );
}

/** The explanation of `rule` with its example's real output. */
export function explainRule(rule: Rule): string {
  const out = [
    `${rule.id} ${rule.name} (${rule.level}; kernels ${rule.kernels}; fixable: ${rule.fixable})`,
    '',
    `Checks: ${rule.summary}.`,
    `When it does not hold: ${rule.impact}.`,
    'Sources:',
    ...rule.sources.map((s) => `  - ${s}`),
    '',
  ];
  const ex = rule.example;
  if (!ex) {
    out.push(
      'Example: none. This rule reports what the replayed init does that no NV0xx rule explains;',
      'every fault `dt generate` can inject is explained by an NV0xx rule (a test keeps it so).',
    );
    return out.join('\n');
  }
  const generated = generateWitherspoon(ex.options);
  ex.edit?.(generated);
  const blob = serializeFdt(generated);
  const fdt = parseFdt(blob, 'example.dtb');
  const report = lintTree(fdt);
  attachLocations(report.findings, blobLocator(blob, 'example.dtb', fdt));
  const finding = report.findings.find((f) => f.ruleId === rule.id);
  out.push(
    ex.description.startsWith('--')
      ? `Example: vfio-nvlink2 dt generate ${ex.description} -o example.dtb && vfio-nvlink2 dt doctor example.dtb`
      : `Example: the built-in tree with ${ex.description} (example.dtb):`,
  );
  if (!finding) {
    out.push('  (the example no longer shows this rule: a bug, please report it)');
    return out.join('\n');
  }
  out.push(`  ${findingHead(finding)}`);
  for (const line of effectLines(finding)) out.push(`      ${line}`);
  if (finding.fix) {
    out.push(`      fix: ${finding.fix.description}`);
    for (const c of fdtputCommands(finding.fix, 'example.dtb')) out.push(`        ${c}`);
  }
  const more = report.findings.filter((f) => f.ruleId === rule.id).length - 1;
  if (more > 0) out.push(`  (and ${more} more finding${more === 1 ? '' : 's'} of ${rule.id})`);
  return out.join('\n');
}
