/**
 * `vfio-nvlink2 migrate --from SOCKET --to SOCKET [--precopy-rounds N] [--pause-pid PID]... [--json]`:
 * live-migrates the device served on one socket into the device served on another, as a VMM
 * drives migration v2 (src/vfio-user/client/migrate-device.ts): pre-copy rounds until the
 * dirty set converges, stop-copy, the destination checks the stream and runs. `--pause-pid`
 * names processes that write through the source's mappings in the guest's place: they are
 * stopped (SIGSTOP) when the source stops, as a VMM pauses its vCPUs, and left stopped (the
 * guest now runs on the destination); resumed (SIGCONT) when the migration fails or is
 * interrupted (SIGHUP, SIGINT, SIGTERM), as a VMM resumes its vCPUs. Prints rounds, bytes per round, downtime (source stopped
 * → destination running) and total time; a progress bar on a terminal.
 */
import { type Stats, statSync } from 'node:fs';
import { constants } from 'node:os';
import { pauseProcesses } from '../bench/index.ts';
import { layoutTable } from '../text/index.ts';
import { formatBytes } from '../vfio/index.ts';
import {
  type MigrateReport,
  migrateDevice,
  QEMU_MSG_TIMEOUT_MS,
  VfioUserClient,
} from '../vfio-user/index.ts';
import { parseCliArgs as parseArgs } from './args.ts';
import { CliError, cliErrorOf, usageError } from './cli-error.ts';
import { startProgress, stopAllProgress } from './progress.ts';
import { socketFailure } from './socket-advice.ts';

const USAGE = `usage: vfio-nvlink2 migrate --from SOCKET --to SOCKET [--precopy-rounds N] [--pause-pid PID]... [--json]

Live-migrates the device served on --from into the device served on --to (vfio-user
migration v2): pre-copy rounds while the source runs, until the dirty set converges or N
rounds (default 8; 0: stop at once), then stop-copy; the destination checks the stream and runs.
  --pause-pid PID  a process writing through the source's mappings for the guest: stopped
                   (SIGSTOP) when the source stops, as a VMM pauses its vCPUs (repeatable);
                   resumed (SIGCONT) if the migration fails or is interrupted
  --json           the report as JSON`;

/** Default most pre-copy rounds. */
const DEFAULT_ROUNDS = 8;

interface MigrateArgs {
  readonly from: string;
  readonly to: string;
  readonly rounds: number;
  readonly pausePids: readonly number[];
  readonly json: boolean;
}

function parse(argv: string[]): MigrateArgs | 'help' {
  let values: {
    from?: string;
    to?: string;
    'precopy-rounds'?: string;
    'pause-pid'?: string[];
    json?: boolean;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        'precopy-rounds': { type: 'string' },
        'pause-pid': { type: 'string', multiple: true },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw usageError('migrate', err);
  }
  if (values.help) return 'help';
  if (values.from === undefined || values.to === undefined)
    throw new CliError(
      'migrate',
      'USAGE',
      `--from SOCKET and --to SOCKET are required\n\n${USAGE}`,
    );
  checkSockets(values.from, values.to);
  const rounds = values['precopy-rounds'] ?? String(DEFAULT_ROUNDS);
  if (!/^\d{1,4}$/.test(rounds))
    throw new CliError(
      'migrate',
      'USAGE',
      `--precopy-rounds must be a whole number from 0 to 9999, not '${rounds}'`,
    );
  const pausePids = (values['pause-pid'] ?? []).map((p) => {
    if (!/^[1-9]\d{0,9}$/.test(p))
      throw new CliError(
        'migrate',
        'USAGE',
        `--pause-pid must be a process id (a whole number from 1), not '${p}'`,
      );
    return Number(p);
  });
  return {
    from: values.from,
    to: values.to,
    rounds: Number(rounds),
    pausePids,
    json: values.json ?? false,
  };
}

/** A path's file, or undefined when there is none (connect names that error). */
function statOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * --from and --to must be two sockets: the same one by another path (`dir/./x.sock`, a
 * symlinked directory: same st_dev and st_ino) is a usage error, as is a --to that is a
 * directory or a regular file.
 */
function checkSockets(from: string, to: string): void {
  const a = statOf(from);
  const b = statOf(to);
  if (from === to || (a && b && a.dev === b.dev && a.ino === b.ino))
    throw new CliError(
      'migrate',
      'USAGE',
      from === to
        ? `--from and --to are the same socket ${from}`
        : `--from and --to are the same socket ${from} (${to} is another path to it)`,
    );
  for (const [flag, path, st] of [
    ['--from', from, a],
    ['--to', to, b],
  ] as const) {
    if (st && !st.isSocket())
      throw new CliError(
        'migrate',
        'USAGE',
        `${flag} ${path} is not a socket but a ${st.isDirectory() ? 'directory' : 'file'}; give a device's socket (serve prints them, e.g. ${st.isDirectory() ? `${path}/` : ''}<BDF>.sock)`,
      );
  }
}

async function connect(socket: string, role: string): Promise<VfioUserClient> {
  try {
    // QEMU's bound on each reply (not on the migration): a 1 MiB stream chunk fits it easily.
    return await VfioUserClient.connect(socket, { replyTimeoutMs: QEMU_MSG_TIMEOUT_MS });
  } catch (err) {
    throw socketFailure('migrate', err, `${role} ${socket}: `);
  }
}

/** The report for people: one row per round, then the totals. */
export function formatMigrateReport(r: MigrateReport): string {
  const rows = r.roundBytes.map((bytes, i) => [
    i < r.precopyRounds ? `pre-copy ${i + 1}` : 'stop-copy',
    formatBytes(bytes),
  ]);
  const table = layoutTable(['round', { title: 'bytes', align: 'right' }], rows).lines;
  // Bytes per second in the unit that fits (a bridge's few KiB would read "0 MB/s").
  const rate =
    r.stopCopyMs > 0
      ? `${formatBytes(Math.round((r.stopCopyBytes * 1000) / r.stopCopyMs))}/s`
      : 'instant';
  return [
    ...table,
    `pre-copy rounds ${r.precopyRounds}, sent ${formatBytes(r.totalBytes)}; downtime ${r.downtimeMs.toFixed(1)} ms (stop-copy ${formatBytes(r.stopCopyBytes)} in ${r.stopCopyMs.toFixed(1)} ms, ${rate}); total ${r.totalMs.toFixed(1)} ms`,
  ].join('\n');
}

/** The signals that end migrate with the paused pids resumed (a closed terminal: SIGHUP). */
const INTERRUPTS = ['SIGHUP', 'SIGINT', 'SIGTERM'] as const;

/** The pids stopped so far: sent SIGCONT when the migration fails or is interrupted. */
const paused = new Set<number>();

/** SIGCONT to every pid we stopped (as a VMM resumes its vCPUs when migration fails). */
function resumePaused(): void {
  for (const pid of paused) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone meanwhile: nothing to resume
    }
  }
  paused.clear();
}

function pause(pids: readonly number[]): void {
  for (const pid of pids) paused.add(pid); // before SIGSTOP: a half-done pause is undone too
  try {
    pauseProcesses(pids);
  } catch (err) {
    throw cliErrorOf('migrate', err, '--pause-pid: ');
  }
}

/**
 * `vfio-nvlink2 migrate`: returns the exit status (0).
 * @throws CliError USAGE; the servers' errno (EINVAL for a refused transition or a bad stream,
 *   ENOTTY when a server does not migrate) naming the socket; ECONNREFUSED/ENOENT for no server.
 */
export async function run(argv: string[]): Promise<number> {
  const args = parse(argv);
  if (args === 'help') {
    console.log(USAGE);
    return 0;
  }
  // Interrupted (^C, kill): the paused writers run again before we exit, as the guest would.
  const onSignal = (signal: NodeJS.Signals) => {
    stopAllProgress(); // the terminal back (cursor, line wrap) before the line and the exit
    resumePaused();
    process.stderr.write(`vfio-nvlink2: migrate: interrupted (${signal}); paused pids resumed\n`);
    process.exit(128 + constants.signals[signal]); // as a shell reports a death by signal
  };
  for (const signal of INTERRUPTS) process.on(signal, onSignal);
  try {
    return await migrate(args);
  } catch (err) {
    resumePaused();
    throw err;
  } finally {
    paused.clear(); // success: the guest runs on the destination, the writers stay stopped
    for (const signal of INTERRUPTS) process.off(signal, onSignal);
  }
}

async function migrate(args: MigrateArgs): Promise<number> {
  const source = await connect(args.from, 'source');
  let destination: VfioUserClient | undefined;
  const bar = startProgress('migrate', Math.max(args.rounds, 0) + 2, {
    quiet: args.json,
    unit: 'phases',
  });
  try {
    destination = await connect(args.to, 'destination');
    const report = await migrateDevice(source, destination, {
      maxRounds: args.rounds,
      sourceName: `source ${args.from}`,
      destinationName: `destination ${args.to}`,
      beforeStop: () => pause(args.pausePids),
      onProgress: (phase, round, bytes) =>
        bar.update(phase === 'resume' ? args.rounds + 2 : round, `${phase} ${formatBytes(bytes)}`),
    });
    bar.stop();
    if (args.json)
      console.log(JSON.stringify({ from: args.from, to: args.to, ...report }, null, 2));
    else console.log(`migrated ${args.from} → ${args.to}\n${formatMigrateReport(report)}`);
    return 0;
  } catch (err) {
    bar.stop();
    if (err instanceof CliError) throw err;
    throw cliErrorOf('migrate', err);
  } finally {
    source.close();
    destination?.close();
  }
}
