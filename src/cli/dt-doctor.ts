/**
 * `vfio-nvlink2 dt doctor [FILE] [--json] [--kernel VERSION]`: for every PCI function of the
 * tree (default: the built-in platform), what the NVLink2 subdriver's init does (see
 * src/nvlink2/doctor.ts). Exit status 0 even when devices fail: the report is the answer.
 */
import { parseArgs } from 'node:util';
import {
  formatDoctorReport,
  KERNEL_VERSIONS,
  type KernelVersion,
  runDoctorOnHost,
} from '../nvlink2/index.ts';
import { buildHost, HostError } from '../platform/index.ts';
import { CliError, cliErrorOf, usageError } from './cli-error.ts';
import { readPlatformArg } from './platform-arg.ts';

const USAGE = `usage: vfio-nvlink2 dt doctor [FILE] [--json] [--kernel ${KERNEL_VERSIONS.join('|')}]
  For every PCI function of FILE (a DTB or DTS; default: the built-in 6-GPU Witherspoon),
  the regions the NVLink2 subdriver registers, or its errno and reason.`;

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
    console.log(USAGE);
    return 0;
  }
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
  const fdt = readPlatformArg('dt doctor', positionals[0]);
  let host: ReturnType<typeof buildHost>;
  try {
    host = buildHost(fdt);
  } catch (err) {
    if (err instanceof HostError) throw cliErrorOf('dt doctor', err, `${fdt.source}: `);
    throw err;
  }
  for (const w of host.warnings) process.stderr.write(`dt doctor: warning: ${w}\n`);
  const entries = runDoctorOnHost(host, kernel ? { kernel: kernel as KernelVersion } : {});
  const text = values.json ? JSON.stringify(entries, null, 2) : formatDoctorReport(entries);
  await new Promise<void>((resolve, reject) => {
    process.stdout.write(`${text}\n`, (err) => (err ? reject(err) : resolve()));
  });
  return 0;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: 'boolean' },
      kernel: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
