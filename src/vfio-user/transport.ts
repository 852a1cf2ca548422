/**
 * One vfio-user connection over a UNIX stream socket fd that the native addon owns (never
 * libuv's stream reader, which would drop SCM_RIGHTS data): reads on readiness (FdWatcher),
 * frames with MessageFramer, receives large bodies straight into their buffers, sends each
 * message with one sendmsg (header and payload gathered, fds attached) and queues what the
 * socket buffer cannot take yet. The transport of libvfio-user lib/tran_sock.c, event-driven.
 *
 * Ownership: the connection owns its fd and every fd it receives until a message is handed to
 * `onMessage` (the handler owns that message's fds). fds given to `send` stay the caller's:
 * if the message has to wait, the transport sends close-on-exec duplicates.
 */
import {
  closeFd,
  dupFd,
  FdEvent,
  FdWatcher,
  peerCredentials,
  receiveInto,
  sendMessage,
  shutdownFd,
} from '../native/index.ts';
import { HEADER_SIZE } from './constants.ts';
import { type FramedMessage, type FramerOptions, MessageFramer } from './framer.ts';
import { type MessageHeader, writeHeader } from './header.ts';
import { FramingError } from './wire-errors.ts';

/** Why a connection ended: 'eof' (peer closed at a message boundary), 'local', or an error. */
export type CloseReason = { kind: 'eof' } | { kind: 'local' } | { kind: 'error'; error: Error };

export interface ConnectionHandlers {
  /** A whole message; its fds are now the handler's. */
  onMessage(message: FramedMessage): void;
  /** Called once, after the fd is closed. */
  onClose(reason: CloseReason): void;
}

const SCRATCH_BYTES = 64 * 1024;
/** Messages up to this size are copied into one buffer before sending. */
const COALESCE_BYTES = 4096;
/** Bodies with at least this much left are received in place, without a copy. */
const DIRECT_MIN_BYTES = 16 * 1024;
/** Reads per readiness callback before yielding to other connections (epoll is level-triggered). */
const READS_PER_WAKEUP = 64;

interface Outgoing {
  parts: Uint8Array[];
  /** Duplicates owned by the queue; closed once sent or dropped. */
  fds: number[];
}

export class Connection {
  readonly fd: number;
  readonly #handlers: ConnectionHandlers;
  readonly #framer: MessageFramer;
  readonly #watcher: FdWatcher;
  readonly #scratch = new Uint8Array(SCRATCH_BYTES);
  #maxFds: number;
  #queue: Outgoing[] = [];
  #closed = false;

  /** Takes ownership of a connected, non-blocking, close-on-exec stream socket `fd`. */
  constructor(fd: number, handlers: ConnectionHandlers, limits: FramerOptions) {
    this.fd = fd;
    this.#handlers = handlers;
    this.#framer = new MessageFramer(limits);
    this.#maxFds = limits.maxFds;
    this.#watcher = new FdWatcher(fd, FdEvent.READABLE, (status, events) =>
      this.#onReady(status, events),
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** pid/uid/gid of the peer process (SO_PEERCRED). */
  peer(): { pid: number; uid: number; gid: number } {
    return peerCredentials(this.fd);
  }

  /** Whether the connection keeps the process alive. */
  ref(on: boolean): void {
    this.#watcher.ref(on);
  }

  /**
   * Sends one message: `header` (its size is recomputed from the payload) and payload parts,
   * with `fds` as SCM_RIGHTS. Never blocks; what the socket cannot take now is queued, so the
   * parts must not be modified after the call (the fds may be closed at once).
   * @throws Error when the connection is closed; SystemCallError EBADF for a bad fd in `fds`.
   */
  send(
    header: MessageHeader,
    payload: readonly Uint8Array[] = [],
    fds: readonly number[] = [],
  ): void {
    if (this.#closed) throw new Error('vfio-user connection is closed');
    let size = HEADER_SIZE;
    for (const p of payload) size += p.length;
    if (size <= COALESCE_BYTES) {
      // One buffer, one iovec: cheaper than gathering for the small messages that dominate.
      const buf = new Uint8Array(size);
      writeHeader(buf, header, size);
      let at = HEADER_SIZE;
      for (const p of payload) {
        buf.set(p, at);
        at += p.length;
      }
      this.#enqueue([buf], size, fds);
      return;
    }
    const head = new Uint8Array(HEADER_SIZE);
    writeHeader(head, header, size);
    this.#enqueue([head, ...payload.filter((p) => p.length > 0)], size, fds);
  }

  #enqueue(parts: Uint8Array[], size: number, fds: readonly number[]): void {
    if (this.#queue.length > 0) {
      this.#queue.push({ parts, fds: fds.map((f) => dupFd(f)) });
      return;
    }
    const sent = this.#write(parts, fds);
    if (sent === null || sent === size) return;
    // Nothing went: the fds did not either. Something went: the fds went with its first byte.
    this.#queue.push(
      sent === 0
        ? { parts, fds: fds.map((f) => dupFd(f)) }
        : { parts: skipBytes(parts, sent), fds: [] },
    );
    this.#watcher.set(FdEvent.READABLE | FdEvent.WRITABLE);
  }

  /**
   * Sends bytes exactly as given (tests of malformed frames), queued behind earlier messages.
   * @throws Error when the connection is closed.
   */
  sendRaw(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.#closed) throw new Error('vfio-user connection is closed');
    this.#enqueue([bytes], bytes.length, fds);
  }

  /** Closes the connection (idempotent); `onClose` gets `reason`. */
  close(reason: CloseReason = { kind: 'local' }): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    for (const fd of this.#framer.releaseFds()) closeFd(fd);
    for (const m of this.#queue) for (const fd of m.fds) closeFd(fd);
    this.#queue = [];
    try {
      shutdownFd(this.fd);
    } catch {
      // already disconnected
    }
    closeFd(this.fd);
    this.#handlers.onClose(reason);
  }

  /** Bytes sent (possibly partial), or null when the connection died (and is now closed). */
  #write(parts: Uint8Array[], fds: readonly number[]): number | null {
    try {
      return sendMessage(this.fd, parts.length === 1 ? parts[0]! : parts, fds);
    } catch (e) {
      this.close({ kind: 'error', error: e as Error });
      return null;
    }
  }

  #flush(): void {
    while (this.#queue.length > 0) {
      const m = this.#queue[0]!;
      const total = m.parts.reduce((n, p) => n + p.length, 0);
      const sent = this.#write(m.parts, m.fds);
      if (sent === null) return;
      if (sent > 0) {
        for (const fd of m.fds) closeFd(fd);
        m.fds = [];
      }
      if (sent < total) {
        m.parts = skipBytes(m.parts, sent);
        return;
      }
      this.#queue.shift();
    }
    this.#watcher.set(FdEvent.READABLE);
  }

  #onReady(status: number, events: number): void {
    if (this.#closed) return;
    if (status < 0) {
      this.close({
        kind: 'error',
        error: new Error(`poll failed on vfio-user socket: errno ${-status}`),
      });
      return;
    }
    if (events & FdEvent.WRITABLE) this.#flush();
    if (events & FdEvent.READABLE) this.#drain();
  }

  #drain(): void {
    for (let i = 0; i < READS_PER_WAKEUP && !this.#closed; i++) {
      try {
        if (!this.#readOnce()) return;
      } catch (e) {
        if (e instanceof FramingError || isSystemError(e)) {
          this.close({ kind: 'error', error: e as Error });
          return;
        }
        throw e;
      }
    }
  }

  /**
   * One recvmsg; false when the socket is (probably) drained or the connection ended. A read
   * that did not fill its buffer ends the wakeup: epoll is level-triggered, so anything that
   * arrived meanwhile wakes us again, and the usual EAGAIN read is saved.
   */
  #readOnce(): boolean {
    const direct = this.#framer.directTarget(DIRECT_MIN_BYTES);
    const into = direct ?? this.#scratch;
    const r = receiveInto(this.fd, into, this.#maxFds);
    if (r === null) return false;
    if (r.truncatedControl) {
      throw new FramingError(
        'fds-truncated',
        'EINVAL',
        `peer sent more than ${this.#maxFds} fds with one message`,
      );
    }
    if (r.bytes === 0) {
      for (const fd of r.fds) closeFd(fd);
      const mid = this.#framer.buffered > 0;
      this.close(
        mid
          ? {
              kind: 'error',
              error: new FramingError(
                'message-too-short',
                'EINVAL',
                'peer closed inside a message',
              ),
            }
          : { kind: 'eof' },
      );
      return false;
    }
    if (direct !== null) {
      const m = this.#framer.commitDirect(r.bytes, r.fds);
      if (m) this.#handlers.onMessage(m);
    } else {
      for (const m of this.#framer.push(into.subarray(0, r.bytes), r.fds)) {
        if (this.#closed) {
          for (const fd of m.fds) closeFd(fd);
          continue;
        }
        this.#handlers.onMessage(m);
      }
    }
    return r.bytes === into.length;
  }

  /** Raises or lowers the limits (after VERSION negotiation). */
  setLimits(limits: FramerOptions): void {
    this.#framer.setLimits(limits);
    this.#maxFds = limits.maxFds;
  }
}

function isSystemError(e: unknown): boolean {
  return e instanceof Error && typeof (e as { syscall?: unknown }).syscall === 'string';
}

/** The parts after dropping the first `n` bytes. */
function skipBytes(parts: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let left = n;
  for (const p of parts) {
    if (left >= p.length) {
      left -= p.length;
      continue;
    }
    out.push(left > 0 ? p.subarray(left) : p);
    left = 0;
  }
  return out;
}
