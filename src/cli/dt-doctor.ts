/**
 * `vfio-nvlink2 dt doctor [FILE] [--json] [--kernel VERSION] …`: for every PCI function of the
 * tree (default: the built-in platform), what the NVLink2 subdriver's init does (see
 * src/nvlink2/doctor.ts), then the linter's findings (src/nvlink2/lint, dt-doctor-lint.ts).
 * Exit status 0 even when devices fail, unless --fail-on asks otherwise (then 3).
 */

import { KERNEL_VERSIONS, type KernelVersion, type Level } from '../nvlink2/index.ts';
import { parseCliArgs as parseArgs } from './args.ts';
import { CliError, usageError } from './cli-error.ts';
import { runExplain, runLint } from './dt-doctor-lint.ts';
import { printLine } from './output.ts';

const USAGE = `usage: vfio-nvlink2 dt doctor [FILE | --live [DIR]] [--kernel ${KERNEL_VERSIONS.join('|')}]
                             [--json | --format text|json|sarif] [--sarif FILE]
                             [--fail-on error|warning|note] [--fix-dtso FILE] [--fix-script FILE]
       vfio-nvlink2 dt doctor --explain RULE
  For every PCI function of FILE (a DTB or DTS; default: the built-in 6-GPU Witherspoon; --live:
  a host's tree, DIR default /proc/device-tree, read with dtc -I fs), the regions the NVLink2
  subdriver registers (or the fake BARs nvgrace-gpu shows for a Grace GPU: dt generate
  --machine grace-hopper|grace-blackwell), or its errno and reason; then the findings of the rules NV001-NV102
  (where, which kernels 5.0-5.12, the fix). --json: the per-function array only; --format
  json|sarif: everything for programs; --sarif FILE: SARIF 2.1.0 as well. Exit status 3 when a
  finding is at or above --fail-on (default: never), 1 when the tree cannot be read.`;

const FORMATS = ['text', 'json', 'sarif'] as const;
const LEVELS = ['error', 'warning', 'note'] as const;

/**
 * `vfio-nvlink2 dt doctor`: prints the report; returns the exit status.
 * @throws CliError USAGE for bad usage; DT_PARSE or PLATFORM when the tree cannot be read or is not
 * a host.
 */
export async function runDoctor(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw usageError('dt doctor', err);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    await printLine(USAGE);
    return 0;
  }
  if (values.explain !== undefined) return runExplain(values.explain);
  if (positionals.length > 1)
    throw new CliError('dt doctor', 'USAGE', `one FILE at most (got ${positionals.length})`);
  const kernel = values.kernel;
  if (kernel !== undefined && !(KERNEL_VERSIONS as readonly string[]).includes(kernel)) {
    throw new CliError(
      'dt doctor',
      'USAGE',
      `--kernel must be one of ${KERNEL_VERSIONS.join(', ')}, not '${kernel}'`,
    );
  }
  const oneOf = <T extends string>(flag: string, v: string | undefined, allowed: readonly T[]) => {
    if (v !== undefined && !(allowed as readonly string[]).includes(v))
      throw new CliError(
        'dt doctor',
        'USAGE',
        `--${flag} must be ${allowed.join(', ')}, not '${v}'`,
      );
    return v as T | undefined;
  };
  const format = oneOf('format', values.format, FORMATS) ?? 'text';
  if (values.json && values.format !== undefined)
    throw new CliError('dt doctor', 'USAGE', '--json and --format exclude each other');
  return runLint({
    file: positionals[0],
    kernel: kernel as KernelVersion | undefined,
    json: values.json ?? false,
    format,
    sarif: values.sarif,
    failOn: oneOf<Level>('fail-on', values['fail-on'], LEVELS),
    live: values.live ?? false,
    fixDtso: values['fix-dtso'],
    fixScript: values['fix-script'],
  });
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: 'boolean' },
      kernel: { type: 'string' },
      format: { type: 'string' },
      sarif: { type: 'string' },
      'fail-on': { type: 'string' },
      explain: { type: 'string' },
      live: { type: 'boolean' },
      'fix-dtso': { type: 'string' },
      'fix-script': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
