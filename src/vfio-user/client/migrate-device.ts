/**
 * Migrates one device between two servers as a VMM drives migration v2 (QEMU hw/vfio/migration.c
 * is the model: vfio_save_setup → PRE_COPY, vfio_save_iterate rounds, vfio_save_complete_precopy
 * → STOP_COPY; on the destination vfio_load_setup → RESUMING, vfio_load_cleanup → STOP, then
 * RUNNING). The source goes RUNNING → PRE_COPY and its stream is copied round by round to the
 * destination (RESUMING) until the dirty set converges (a round no smaller than 7/8 of the one
 * before, one of at most CONVERGED_BYTES, or `maxRounds`), then STOP_COPY sends the rest; the
 * destination then goes STOP (which checks the stream) and RUNNING. Downtime runs from the
 * moment the source is stopped (its writers paused first, as a VMM pauses its vCPUs) until the
 * destination runs.
 */
import { MigrationFlag, MigState } from '../../migration/index.ts';
import { VfioError } from '../../vfio/index.ts';
import type { VfioUserClient } from './client.ts';
import {
  migrationFlags,
  readMigrationData,
  setMigrationState,
  writeMigrationData,
} from './client-migration.ts';

/** A round this small (bytes) ends pre-copy: what is left fits the downtime. */
export const CONVERGED_BYTES = 1024 * 1024;
/** Reads from the source in flight at once during STOP_COPY. */
const STOP_COPY_READ_AHEAD = 4;
/** Writes to the destination in flight at once (commands are handled in order). */
const WRITES_IN_FLIGHT = 4;

/** Options of `migrateDevice`. */
export interface MigrateOptions {
  /** Pre-copy rounds at most; 0 goes straight to STOP_COPY. */
  readonly maxRounds: number;
  /** How errors name the destination (its socket); default "the destination". */
  readonly destinationName?: string;
  /** Called when the source is about to stop (pause what writes through its mappings). */
  readonly beforeStop?: () => void;
  /** Progress: phase, round, stream bytes so far. */
  readonly onProgress?: (
    phase: 'pre-copy' | 'stop-copy' | 'resume',
    round: number,
    bytes: number,
  ) => void;
}

/** What a migration did (times in ms). */
export interface MigrateReport {
  /** Stream bytes of each pre-copy round, then of the stop-copy phase (last). */
  readonly roundBytes: readonly number[];
  readonly precopyRounds: number;
  readonly stopCopyBytes: number;
  readonly totalBytes: number;
  /** Source stopped → destination running. */
  readonly downtimeMs: number;
  /** STOP_COPY entered → destination STOP done (the stop-copy transfer). */
  readonly stopCopyMs: number;
  readonly totalMs: number;
}

/**
 * Copies the stream until a read comes back short (end of round or of stream). With
 * `readAhead` > 1 (STOP_COPY only: a read past END returns nothing, where in PRE_COPY it would
 * start the next round) that many reads are in flight at once; replies come in order.
 */
/**
 * A promise whose rejection counts as handled now (it is awaited later, or never when an
 * earlier request failed first): no in-flight request's error escapes as unhandled.
 */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** The destination's refusal of a MIG_DATA_WRITE, naming it: the stream is not for it. */
function refused(err: unknown, destination: string): never {
  if (!(err instanceof VfioError)) throw err;
  throw new VfioError(
    err.code,
    `${destination} refused the stream (${err.code}): a device of another kind? see its log`,
  );
}

async function pump(
  from: VfioUserClient,
  to: VfioUserClient,
  destination: string,
  chunk: number,
  readAhead: number,
  progress: (bytes: number) => void,
): Promise<number> {
  let total = 0;
  // Each read is received into a buffer of the pool, which it leaves once its write is done.
  const pool: Uint8Array[] = [];
  const take = () => pool.pop() ?? new Uint8Array(chunk);
  const writes: Promise<void>[] = [];
  const reads: { buffer: Uint8Array; data: Promise<Uint8Array> }[] = [];
  let ended = false;
  while (!ended || reads.length > 0) {
    while (!ended && reads.length < readAhead) {
      const buffer = take();
      reads.push({ buffer, data: handled(readMigrationData(from, chunk, buffer)) });
    }
    const next = reads.shift() as { buffer: Uint8Array; data: Promise<Uint8Array> };
    const data = await next.data;
    if (data.length < chunk) ended = true;
    if (data.length === 0) {
      pool.push(next.buffer);
      continue;
    }
    writes.push(
      handled(
        writeMigrationData(to, data).then(
          () => void pool.push(next.buffer),
          (err: unknown) => refused(err, destination),
        ),
      ),
    );
    if (writes.length >= WRITES_IN_FLIGHT) await writes.shift();
    total += data.length;
    progress(total);
  }
  await Promise.all(writes);
  return total;
}

/**
 * Migrates the device of `source` into the device of `destination` (see the module header).
 * Leaves the source in STOP and the destination RUNNING.
 * @throws VfioError ENOTTY when either end does not migrate; the servers' errors (ReplyError).
 */
export async function migrateDevice(
  source: VfioUserClient,
  destination: VfioUserClient,
  options: MigrateOptions,
): Promise<MigrateReport> {
  const t0 = performance.now();
  const [sf, df] = await Promise.all([migrationFlags(source), migrationFlags(destination)]);
  if (!(sf & MigrationFlag.STOP_COPY) || !(df & MigrationFlag.STOP_COPY))
    throw new VfioError('ENOTTY', 'a server does not offer migration (VFIO_MIGRATION_STOP_COPY)');
  const chunk = Math.min(source.maxReadSize, destination.maxReadSize);
  const to = options.destinationName ?? 'the destination';
  const report =
    (phase: 'pre-copy' | 'stop-copy' | 'resume', round: number, base: number) => (n: number) =>
      options.onProgress?.(phase, round, base + n);
  await setMigrationState(destination, MigState.RESUMING);
  const rounds: number[] = [];
  let total = 0;
  const precopy = options.maxRounds > 0 && (sf & MigrationFlag.PRE_COPY) !== 0;
  if (precopy) {
    await setMigrationState(source, MigState.PRE_COPY);
    for (let round = 1; round <= options.maxRounds; round++) {
      const bytes = await pump(source, destination, to, chunk, 1, report('pre-copy', round, total));
      rounds.push(bytes);
      total += bytes;
      const before = rounds[rounds.length - 2];
      if (bytes <= CONVERGED_BYTES || (before !== undefined && bytes * 8 >= before * 7)) break;
    }
  }
  options.beforeStop?.();
  const tStop = performance.now();
  await setMigrationState(source, MigState.STOP_COPY);
  const stopCopyBytes = await pump(
    source,
    destination,
    to,
    chunk,
    STOP_COPY_READ_AHEAD,
    report('stop-copy', rounds.length + 1, total),
  );
  total += stopCopyBytes;
  options.onProgress?.('resume', rounds.length + 1, total);
  await setMigrationState(destination, MigState.STOP);
  const tLoaded = performance.now();
  await setMigrationState(destination, MigState.RUNNING);
  const tRun = performance.now();
  await setMigrationState(source, MigState.STOP);
  return {
    roundBytes: [...rounds, stopCopyBytes],
    precopyRounds: rounds.length,
    stopCopyBytes,
    totalBytes: total,
    downtimeMs: tRun - tStop,
    stopCopyMs: tLoaded - tStop,
    totalMs: performance.now() - t0,
  };
}
