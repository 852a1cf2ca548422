/**
 * `vfio-nvlink2 dt generate | show | doctor | diff`: write a Witherspoon device tree (DTB, or DTS
 * with --dts), print a tree or one node as DTS, and (dt-doctor.ts) say what the NVLink2
 * subdriver would do with every PCI function. The trees come from platform/witherspoon and
 * platform/default-platform, loaded by platform-arg.ts as every command loads a tree.
 */

import { type Fdt, serializeFdt, toDts } from '../fdt/index.ts';
import {
  GRACE_FLAG_SPEC,
  type GraceMachine,
  GraceOptionError,
  generateGrace,
  generateWitherspoon,
  graceOptionsFromFlags,
  WITHERSPOON_FLAG_SPEC,
  WitherspoonOptionError,
  witherspoonOptionsFromFlags,
} from '../platform/index.ts';
import { parseCliArgs as parseArgs } from './args.ts';
import { CliError, cliErrorOf, usageError } from './cli-error.ts';
import { logLine, printLine, stdoutIsTerminal, writeOutputFile, writeStdout } from './output.ts';

/** `dt generate --help`: every option with what it takes. */
const GENERATE_USAGE = `usage: vfio-nvlink2 dt generate [--machine witherspoon] [--gpus 4|6] [--gpu-ram 16|32]
           [--link-speed CODE|none] [--memory-map 4t-down|4t-up] [--pci-domains] [--omit PROP@NODE]...
           [--atsd-entries 0..8] [--memory-reg-u64s 0..8] [--p100 plain|nvlink1] [--dts] [-o FILE]
       vfio-nvlink2 dt generate --machine grace-hopper|grace-blackwell [--gpus 1..4] [--gpu-mem SIZE]
           [--gpu-mem-base ADDR] [--gpu-mem-cells 1|2] [--c2c-link up|down]
           [--hbm-training done|pending] [--mig-dvsec bug|fixed|absent] [--omit PROP@GPU]... [--dts] [-o FILE]

  Write a device tree (a DTB, or DTS with --dts) to FILE or stdout (a DTB never to a terminal).
  --machine M          witherspoon (default), grace-hopper (GH200, 96G) or grace-blackwell (GB200, 186G)
  Witherspoon (IBM POWER9 AC922, V100 SXM2 GPUs on NVLink2, as skiboot builds it):
  --gpus 4|6           GPUs (default 6: Sequoia; 4: Redbud)
  --gpu-ram 16|32      GiB of RAM per GPU (default 16)
  --link-speed CODE|none  ibm,nvlink-speed of every link, a u32 0..4294967295 (default 8); none omits it
  --memory-map 4t-down|4t-up  GPU RAM placement (default 4t-down; 4t-up holds at most 4 GPUs)
  --pci-domains        linux,pci-domain on every PHB
  --omit PROP@NODE     leave a property out (repeatable); NODE is a PCI name (0002:01:00.0),
                       a node path (/memory@3e000000000), GPU<n> or *
  --atsd-entries 0..8  ATSD registers per NPU (default 8)
  --memory-reg-u64s 0..8  u64s in each GPU memory node's reg (default 2)
  --p100 plain|nvlink1 P100 GPUs instead of V100: plain PCIe, or NVLink1
  Grace (nvgrace-gpu):
  --gpus 1..4          GPUs (default 1)
  --gpu-mem SIZE       device memory per GPU, 0..1P (e.g. 96G, 1536M, 0x40000000)
  --gpu-mem-base ADDR  its host physical address, a u64
  --gpu-mem-cells 1|2  cells of nvidia,gpu-mem-base-pa/size
  --c2c-link up|down   the C2C link's state the probe reads (default up)
  --hbm-training done|pending  HBM training state the probe waits for (default done)
  --mig-dvsec bug|fixed|absent  the MIG DVSEC as the kernel's bug reads it, fixed, or absent
  --omit PROP@GPU      leave a property out (repeatable); GPU is GPU<n>, a PCI name or *
  --dts                write DTS source instead of a DTB
  -o, --output FILE    write to FILE (replaced whole: through a temporary file and a rename)`;

const USAGE = `usage: vfio-nvlink2 dt <subcommand> [options]

  generate [--gpus 4|6] [--gpu-ram 16|32] [--link-speed CODE|none] [--memory-map 4t-down|4t-up]
           [--pci-domains] [--omit PROP@NODE]... [--atsd-entries 0..8] [--memory-reg-u64s N]
           [--p100 plain|nvlink1] [--dts] [-o FILE]
      Write a Witherspoon device tree (DTB, or DTS with --dts) to FILE or stdout.
      NODE is a PCI name (0001:00:01.1), a node path (/memory@3e000000000), GPU<n> or *.
  generate --machine grace-hopper|grace-blackwell [--gpus 1..4] [--gpu-mem SIZE]
           [--gpu-mem-base ADDR] [--gpu-mem-cells 1|2] [--c2c-link up|down]
           [--hbm-training done|pending] [--mig-dvsec bug|fixed|absent] [--omit PROP@GPU]...
      A Grace Hopper (GH200, 96G) or Grace Blackwell (GB200, 186G) tree for nvgrace-gpu; the
      faults reach each failing step of its probe. GPU is GPU<n>, a PCI name or *.
  show [FILE] [--node PATH] | [FILE] NODE PROPERTY... [-t TYPE] | NODE... -p|-l  [--json]
      Print a tree (default: the built-in 6-GPU Witherspoon) or one node as DTS, or property
      values as fdtget does (dt show --help).
  doctor [FILE | --live [DIR]] [--json | --format text|json|sarif] [--sarif FILE] [--fail-on LEVEL]
         [--kernel VERSION] [--fix-dtso FILE] [--fix-script FILE] | --explain RULE
      For every PCI function, what the NVLink2 subdriver's init would do; then the findings of
      the NVLink2 rules (dt doctor --help).
  diff A B [--json]
      What changed from tree A to tree B (DTB, DTS or a /proc/device-tree-like directory).

  'vfio-nvlink2 dt <subcommand> --help' lists a subcommand's options.`;

async function writeOutput(data: Uint8Array | string, file: string | undefined): Promise<void> {
  if (file !== undefined && file !== '-') {
    writeOutputFile('dt generate', file, data);
    return;
  }
  await writeStdout(data);
}

async function runGenerate(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseGenerate>;
  try {
    parsed = parseGenerate(argv);
  } catch (err) {
    throw usageError('dt generate', err);
  }
  const { values } = parsed;
  if (values.help) {
    await printLine(GENERATE_USAGE);
    return 0;
  }
  let fdt: Fdt;
  try {
    fdt = generateMachine(values);
  } catch (err) {
    if (err instanceof WitherspoonOptionError || err instanceof GraceOptionError)
      throw cliErrorOf('dt generate', err, '--', 2);
    throw err;
  }
  if (values.dts) {
    await writeOutput(toDts(fdt), values.output);
    return 0;
  }
  if ((values.output === undefined || values.output === '-') && stdoutIsTerminal()) {
    throw new CliError(
      'dt generate',
      'USAGE',
      'refusing to write a binary DTB to a terminal; use -o FILE or --dts',
    );
  }
  await writeOutput(serializeFdt(fdt), values.output);
  return 0;
}

const MACHINES = ['witherspoon', 'grace-hopper', 'grace-blackwell'] as const;

/** The tree `--machine` names, built from the flags that machine takes. @throws CliError, *OptionError */
function generateMachine(values: ReturnType<typeof parseGenerate>['values']): Fdt {
  const machine = values.machine ?? 'witherspoon';
  if (!(MACHINES as readonly string[]).includes(machine))
    throw new CliError(
      'dt generate',
      'USAGE',
      `--machine must be ${MACHINES.join(', ')}, not '${machine}'`,
    );
  const grace = machine !== 'witherspoon';
  const foreign = Object.keys(grace ? WITHERSPOON_FLAG_SPEC : GRACE_FLAG_SPEC).filter(
    (flag) =>
      flag !== 'gpus' && flag !== 'omit' && values[flag as keyof typeof values] !== undefined,
  );
  if (foreign.length > 0)
    throw new CliError(
      'dt generate',
      'USAGE',
      `--${foreign[0]} is not an option of --machine ${machine}`,
    );
  if (grace) return generateGrace(graceOptionsFromFlags(machine as GraceMachine, values));
  return generateWitherspoon(witherspoonOptionsFromFlags(values));
}

function parseGenerate(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      ...WITHERSPOON_FLAG_SPEC,
      ...GRACE_FLAG_SPEC,
      machine: { type: 'string' },
      dts: { type: 'boolean' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
    strict: true,
  });
}

/**
 * `vfio-nvlink2 dt generate | show | doctor`: returns the exit status.
 * @throws CliError USAGE, DT_OPTION, DT_PARSE, NOT_FOUND, FILE (README.md "Errors").
 */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'generate':
      return runGenerate(rest);
    case 'show':
      return (await import('./dt-show.ts')).runShow(rest);
    // ---- dt doctor: implemented in ./dt-doctor.ts (another engineer's module) ----
    case 'doctor':
      return (await import('./dt-doctor.ts')).runDoctor(rest);
    case 'diff':
      return (await import('./dt-diff.ts')).runDiff(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      if (sub === undefined) {
        logLine(USAGE);
        return 2;
      }
      await printLine(USAGE);
      return 0;
    default:
      throw new CliError(
        'dt',
        'USAGE',
        `unknown subcommand '${sub}' (generate, show, doctor or diff)`,
      );
  }
}
