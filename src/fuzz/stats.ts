/**
 * What a fuzz run counts: messages and bytes sent, replies by errno, connections and how they
 * ended, and anomalies — anything the server did that no input excuses (a reply out of order,
 * a connection dropped without a framing error, a stall, a crash), each with what is needed to
 * find it again (seed, lane, connection, frame).
 */
import { constants } from 'node:os';

/**
 * Something a server should not do (a reply out of order, unexpected, malformed…), with where it
 * happened.
 */
export interface Anomaly {
  readonly kind:
    | 'reply-out-of-order'
    | 'unexpected-reply'
    | 'malformed-reply'
    | 'dropped-connection'
    | 'kept-connection'
    | 'stall'
    | 'not-refused'
    | 'connect-failed'
    | 'server-exited';
  readonly detail: string;
  /** Where: lane, its connection number, the device, the frame (index and label). */
  readonly lane: number;
  readonly connection: number;
  readonly device: string;
  readonly frame?: { readonly index: number; readonly label: string };
}

/**
 * What a run sent and got back: messages, bytes, connections, refusals and retries, replies ok and
 * by errno name, fds in replies, guarded and unsent frames.
 */
export interface FuzzCounts {
  messages: number;
  bytes: number;
  connections: number;
  /** Connections the server ended (framing errors, refusals, a failed open). */
  closedByServer: number;
  /** Second clients the server refused while the device was held (EBUSY then close). */
  refused: number;
  /** Reconnects after the server still held an earlier connection of ours (EBUSY). */
  busyRetries: number;
  /** Successful replies. */
  ok: number;
  /** Error replies by errno name. */
  errors: Record<string, number>;
  /** Fds that came with replies (closed at once). */
  replyFds: number;
  /** Fuzz writes the canary guard moved away from the canaries. */
  guarded: number;
  /**
   * Planned frames of second clients never sent: a second client goes only once the first
   * connection's first reply shows it holds the device, and some first connections get none.
   */
  unsent: number;
}

/** Counts at zero. */
export function emptyCounts(): FuzzCounts {
  return {
    messages: 0,
    bytes: 0,
    connections: 0,
    closedByServer: 0,
    refused: 0,
    busyRetries: 0,
    ok: 0,
    errors: {},
    replyFds: 0,
    guarded: 0,
    unsent: 0,
  };
}

/** errno names by value; the first of two names for one value (EAGAIN, not EWOULDBLOCK). */
const ERRNO_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name);
}

/** "EINVAL" for 22; "E<n>" for numbers the host does not name. */
export function errnoLabel(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

/** Counts one error reply under its errno's name. */
export function countError(c: FuzzCounts, errno: number): void {
  const name = errnoLabel(errno);
  c.errors[name] = (c.errors[name] ?? 0) + 1;
}
