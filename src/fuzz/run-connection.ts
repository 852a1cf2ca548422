/**
 * Plays one planned connection against the server and judges what comes back. Every frame is
 * queued at once (pipelined); replies are matched as they arrive against the frames that
 * wanted one, in order (vfio-user.rst "Command Concurrency": commands are processed in the
 * order received). Until a frame with broken framing has gone out, the server owes exactly
 * those replies and may close the connection only after a failed VERSION; after it, replies
 * may stop and the server must close if the framing was fatal. A connection refused with
 * EBUSY (the server still releasing an earlier one of ours) is played again from the start.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { connectUnix, isSystemCallError } from '../native/index.ts';
import { hex } from '../text/index.ts';
import { Command } from '../vfio-user/index.ts';
import { closeAll, makeFds } from './fd-factory.ts';
import { FuzzSocket } from './fuzz-socket.ts';
import type { FuzzDevice, PlannedConnection, PlannedFrame } from './plan.ts';
import { type Anomaly, countError, type FuzzCounts } from './stats.ts';
import { FLAG_ERROR, type HeaderFields, readHeader, TYPE_REPLY } from './wire.ts';

const EBUSY = 16;
const BUSY_RETRIES = 500;
const BUSY_PAUSE_MS = 10;
const CONNECT_RETRIES = 500;

/**
 * Where a connection runs: its lane and index, its device, the run's counts, the stall timeout
 * (ms), and how to report an anomaly or see the run aborted.
 */
export interface ConnectionContext {
  readonly lane: number;
  /** The lane's connection number (for reports). */
  readonly index: number;
  readonly device: FuzzDevice;
  readonly counts: FuzzCounts;
  /** Most milliseconds without progress while the server owes something. */
  readonly stallMs: number;
  anomaly(a: Omit<Anomaly, 'lane' | 'connection' | 'device'>): void;
  /** Whether the run is being abandoned (server gone). */
  aborted(): boolean;
}

type Result = 'done' | 'busy';

interface Owed {
  readonly msgId: number;
  readonly command: number;
  readonly index: number;
}

/** connect(2), retried while the backlog is full or the socket is being re-created. */
async function connectWithRetry(path: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return connectUnix(path);
    } catch (e) {
      const transient = isSystemCallError(e) && (e.code === 'EAGAIN' || e.code === 'ECONNREFUSED');
      if (!transient || attempt >= CONNECT_RETRIES) throw e;
      await sleep(2);
    }
  }
}

/**
 * One session's worth of frames on one socket, judged as described above. Resolves when the
 * connection is over (closed by us or the server).
 */
async function play(
  ctx: ConnectionContext,
  frames: readonly PlannedFrame[],
  plan: { end: PlannedConnection['end']; cutAt: number },
  onFirstReply?: (errno: number | null) => void,
  beforeClose?: () => Promise<void>,
  /** Whether frames count as sent messages (not when a refused connection is played again). */
  count = true,
): Promise<{ result: Result; refusedWith: number | null }> {
  const fd = await connectWithRetry(ctx.device.socket);
  ctx.counts.connections++;
  const owed: Owed[] = [];
  const held: number[] = [];
  let strict = true;
  let replies = 0;
  let firstErrno: number | null | undefined;
  let versionFailed = false;
  let brokenSent = false;
  let ended: { why: string; detail: string } | null = null;
  let lastProgress = Date.now();
  let wake: (() => void) | null = null;
  const poke = () => {
    lastProgress = Date.now();
    wake?.();
  };

  const frameAt = (i: number) => ({ index: i, label: frames[i]?.label ?? '?' });

  const onReply = (h: Required<HeaderFields>, fds: number[]) => {
    closeAll(fds);
    ctx.counts.replyFds += fds.length;
    replies++;
    const isError = (h.flags & FLAG_ERROR) !== 0;
    if (isError) countError(ctx.counts, h.errno);
    else ctx.counts.ok++;
    if (firstErrno === undefined) {
      firstErrno = isError ? h.errno : null;
      onFirstReply?.(firstErrno);
    }
    if ((h.flags & 0xf) !== TYPE_REPLY) {
      ctx.anomaly({
        kind: 'malformed-reply',
        detail: `message of type ${h.flags & 0xf} (flags ${hex(h.flags)}) from the server`,
      });
    }
    const next = owed[0];
    if (next && next.msgId === h.msgId && next.command === h.command) {
      owed.shift();
      if (h.command === Command.VERSION && isError) versionFailed = true;
    } else if (next) {
      ctx.anomaly({
        kind: 'reply-out-of-order',
        detail: `reply msg ${h.msgId} command ${h.command}, expected msg ${next.msgId} command ${next.command}`,
        frame: frameAt(next.index),
      });
      owed.length = 0;
      strict = false;
    } else if (strict) {
      ctx.anomaly({
        kind: 'unexpected-reply',
        detail: `reply msg ${h.msgId} command ${h.command} to no message that wanted one`,
      });
    }
    poke();
  };

  const socket = new FuzzSocket(fd, {
    reply: onReply,
    sent: poke,
    end: (why, detail) => {
      ended = { why, detail };
      if (why === 'malformed-reply') ctx.anomaly({ kind: 'malformed-reply', detail });
      poke();
    },
  });

  try {
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      const last = i === frames.length - 1;
      const bytes = last && plan.end === 'cut' ? f.bytes.subarray(0, plan.cutAt) : f.bytes;
      const made = makeFds(f.fds);
      held.push(...made.held);
      socket.send(bytes, made.send);
      if (count) {
        ctx.counts.messages++;
        ctx.counts.bytes += bytes.length;
      }
      if (bytes.length < f.bytes.length) brokenSent = true;
      else if (f.expect === 'reply' && strict) {
        const h = readHeader(f.bytes);
        owed.push({ msgId: h.msgId, command: h.command, index: i });
      } else if (f.expect === 'fatal' || f.expect === 'misframed') {
        brokenSent = true;
        strict = false;
      }
      if (brokenSent) strict = false;
    }

    const done = (): boolean => {
      if (ended !== null || ctx.aborted()) return true;
      if (!socket.flushed) return false;
      if (plan.end === 'close') return owed.length === 0;
      if (plan.end === 'fatal') return false; // the server must close
      return true;
    };
    while (!done()) {
      const left = ctx.stallMs - (Date.now() - lastProgress);
      if (left <= 0) {
        ctx.anomaly({
          kind: plan.end === 'fatal' && owed.length === 0 ? 'kept-connection' : 'stall',
          detail:
            plan.end === 'fatal' && owed.length === 0
              ? `the server kept the connection open ${ctx.stallMs} ms after a fatal framing error`
              : `nothing from the server for ${ctx.stallMs} ms with ${owed.length} replies owed and ${socket.flushed ? 'everything' : 'not everything'} sent`,
          ...(owed[0] ? { frame: frameAt(owed[0].index) } : {}),
        });
        break;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }

    await beforeClose?.();
    const end = ended as { why: string; detail: string } | null;
    if (end?.why === 'eof') {
      ctx.counts.closedByServer++;
      // Refused: EBUSY to the first message, or no reply at all when it wanted none.
      if ((firstErrno === EBUSY && replies === 1) || (replies === 0 && strict)) {
        return { result: 'busy', refusedWith: EBUSY };
      }
      if (strict && owed.length > 0 && !versionFailed && !ctx.aborted()) {
        ctx.anomaly({
          kind: 'dropped-connection',
          detail: `the server closed the connection (${end.detail}) with ${owed.length} replies owed and no framing error sent`,
          frame: frameAt(owed[0]!.index),
        });
      }
    }
    return { result: 'done', refusedWith: firstErrno ?? null };
  } finally {
    socket.close();
    closeAll(held);
  }
}

/** Plays `plan` (and its intruder), retrying while the device is still busy with us. */
export async function runConnection(
  ctx: ConnectionContext,
  plan: PlannedConnection,
): Promise<void> {
  for (let attempt = 0; attempt <= BUSY_RETRIES; attempt++) {
    let intruder: Promise<void> | null = null;
    const onFirstReply =
      plan.intruder.length > 0
        ? (errno: number | null) => {
            if (errno !== EBUSY) intruder = runIntruder(ctx, plan);
          }
        : undefined;
    // The first connection stays open until the intruder has been refused.
    const { result } = await play(
      ctx,
      plan.frames,
      plan,
      onFirstReply,
      async () => {
        if (intruder !== null) await intruder;
      },
      attempt === 0,
    );
    if (result === 'done' || ctx.aborted()) {
      // The intruder goes only once a first reply shows the device is held: some never do.
      if (intruder === null) ctx.counts.unsent += plan.intruder.length;
      return;
    }
    ctx.counts.busyRetries++;
    await sleep(BUSY_PAUSE_MS);
  }
  ctx.anomaly({
    kind: 'connect-failed',
    detail: `the device answered EBUSY ${BUSY_RETRIES + 1} times though no other client of ours held it`,
  });
}

/** A second client while the first holds the device: the server must refuse it (EBUSY, close). */
async function runIntruder(ctx: ConnectionContext, plan: PlannedConnection): Promise<void> {
  const wantsReply = plan.intruder[0]?.expect === 'reply';
  const { refusedWith } = await play(ctx, plan.intruder, { end: 'fatal', cutAt: 0 });
  if (wantsReply && refusedWith !== EBUSY && !ctx.aborted()) {
    ctx.anomaly({
      kind: 'not-refused',
      detail: `a second client got ${refusedWith === null ? 'a success' : `errno ${refusedWith}`} instead of EBUSY while the device was held`,
      frame: { index: 0, label: plan.intruder[0]!.label },
    });
  } else ctx.counts.refused++;
}
