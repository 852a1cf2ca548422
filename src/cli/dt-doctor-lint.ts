/**
 * `dt doctor` as a linter: the per-function table (or the legacy `--json` array) and the
 * findings, as text, `--format json` or SARIF (`--format sarif`, `--sarif FILE`), the exit status
 * `--fail-on` asks for, `--explain RULE`, fixes written as one overlay or script.
 * Exit status: 0, or 3 when a finding is at or above `--fail-on`; 1 when the tree cannot be
 * read or Linux could not model its PCI functions (after writing the report); 2 for usage.
 */
import { type Fdt, isDeviceType } from '../fdt/index.ts';
import { formatHostDoctorReport, withNvgraceEntries } from '../machine/index.ts';
import type { KernelVersion, Level } from '../nvlink2/index.ts';
import {
  attachLocations,
  combinedOverlay,
  combinedScript,
  explainRule,
  failsAt,
  findRule,
  formatFindingsText,
  lintTree,
  reportJson,
  ruleTable,
  toSarif,
} from '../nvlink2/index.ts';
import { replaceFile } from '../state-dir/index.ts';
import { CliError } from './cli-error.ts';
import { PROC_DEVICE_TREE, readLiveTree, readTreeInput } from './dt-input.ts';
import { logLine, writeStdout } from './output.ts';
import { packageVersion } from './package-version.ts';

/** Exit status when a finding is at or above `--fail-on`. */
export const EXIT_FINDINGS = 3;

/**
 * `dt doctor`'s parsed flags: the tree, kernel, output format and files (SARIF, fixes), --fail-on
 * and --live.
 */
export interface LintFlags {
  readonly file: string | undefined;
  readonly kernel: KernelVersion | undefined;
  /** The legacy per-function JSON array (unchanged). */
  readonly json: boolean;
  readonly format: 'text' | 'json' | 'sarif';
  readonly sarif: string | undefined;
  readonly failOn: Level | undefined;
  readonly live: boolean;
  readonly fixDtso: string | undefined;
  readonly fixScript: string | undefined;
}

const print = writeStdout;

/** Writes a file the user named, whole or not at all (replaceFile). */
function write(file: string, text: string, what: string): void {
  try {
    replaceFile(file, text);
  } catch (err) {
    throw new CliError(
      'dt doctor',
      'FILE',
      `cannot write ${what} ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/**
 * `dt doctor --explain RULE`: the rule, its source and an example; returns the exit status.
 * @throws CliError USAGE for an unknown rule (listing the rules).
 */
export async function runExplain(id: string): Promise<number> {
  const rule = findRule(id);
  if (!rule) {
    throw new CliError(
      'dt doctor',
      'USAGE',
      `--explain: no rule '${id}'; the rules are:\n${ruleTable()}`,
    );
  }
  await print(`${explainRule(rule)}\n`);
  return 0;
}

/** Whether the tree has a PCI host bridge (a node of device_type "pciex" or "pci"), at any depth. */
function hasHostBridge(fdt: Fdt): boolean {
  const stack = [fdt.root];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    if (isDeviceType(node, 'pciex') || isDeviceType(node, 'pci')) return true;
    stack.push(...node.children);
  }
  return false;
}

/**
 * `dt doctor` as a linter: the report in the chosen format, fixes written if asked; returns 0, or
 * EXIT_FINDINGS when --fail-on is reached.
 * @throws CliError DT_PARSE (the tree), FILE (an output file), PLATFORM (a tree the host model
 * cannot be built from, or with nothing to serve: no GPU or NVLink bridge).
 */
export async function runLint(flags: LintFlags): Promise<number> {
  const input = flags.live
    ? readLiveTree('dt doctor', flags.file ?? PROC_DEVICE_TREE)
    : readTreeInput('dt doctor', flags.file);
  const report = lintTree(input.fdt, flags.kernel ? { kernel: flags.kernel } : {});
  attachLocations(report.findings, input.locator);
  for (const w of report.hostWarnings) logLine(`dt doctor: warning: ${w}`);
  // A function nvgrace-gpu binds is reported by its probe, as driver binding picks one driver.
  const functions = report.functions && withNvgraceEntries(input.fdt, report.functions);
  // What serve and inspect --dt refuse (requireServable), dt doctor refuses with the same line;
  // the report still prints first when there are functions to report on.
  const nothing =
    functions == null || report.hostError !== null
      ? undefined
      : functions.length === 0
        ? hasHostBridge(input.fdt)
          ? 'no GPU or NVLink bridge among its 0 PCI functions'
          : 'no PCI host bridge (no node of device_type "pciex" or "pci")'
        : functions.some((f) => f.role === 'gpu' || f.role === 'bridge')
          ? undefined
          : `no GPU or NVLink bridge among its ${functions.length} PCI functions`;
  const nothingToServe =
    nothing === undefined
      ? undefined
      : new CliError('dt doctor', 'PLATFORM', `${input.fdt.source}: ${nothing}: nothing to serve`);
  if (nothingToServe && functions?.length === 0) throw nothingToServe;
  if (flags.sarif !== undefined) {
    const log = toSarif(report, { toolVersion: packageVersion() ?? '0.0.0', dtb: input.dtb });
    write(flags.sarif, `${JSON.stringify(log, null, 2)}\n`, 'SARIF');
  }
  const overlay = combinedOverlay(report);
  if (flags.fixDtso !== undefined)
    write(flags.fixDtso, overlay ?? '/dts-v1/;\n/plugin/;\n', 'overlay');
  const script = combinedScript(report, input.dtb, input.makeDtb);
  if (flags.fixScript !== undefined) write(flags.fixScript, script ?? '#!/bin/sh\n', 'script');
  if (flags.format === 'sarif') {
    const log = toSarif(report, { toolVersion: packageVersion() ?? '0.0.0', dtb: input.dtb });
    await print(`${JSON.stringify(log, null, 2)}\n`);
  } else if (flags.format === 'json') {
    await print(`${JSON.stringify(reportJson(report, input.dtb), null, 2)}\n`);
  } else if (flags.json) {
    if (functions) await print(`${JSON.stringify(functions, null, 2)}\n`);
  } else {
    const table = functions ? formatHostDoctorReport(functions) : '';
    const findings = formatFindingsText(report, input.dtb);
    const text = [table, findings].filter((s) => s.length > 0).join('\n');
    if (text) await print(`${text}\n`);
  }
  if (report.hostError !== null)
    throw new CliError('dt doctor', 'PLATFORM', `${input.fdt.source}: ${report.hostError}`);
  if (nothingToServe) throw nothingToServe;
  return flags.failOn !== undefined && failsAt(report.findings, flags.failOn) ? EXIT_FINDINGS : 0;
}
