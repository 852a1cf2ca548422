/**
 * `vfio-nvlink2 ...argv` up to its exit status: dispatch to the subcommand (each lives in its
 * own module exporting `run(argv)`, loaded when it runs) and every error as the one line
 * README.md "Errors" gives. main.ts, the bin, runs it on process.argv; tests run it in process
 * on captured output (setOutputStreams) where a spawned process would add nothing.
 */
import { loadNativeAddon } from '../native/index.ts';
import { CliError, cliErrorOf } from './cli-error.ts';
import { EXIT_CLOSED_PIPE, logLine, OutputError, outputFailure, printLine } from './output.ts';
import { packageVersion } from './package-version.ts';

type Command = (argv: string[]) => Promise<number>;

/**
 * Each command: its summary, its module, and whether it needs the native addon (checked before
 * it runs, so that a missing or out-of-date addon is one ADDON line, never an error of the
 * command's own code wrapped around it). `dt`, `guest`, `topology` and `trace` run without it
 * (those of their paths that do need it fail with ADDON on first use).
 */
const commands: Record<string, { summary: string; load: () => Promise<Command>; native?: true }> = {
  dt: {
    summary: 'device trees: generate | show | doctor | diff',
    load: async () => (await import('./dt.ts')).run,
  },
  inspect: {
    summary: 'a device as a VMM sees it (in process with --dt, or over a vfio-user socket)',
    load: async () => (await import('./inspect.ts')).run,
    native: true,
  },
  serve: {
    summary: 'serve every GPU and NVLink bridge over vfio-user sockets',
    load: async () => (await import('./serve.ts')).run,
    native: true,
  },
  guest: {
    summary:
      "the guest's view of served GPUs: NVLink2 as QEMU 4.1-8.1 built it, Grace as QEMU 9.0+ takes it",
    load: async () => (await import('./guest.ts')).run,
  },
  topology: {
    summary: 'a picture of the machine: chips, NPUs, GPUs, NVLinks, groups (SVG, HTML, DOT)',
    load: async () => (await import('./topology.ts')).run,
  },
  trace: {
    summary: "stream a running serve's tracepoints live (ftrace text, or Chrome JSON for Perfetto)",
    load: async () => (await import('./trace.ts')).run,
  },
  migrate: {
    summary: 'live-migrate a device from one serve socket to another (vfio-user migration v2)',
    load: async () => (await import('./migrate.ts')).run,
    native: true,
  },
  bench: {
    summary: 'measure the server against a raw socket floor',
    load: async () => (await import('./bench.ts')).run,
    native: true,
  },
  fuzz: {
    summary: 'send a fresh server mutated and random messages, then check it still serves',
    load: async () => (await import('./fuzz.ts')).run,
    native: true,
  },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return `usage: vfio-nvlink2 <command> [options]
       vfio-nvlink2 help [COMMAND [SUBCOMMAND]] | --help | --version

commands:
${lines.join('\n')}

Run 'vfio-nvlink2 help <command>' or 'vfio-nvlink2 <command> --help' for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    logLine(usage());
    return 2;
  }
  if (name === '--version' || name === '-V') {
    await printLine(`vfio-nvlink2 ${packageVersion() ?? 'unknown'}`);
    return 0;
  }
  if (name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    await printLine(usage());
    return 0;
  }
  // `help serve`, `help dt generate`: the command's own --help.
  const [target, args] =
    name === 'help' ? [rest[0] as string, [...rest.slice(1), '--help']] : [name, rest];
  const command = commands[target];
  if (!command)
    throw new CliError(
      name === 'help' ? 'help' : target,
      'USAGE',
      `unknown command '${target}'\n\n${usage()}`,
    );
  if (command.native && !args.includes('--help') && !args.includes('-h')) {
    try {
      loadNativeAddon();
    } catch (err) {
      throw cliErrorOf(name === 'help' ? 'help' : commandOf([target, ...args]), err);
    }
  }
  return (await command.load())(args);
}

/** The command as a user typed it, for the error line ('dt show', 'serve'). */
function commandOf(argv: readonly string[]): string {
  const [name = '', sub] = argv;
  if (name.startsWith('-')) return name.replace(/^-+/, ''); // --help, --version
  return name === 'dt' && sub !== undefined && /^[a-z]+$/.test(sub) ? `dt ${sub}` : name;
}

/**
 * The exit status after stdout or stderr failed: a closed pipe ends quietly (141, as SIGPIPE
 * would); anything else is one line on stderr, if stderr still works, and status 1.
 */
function outputFailed(failure: OutputError, command: string): number {
  if (failure.closedPipe) return EXIT_CLOSED_PIPE;
  if (failure.stream === 'stdout')
    logLine(`vfio-nvlink2: ${command}: ${failure.code}: ${failure.message}`);
  return 1;
}

/**
 * Runs `vfio-nvlink2 ...argv` and returns its exit status: the command's own, 1 (or the
 * CliError's) after its error line on stderr, 141 after a closed stdout (EXIT_CLOSED_PIPE).
 * Never rejects.
 */
export async function runCommandLine(argv: string[]): Promise<number> {
  try {
    const code = await main(argv);
    const failed = outputFailure();
    return failed ? outputFailed(failed, commandOf(argv)) : code;
  } catch (err: unknown) {
    if (err instanceof OutputError) return outputFailed(err, commandOf(argv));
    // Every error prints as `vfio-nvlink2: <command>: <code>: <message>` (README.md "Errors"):
    // a CliError as its command made it; any other error of ours with its own code; anything
    // else is a bug, INTERNAL, with its stack for the report.
    const line = err instanceof CliError ? err : cliErrorOf(commandOf(argv), err);
    logLine(`vfio-nvlink2: ${line.message}`);
    if (line.code === 'INTERNAL' && err instanceof Error && err.stack) logLine(err.stack);
    return line.exitCode;
  }
}
