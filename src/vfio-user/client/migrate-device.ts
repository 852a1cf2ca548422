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
import { errnoName, migRelay, type RelayOutcome } from '../../native/index.ts';
import { type ErrnoName, VfioError } from '../../vfio/index.ts';
import { Command, ReplyError } from '../wire/index.ts';
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
/** Stream bytes a relay call moves before it returns to report progress. */
const RELAY_STEP_BYTES = 64 * 1024 * 1024;

/** Options of `migrateDevice`. */
export interface MigrateOptions {
  /** Pre-copy rounds at most; 0 goes straight to STOP_COPY. */
  readonly maxRounds: number;
  /** How errors name the source (its socket); default "the source". */
  readonly sourceName?: string;
  /** How errors name the destination (its socket); default "the destination". */
  readonly destinationName?: string;
  /**
   * STOP_COPY through the addon's splice relay (default true); false: request by request in
   * JavaScript, as pre-copy goes (to compare them).
   */
  readonly relay?: boolean;
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

/** An error already naming the end it came from (not named twice). */
class NamedError extends VfioError {
  override readonly name: string = 'NamedError';
}

/**
 * `end` refusing a MIG_DATA_WRITE with `code`: ENOMEM is its memory (its --memory-budget, or
 * the host's), anything else a stream it does not take.
 */
function refusalOf(end: string, code: string): string {
  return code === 'ENOMEM'
    ? `${end} refused the stream (ENOMEM): out of memory for the device's data, its --memory-budget? (its log says which)`
    : `${end} refused the stream (${code}): a device of another kind? see its log`;
}

/**
 * A failed request to `end` (a socket's name) as an error naming it: no reply within the
 * client's timeout says it did not answer, a connection gone says it closed, and a server's
 * errno reply keeps its wording (for MIG_DATA_WRITE, `refusal`: the stream is not for it).
 */
function named(err: unknown, end: string, closed: boolean, refusal = false): unknown {
  if (err instanceof NamedError) return err;
  // A request sent after the connection closed fails with a plain Error (transport.ts send).
  if (!(err instanceof VfioError) && !closed) return err;
  if (err instanceof ReplyError)
    return new NamedError(err.code, refusal ? refusalOf(end, err.code) : `${end}: ${err.reason}`);
  if (err instanceof VfioError && err.code === 'ETIMEDOUT') {
    const [, command, ms] = /^no reply to (\S+) .* within (\d+) ms/.exec(err.reason) ?? [];
    return new NamedError(
      'ETIMEDOUT',
      ms === undefined
        ? `${end} did not answer: ${err.reason}`
        : `${end} did not answer within ${ms} ms (no reply to ${command})`,
    );
  }
  // A malformed reply (EINVAL, E2BIG…): the end's fault, in its own words.
  if (err instanceof VfioError && err.code !== 'EIO')
    return new NamedError(err.code, `${end}: ${err.reason}`);
  // The connection closed under a request (EIO), or a send found it closed.
  return new NamedError(
    err instanceof VfioError ? err.code : 'EIO',
    `${end} closed the connection mid-migration (its server exited? see its log)`,
  );
}

/** `request` to `c`, its failure named after `end` (see `named`). */
async function at<T>(
  c: VfioUserClient,
  end: string,
  request: Promise<T>,
  refusal = false,
): Promise<T> {
  try {
    return await request;
  } catch (err) {
    throw named(err, end, c.channel.connection.closed, refusal);
  }
}

async function pump(
  from: VfioUserClient,
  to: VfioUserClient,
  ends: { readonly source: string; readonly destination: string },
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
      const data = at(from, ends.source, readMigrationData(from, chunk, buffer));
      reads.push({ buffer, data: handled(data) });
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
        at(to, ends.destination, writeMigrationData(to, data), true).then(
          () => void pool.push(next.buffer),
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

/** The relay's failure (`o.end`, `o.kind`) as the error the request-by-request pump throws. */
function relayError(
  o: RelayOutcome,
  ends: { readonly source: string; readonly destination: string },
  timeoutMs: number | undefined,
): unknown {
  const end = o.end === 1 ? ends.source : ends.destination;
  const command = o.end === 1 ? Command.MIG_DATA_READ : Command.MIG_DATA_WRITE;
  const code = errnoName(o.errno);
  const known = (/^E[A-Z0-9]+$/.test(code) ? code : 'EIO') as ErrnoName;
  switch (o.kind) {
    case 1:
      return named(new ReplyError(command, o.failedMsgId, o.errno), end, false, o.end === 2);
    case 2:
      return named(new VfioError('EIO', 'closed'), end, true);
    case 3:
      return named(
        new VfioError(
          'ETIMEDOUT',
          `no reply to ${o.what} (msg ${o.failedMsgId}) within ${timeoutMs} ms`,
        ),
        end,
        false,
      );
    case 4:
      return named(new VfioError('EINVAL', o.what), end, false);
    default:
      return new VfioError(known, `${o.end === 0 ? 'migration relay' : end}: ${o.what} failed`);
  }
}

/**
 * STOP_COPY's stream moved by the native relay (native/relay.c: splice through a pipe, no copy
 * through this process, no JavaScript per message) while both connections lend their sockets
 * (paused, nothing in flight); null when either is busy (then `pump`). A failure leaves a
 * socket inside a message: both connections are closed, and the error names the end.
 */
async function relayStopCopy(
  from: VfioUserClient,
  to: VfioUserClient,
  ends: { readonly source: string; readonly destination: string },
  chunk: number,
  progress: (bytes: number) => void,
): Promise<number | null> {
  const a = from.channel;
  const b = to.channel;
  if (a.awaiting > 0 || b.awaiting > 0 || !a.connection.idle || !b.connection.idle) return null;
  a.connection.pause();
  b.connection.pause();
  let total = 0;
  try {
    for (;;) {
      const o = await migRelay({
        source: a.connection.fd,
        destination: b.connection.fd,
        chunk,
        maxBytes: RELAY_STEP_BYTES,
        readAhead: STOP_COPY_READ_AHEAD,
        writesInFlight: WRITES_IN_FLIGHT,
        msgId: 0,
        sourceTimeoutMs: a.replyTimeoutMs,
        destinationTimeoutMs: b.replyTimeoutMs,
      });
      total += o.bytes;
      if (o.kind !== 0) {
        const error = relayError(o, ends, o.end === 1 ? a.replyTimeoutMs : b.replyTimeoutMs);
        a.connection.close();
        b.connection.close();
        throw error;
      }
      progress(total);
      if (o.ended) return total;
    }
  } finally {
    if (!a.connection.closed) a.connection.resume();
    if (!b.connection.closed) b.connection.resume();
  }
}

/**
 * Migrates the device of `source` into the device of `destination` (see the module header).
 * Leaves the source in STOP and the destination RUNNING.
 * @throws VfioError ENOTTY when either end does not migrate; the servers' errnos, ETIMEDOUT for
 *   an end that does not answer within its client's reply timeout, EIO for one that closed:
 *   each naming the end (`sourceName`, `destinationName`).
 */
export async function migrateDevice(
  source: VfioUserClient,
  destination: VfioUserClient,
  options: MigrateOptions,
): Promise<MigrateReport> {
  const t0 = performance.now();
  const ends = {
    source: options.sourceName ?? 'the source',
    destination: options.destinationName ?? 'the destination',
  };
  const state = (c: VfioUserClient, s: MigState) =>
    at(c, c === source ? ends.source : ends.destination, setMigrationState(c, s));
  const [sf, df] = await Promise.all([
    at(source, ends.source, migrationFlags(source)),
    at(destination, ends.destination, migrationFlags(destination)),
  ]);
  for (const [flags, end] of [
    [sf, ends.source],
    [df, ends.destination],
  ] as const)
    if (!(flags & MigrationFlag.STOP_COPY))
      throw new VfioError('ENOTTY', `${end} does not offer migration (VFIO_MIGRATION_STOP_COPY)`);
  const chunk = Math.min(source.maxReadSize, destination.maxReadSize);
  const report =
    (phase: 'pre-copy' | 'stop-copy' | 'resume', round: number, base: number) => (n: number) =>
      options.onProgress?.(phase, round, base + n);
  await state(destination, MigState.RESUMING);
  const rounds: number[] = [];
  let total = 0;
  const precopy = options.maxRounds > 0 && (sf & MigrationFlag.PRE_COPY) !== 0;
  if (precopy) {
    await state(source, MigState.PRE_COPY);
    for (let round = 1; round <= options.maxRounds; round++) {
      const bytes = await pump(
        source,
        destination,
        ends,
        chunk,
        1,
        report('pre-copy', round, total),
      );
      rounds.push(bytes);
      total += bytes;
      const before = rounds[rounds.length - 2];
      if (bytes <= CONVERGED_BYTES || (before !== undefined && bytes * 8 >= before * 7)) break;
    }
  }
  options.beforeStop?.();
  const tStop = performance.now();
  await state(source, MigState.STOP_COPY);
  const stopCopyProgress = report('stop-copy', rounds.length + 1, total);
  const relayed =
    options.relay === false
      ? null
      : await relayStopCopy(source, destination, ends, chunk, stopCopyProgress);
  const stopCopyBytes =
    relayed ??
    (await pump(source, destination, ends, chunk, STOP_COPY_READ_AHEAD, stopCopyProgress));
  total += stopCopyBytes;
  options.onProgress?.('resume', rounds.length + 1, total);
  await state(destination, MigState.STOP);
  const tLoaded = performance.now();
  await state(destination, MigState.RUNNING);
  const tRun = performance.now();
  await state(source, MigState.STOP);
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
