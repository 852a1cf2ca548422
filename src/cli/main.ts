#!/usr/bin/env node
/**
 * `vfio-nvlink2`: the command-line entry. Each subcommand lives in its own module exporting
 * `run(argv)`, which returns the process exit code; this file only dispatches.
 */
import { CliError, cliErrorOf } from './cli-error.ts';

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  dt: {
    summary: 'device trees: generate | show | doctor | diff',
    load: async () => (await import('./dt.ts')).run,
  },
  inspect: {
    summary: 'a device as a VMM sees it (in process with --dt, or over a vfio-user socket)',
    load: async () => (await import('./inspect.ts')).run,
  },
  serve: {
    summary: 'serve every GPU and NVLink bridge over vfio-user sockets',
    load: async () => (await import('./serve.ts')).run,
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
  },
  bench: {
    summary: 'measure the server against a raw socket floor',
    load: async () => (await import('./bench.ts')).run,
  },
  fuzz: {
    summary: 'send a fresh server mutated and random messages, then check it still serves',
    load: async () => (await import('./fuzz.ts')).run,
  },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return `usage: vfio-nvlink2 <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'vfio-nvlink2 <command> --help' for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    console.error(`vfio-nvlink2: ${name}: USAGE: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return (await command.load())(rest);
}

const argv = process.argv.slice(2);
main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // Every error prints as `vfio-nvlink2: <command>: <code>: <message>` (README.md "Errors"):
    // a CliError as its command made it; any other error of ours with its own code; anything
    // else is a bug, INTERNAL, with its stack for the report.
    const line = err instanceof CliError ? err : cliErrorOf(argv[0] ?? '', err);
    console.error(`vfio-nvlink2: ${line.message}`);
    if (line.code === 'INTERNAL' && err instanceof Error && err.stack) console.error(err.stack);
    process.exitCode = line.exitCode;
  },
);
