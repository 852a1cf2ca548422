/**
 * `vfio-nvlink2 migrate --from SOCKET --to SOCKET [--precopy-rounds N] [--pause-pid PID]... [--json]`:
 * live-migrates the device served on one socket into the device served on another, as a VMM
 * drives migration v2 (src/vfio-user/client/migrate-device.ts): pre-copy rounds until the
 * dirty set converges, stop-copy, the destination checks the stream and runs. `--pause-pid`
 * names processes that write through the source's mappings in the guest's place: they are
 * stopped (SIGSTOP) when the source stops, as a VMM pauses its vCPUs, and left stopped (the
 * guest now runs on the destination). Prints rounds, bytes per round, downtime (source stopped
 * → destination running) and total time; a progress bar on a terminal.
 */
import { parseArgs } from 'node:util';
import { pauseProcesses } from '../bench/index.ts';
import { layoutTable } from '../text/index.ts';
import { formatBytes } from '../vfio/index.ts';
import { type MigrateReport, migrateDevice, VfioUserClient } from '../vfio-user/index.ts';
import { CliError, cliErrorOf, usageError } from './cli-error.ts';
import { startProgress } from './progress.ts';

const USAGE = `usage: vfio-nvlink2 migrate --from SOCKET --to SOCKET [--precopy-rounds N] [--pause-pid PID]... [--json]

Live-migrates the device served on --from into the device served on --to (vfio-user
migration v2): pre-copy rounds while the source runs, until the dirty set converges or N
rounds (default 8; 0: stop at once), then stop-copy; the destination checks the stream and runs.
  --pause-pid PID  a process writing through the source's mappings for the guest: stopped
                   (SIGSTOP) when the source stops, as a VMM pauses its vCPUs (repeatable)
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
  if (values.from === values.to)
    throw new CliError('migrate', 'USAGE', `--from and --to are the same socket ${values.from}`);
  const rounds = values['precopy-rounds'] ?? String(DEFAULT_ROUNDS);
  if (!/^\d{1,4}$/.test(rounds))
    throw new CliError('migrate', 'USAGE', `--precopy-rounds ${rounds}: a whole number (0–9999)`);
  const pausePids = (values['pause-pid'] ?? []).map((p) => {
    if (!/^[1-9]\d{0,9}$/.test(p))
      throw new CliError('migrate', 'USAGE', `--pause-pid ${p}: not a pid`);
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

async function connect(socket: string, role: string): Promise<VfioUserClient> {
  try {
    return await VfioUserClient.connect(socket);
  } catch (err) {
    throw cliErrorOf('migrate', err, `${role} ${socket}: `);
  }
}

/** The report for people: one row per round, then the totals. */
export function formatMigrateReport(r: MigrateReport): string {
  const rows = r.roundBytes.map((bytes, i) => [
    i < r.precopyRounds ? `pre-copy ${i + 1}` : 'stop-copy',
    formatBytes(bytes),
  ]);
  const table = layoutTable(['round', { title: 'bytes', align: 'right' }], rows).lines;
  const mbps = r.stopCopyMs > 0 ? r.stopCopyBytes / 1e6 / (r.stopCopyMs / 1000) : 0;
  return [
    ...table,
    `pre-copy rounds ${r.precopyRounds}, sent ${formatBytes(r.totalBytes)}; downtime ${r.downtimeMs.toFixed(1)} ms (stop-copy ${formatBytes(r.stopCopyBytes)} in ${r.stopCopyMs.toFixed(1)} ms, ${mbps.toFixed(0)} MB/s); total ${r.totalMs.toFixed(1)} ms`,
  ].join('\n');
}

function pause(pids: readonly number[]): void {
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
