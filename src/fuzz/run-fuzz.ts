/**
 * A fuzz run against a real `serve` child: prepare (learn every device, touch its regions,
 * write the canaries, take the baseline of fds and tables once the server is idle), send
 * `messages` planned frames over `lanes` concurrent lanes (each lane owns a disjoint set of
 * devices and plans its connections from its own seeded stream), then check that the server
 * still runs, serves a well-behaved client right on every device, kept every canary, and is
 * back to its baseline (fds, LPIDs, partitions, firmware tables) once every client has gone.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { messageOf } from '../errors/index.ts';
import { messageSizeLimit } from '../vfio-user/index.ts';
import type { KnownFault } from './known-faults.ts';
import type { FramingLimits } from './mutate.ts';
import type { FuzzDevice, PlannedConnection } from './plan.ts';
import { LanePlanner } from './planner.ts';
import { type ConnectionContext, runConnection } from './run-connection.ts';
import { ServeChild, type ServerTables } from './serve-child.ts';
import { type Anomaly, emptyCounts, type FuzzCounts } from './stats.ts';
import { type CheckFailure, checkDevice, type DeviceFacts, prepareDevice } from './well-behaved.ts';

/**
 * Options of `runFuzz`: messages, seed, lanes, stall timeout (ms), faults to avoid, serve's
 * arguments, and replay and logging.
 */
export interface FuzzOptions {
  readonly messages: number;
  readonly seed: number;
  /** Concurrent connections, each on its own devices (at most the device count). */
  readonly lanes: number;
  /** Most milliseconds without progress while the server owes something. */
  readonly stallMs: number;
  readonly avoid: ReadonlySet<KnownFault>;
  /** Extra arguments for `serve`. */
  readonly serveArgs: readonly string[];
  /** A file to copy the server's whole log into. */
  readonly serverLog?: string;
  /** Replay one connection of the run alone (the frames it planned, nothing else). */
  readonly only?: { readonly lane: number; readonly connection: number };
  /** Called with each connection's plan before it is played (e.g. to print its frames). */
  readonly onPlan?: (lane: number, connection: number, plan: PlannedConnection) => void;
}

/** One lane per device of the built-in platform: the most concurrency without collisions. */
export const DEFAULT_LANES = 18;
/** How long (ms) a connection may make no progress before the run reports it as stalled. */
export const DEFAULT_STALL_MS = 60_000;
const ANOMALIES_KEPT = 50;
/** How long the server gets to release everything after the last client left. */
const SETTLE_MS = 30_000;

/**
 * What a fuzz run found: its seed and plan, counts, anomalies, the server's state after (alive,
 * fds, RSS in KiB, internal errors, checks), seconds taken and failures.
 */
export interface FuzzReport {
  readonly seed: number;
  readonly messagesPlanned: number;
  readonly lanes: number;
  readonly devices: number;
  readonly counts: FuzzCounts;
  readonly anomalies: readonly Anomaly[];
  readonly anomalyCount: number;
  readonly server: {
    readonly alive: boolean;
    readonly exit: string;
    readonly logLines: number;
    readonly internalErrors: readonly string[];
    readonly internalErrorCount: number;
    readonly fdsBefore: number;
    readonly fdsAfter: number | null;
    readonly rssKiBBefore: number;
    readonly rssKiBAfter: number | null;
    /** CPU seconds the server spent (user + system, /proc/PID/stat) up to the checks. */
    readonly cpuSeconds: number | null;
    readonly tablesUnchanged: boolean | null;
    readonly logTail: readonly string[];
  };
  readonly checks: readonly CheckFailure[];
  readonly seconds: number;
  /** Every failure in one line each; empty when the run passed. */
  readonly failures: readonly string[];
}

/** Polls `probe` until it holds or `ms` passed; returns whether it held. */
async function settle(probe: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (probe()) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

/** Where two JSON texts part: a little context from the first difference on. */
function describeChange(before: string, after: string): string {
  let i = 0;
  while (i < before.length && before[i] === after[i]) i++;
  const from = Math.max(0, i - 60);
  return `before …${before.slice(from, i + 80)}… after …${after.slice(from, i + 80)}…`;
}

function sameTables(a: ServerTables, b: ServerTables): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Runs the fuzzer; `progress(sent)` is called as messages go out.
 * @throws Error when the server cannot be started or prepared (nothing was fuzzed then).
 */
export async function runFuzz(
  options: FuzzOptions,
  progress: (sent: number) => void = () => {},
): Promise<FuzzReport> {
  const t0 = Date.now();
  const serve = await ServeChild.start(options.serveArgs, options.serverLog);
  try {
    const served = serve.devices();
    const facts: DeviceFacts[] = [];
    for (const [i, d] of served.entries()) facts.push(await prepareDevice(d, options.seed, i));
    const devices: FuzzDevice[] = facts.map((f) => f.device);
    await settle(() => serve.tables().partitions.length === 0, SETTLE_MS);
    const before = { fds: serve.fdCount(), rss: serve.rssKiB(), tables: serve.tables() };

    const counts = emptyCounts();
    const anomalies: Anomaly[] = [];
    let anomalyCount = 0;
    const lanes = Math.max(1, Math.min(options.lanes, devices.length));
    const limits: FramingLimits = {
      maxMessageSize: messageSizeLimit(1 << 20),
      maxFds: 16,
    };
    // A stall means the server stopped answering (its event loop is stuck): stop the run.
    let stalled = false;
    const aborted = () => stalled || serve.exit !== null;
    const runLane = async (lane: number, budget: number) => {
      if (options.only && options.only.lane !== lane) return;
      const own = devices.map((_, i) => i).filter((i) => i % lanes === lane);
      const planner = new LanePlanner(
        { seed: options.seed, devices, limits, maxDataXferSize: 1 << 20, avoid: options.avoid },
        lane,
        own,
      );
      for (let n = 0; budget > 0 && !aborted(); n++) {
        const plan = planner.next(budget);
        budget -= plan.frames.length + plan.intruder.length;
        if (options.only && options.only.connection !== n) {
          if (n > options.only.connection) break;
          continue;
        }
        options.onPlan?.(lane, n, plan);
        counts.guarded += plan.guarded;
        const device = devices[plan.device]!;
        const ctx: ConnectionContext = {
          lane,
          index: n,
          device,
          counts,
          stallMs: options.stallMs,
          aborted,
          anomaly: (a) => {
            if (a.kind === 'stall' || a.kind === 'kept-connection') stalled = true;
            anomalyCount++;
            if (anomalies.length < ANOMALIES_KEPT) {
              anomalies.push({ ...a, lane, connection: n, device: device.address });
            }
          },
        };
        const sentBefore = counts.messages;
        try {
          await runConnection(ctx, plan);
        } catch (e) {
          ctx.anomaly({ kind: 'connect-failed', detail: messageOf(e) });
        }
        if (counts.messages !== sentBefore) progress(counts.messages);
      }
    };
    const budgets = Array.from(
      { length: lanes },
      (_, i) => Math.floor(options.messages / lanes) + (i < options.messages % lanes ? 1 : 0),
    );
    await Promise.all(budgets.map((b, lane) => runLane(lane, b)));

    const failures: string[] = [];
    const alive = serve.exit === null;
    const checks: CheckFailure[] = [];
    if (stalled) failures.push('the server stopped answering: the run was stopped, no checks made');
    let fdsAfter: number | null = null;
    let rssAfter: number | null = null;
    const cpuSeconds = serve.exit === null ? serve.cpuSeconds() : null;
    let tablesUnchanged: boolean | null = null;
    if (!alive) {
      failures.push(`the server died: ${serve.describeExit()}`);
      anomalyCount++;
      anomalies.push({
        kind: 'server-exited',
        detail: serve.describeExit(),
        lane: -1,
        connection: -1,
        device: '-',
      });
    } else if (!stalled) {
      for (const [i, f] of facts.entries()) checks.push(...(await checkDevice(f, options.seed, i)));
      await settle(
        () =>
          serve.exit !== null ||
          (sameTables(serve.tables(), before.tables) && serve.fdCount() <= before.fds),
        SETTLE_MS,
      );
      if (serve.exit === null) {
        fdsAfter = serve.fdCount();
        rssAfter = serve.rssKiB();
        tablesUnchanged = sameTables(serve.tables(), before.tables);
        if (fdsAfter > before.fds) {
          failures.push(
            `the server holds ${fdsAfter} fds after every client left, ${before.fds} before the run`,
          );
        }
        if (!tablesUnchanged) {
          const after = serve.tables();
          for (const key of ['partitions', 'lpidsInUse', 'firmware'] as const) {
            const a = JSON.stringify(before.tables[key]);
            const b = JSON.stringify(after[key]);
            if (a !== b) {
              failures.push(
                `state.json ${key} differs from before the run: ${describeChange(a, b)}`,
              );
            }
          }
        }
      } else {
        failures.push(`the server died during the checks: ${serve.describeExit()}`);
      }
    }
    for (const c of checks) failures.push(`${c.device}: ${c.what}`);
    for (const a of anomalies) failures.push(`${a.kind}: ${a.device}: ${a.detail}`);
    if (anomalyCount > anomalies.length) {
      failures.push(`... and ${anomalyCount - anomalies.length} more anomalies`);
    }
    if (serve.internalErrorCount > 0) {
      failures.push(`${serve.internalErrorCount} internal errors in the server log`);
    }
    return {
      seed: options.seed,
      messagesPlanned: options.messages,
      lanes,
      devices: devices.length,
      counts,
      anomalies,
      anomalyCount,
      server: {
        alive: serve.exit === null,
        exit: serve.describeExit(),
        logLines: serve.logLines,
        internalErrors: serve.internalErrors,
        internalErrorCount: serve.internalErrorCount,
        fdsBefore: before.fds,
        fdsAfter,
        rssKiBBefore: before.rss,
        rssKiBAfter: rssAfter,
        cpuSeconds,
        tablesUnchanged,
        logTail: failures.length > 0 ? serve.tail() : [],
      },
      checks,
      seconds: (Date.now() - t0) / 1000,
      failures,
    };
  } finally {
    await serve.stop();
  }
}
