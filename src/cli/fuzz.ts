/**
 * `vfio-nvlink2 fuzz --messages N [--seed S] [--json]`: starts a `serve` child (the built-in
 * platform, every device, a temporary socket directory) and sends it N mutated and random
 * messages over concurrent connections (src/fuzz/run-fuzz.ts), then checks a well-behaved
 * client is served right on every device and GPU RAM written before the run is unchanged.
 * Progress bar on a terminal (stderr); the summary on stdout, or the report as JSON with
 * --json. Exit 0 when every check passed, 1 on any failure, 2 for bad usage.
 */
import { randomInt } from 'node:crypto';
import type { PlannedConnection } from '../fuzz/index.ts';
import {
  DEFAULT_LANES,
  DEFAULT_STALL_MS,
  type FuzzOptions,
  type FuzzReport,
  isKnownFault,
  KNOWN_FAULTS,
  type KnownFault,
  renderSummary,
  runFuzz,
} from '../fuzz/index.ts';
import { parseCliArgs as parseArgs } from './args.ts';
import { CliError, usageError } from './cli-error.ts';
import { printLine } from './output.ts';
import { startProgress } from './progress.ts';

const USAGE = `usage: vfio-nvlink2 fuzz [--messages N] [--seed S] [--lanes L] [--json]

Fuzzes a fresh \`serve\` (built-in platform, all 18 devices) with N messages (default 10000):
valid messages of every command with mutated fields, bad framing, wrong fd counts and kinds,
huge sizes and overflowing offsets, over L concurrent connections (default ${DEFAULT_LANES}), with
disconnects mid-message. Then checks every device serves a well-behaved client and that GPU
RAM written before the run is unchanged. The same seed sends the same messages.

  --messages N        messages to send
  --seed S            u32 seed (default: random, printed in the summary)
  --lanes L           concurrent connections, each on its own devices
  --stall-seconds T   report a stall after T s without progress (default ${DEFAULT_STALL_MS / 1000})
  --avoid NAME        steer around a known fault (repeatable): ${Object.keys(KNOWN_FAULTS).join(', ')}
  --replay LANE:CONN  play only that connection of the run (same seed and --messages), and
                      list its frames on stderr
  --server-log FILE   copy the server's whole log into FILE
  --trace FILE        the server writes its NVLink2 tracepoints to FILE (serve --trace)
  --json              print the report as JSON (no progress bar)
Exit status: 0 when every check passed, 1 otherwise.`;

function positiveInt(
  name: string,
  text: string | undefined,
  fallback: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new CliError(
      'fuzz',
      'USAGE',
      `--${name} must be an integer from 0 to ${max}, not '${text}'`,
    );
  }
  return n;
}

const OPTIONS = {
  messages: { type: 'string' },
  seed: { type: 'string' },
  lanes: { type: 'string' },
  'stall-seconds': { type: 'string' },
  avoid: { type: 'string', multiple: true },
  replay: { type: 'string' },
  'server-log': { type: 'string' },
  trace: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(argv: string[]): (FuzzOptions & { json: boolean }) | 'help' {
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS }>>['values'];
  try {
    ({ values } = parseArgs({
      args: argv,
      options: OPTIONS,
    }));
  } catch (err) {
    throw usageError('fuzz', err);
  }
  if (values.help) return 'help';
  const avoid = new Set<KnownFault>();
  for (const name of values.avoid ?? []) {
    if (!isKnownFault(name)) {
      throw new CliError(
        'fuzz',
        'USAGE',
        `--avoid '${name}' is not a known fault (${Object.keys(KNOWN_FAULTS).join(', ')})`,
      );
    }
    avoid.add(name);
  }
  let only: FuzzOptions['only'];
  if (values.replay !== undefined) {
    const m = /^(\d+):(\d+)$/.exec(values.replay);
    if (!m)
      throw new CliError('fuzz', 'USAGE', `--replay takes LANE:CONNECTION, not '${values.replay}'`);
    only = { lane: Number(m[1]), connection: Number(m[2]) };
  }
  return {
    ...(only ? { only, onPlan: printPlan } : {}),
    ...(values['server-log'] === undefined ? {} : { serverLog: values['server-log'] }),
    messages: positiveInt('messages', values.messages, 10_000, 1e9),
    seed: positiveInt('seed', values.seed, randomInt(0, 0xffffffff), 0xffffffff),
    lanes: Math.max(1, positiveInt('lanes', values.lanes, DEFAULT_LANES, 64)),
    stallMs:
      1000 *
      Math.max(
        1,
        positiveInt('stall-seconds', values['stall-seconds'], DEFAULT_STALL_MS / 1000, 3600),
      ),
    avoid,
    serveArgs: values.trace === undefined ? [] : ['--trace', values.trace],
    json: values.json ?? false,
  };
}

/** A replayed connection's frames, one line each (stderr). */
function printPlan(lane: number, connection: number, plan: PlannedConnection): void {
  const err = (line: string) => process.stderr.write(`${line}\n`);
  err(
    `lane ${lane} connection ${connection}: device ${plan.device}, ${plan.frames.length} frames, end ${plan.end}${plan.end === 'cut' ? ` at byte ${plan.cutAt}` : ''}`,
  );
  for (const [i, f] of plan.frames.entries()) {
    err(
      `  ${i} ${f.expect.padEnd(9)} ${String(f.bytes.length).padStart(8)} B ${f.fds.length ? `fds ${f.fds.join(',')} ` : ''}${f.label}`,
    );
  }
  for (const f of plan.intruder) err(`  intruder ${f.expect} ${f.label}`);
}

/**
 * `vfio-nvlink2 fuzz`: returns the exit status (non-zero when the server failed a check).
 * @throws CliError USAGE for bad usage.
 */
export async function run(argv: string[]): Promise<number> {
  const options = parse(argv);
  if (options === 'help') {
    await printLine(USAGE);
    return 0;
  }
  const bar = startProgress('fuzz', options.messages, {
    quiet: options.json,
    unit: 'messages',
    eta: true,
  });
  // ^C: exit at once; the run's exit handler kills the server and removes its directory (the
  // bar puts the terminal back on exit).
  const interrupt = (signal: NodeJS.Signals) => {
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  let report: FuzzReport;
  try {
    report = await runFuzz(options, (sent) => bar.update(sent));
  } finally {
    bar.stop();
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
  await printLine(options.json ? JSON.stringify(report, null, 2) : renderSummary(report));
  return report.failures.length === 0 ? 0 : 1;
}
