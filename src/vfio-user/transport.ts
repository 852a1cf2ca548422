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
import { skipBytes } from './byte-parts.ts';
import { HEADER_SIZE } from './constants.ts';
import {
  type BodyPlacer,
  type FramedMessage,
  type FramerOptions,
  MessageFramer,
} from './framer.ts';
import { type MessageHeader, writeHeader } from './header.ts';
import { FramingError } from './wire-errors.ts';

/** Why a connection ended: 'eof' (peer closed at a message boundary), 'local', or an error. */
export type CloseReason = { kind: 'eof' } | { kind: 'local' } | { kind: 'error'; error: Error };

export interface ConnectionHandlers {
  /** A whole message; its fds are now the handler's. */
  onMessage(message: FramedMessage): void;
  /** Called once, after the fd is closed. */
  onClose(reason: CloseReason): void;
  /** Where the bulk of an incoming message goes (see BodyPlacer); bodies of their own without. */
  placeBody?: BodyPlacer;
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
  /** Whether `parts` hold the connection's spill buffer (freed once sent or dropped). */
  spill: boolean;
}

export class Connection {
  readonly fd: number;
  readonly #handlers: ConnectionHandlers;
  readonly #framer: MessageFramer;
  readonly #watcher: FdWatcher;
  readonly #scratch = new Uint8Array(SCRATCH_BYTES);
  /** Small messages are built here, and the header of large ones (copied if they must wait). */
  readonly #small = new Uint8Array(COALESCE_BYTES);
  readonly #head = new Uint8Array(HEADER_SIZE);
  /** Where lent payload waits after a partial send; grown on demand, one message at a time. */
  #spill = new Uint8Array(0);
  #spillBusy = false;
  #maxFds: number;
  #queue: Outgoing[] = [];
  #closed = false;

  /** Takes ownership of a connected, non-blocking, close-on-exec stream socket `fd`. */
  constructor(fd: number, handlers: ConnectionHandlers, limits: FramerOptions) {
    this.fd = fd;
    this.#handlers = handlers;
    const placer = handlers.placeBody;
    this.#framer = new MessageFramer(limits, placer ? (h) => placer.call(handlers, h) : null);
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
   * with `fds` as SCM_RIGHTS. Never blocks; what the socket cannot take now is queued. Unless
   * `borrowed`, the queue keeps the parts themselves, so they must not be modified after the
   * call; `borrowed` parts (views of live memory, such as a region's mapping) are copied if they
   * have to wait, so the caller may change them as soon as `send` returns. The fds may be
   * closed at once either way.
   * @throws Error when the connection is closed; SystemCallError EBADF for a bad fd in `fds`.
   */
  send(
    header: MessageHeader,
    payload: readonly Uint8Array[] = [],
    fds: readonly number[] = [],
    borrowed = false,
  ): void {
    if (this.#closed) throw new Error('vfio-user connection is closed');
    let size = HEADER_SIZE;
    for (let i = 0; i < payload.length; i++) size += payload[i]!.length;
    if (size <= COALESCE_BYTES) {
      // One reused buffer, one iovec: small messages, the common case, allocate nothing unless
      // they have to wait (#enqueue copies what is left of them).
      const buf = this.#small;
      writeHeader(buf, header, size);
      let at = HEADER_SIZE;
      for (let i = 0; i < payload.length; i++) {
        buf.set(payload[i]!, at);
        at += payload[i]!.length;
      }
      this.#enqueue([buf.subarray(0, size)], size, fds, false);
      return;
    }
    const parts: Uint8Array[] = [this.#head];
    writeHeader(this.#head, header, size);
    for (let i = 0; i < payload.length; i++) if (payload[i]!.length > 0) parts.push(payload[i]!);
    this.#enqueue(parts, size, fds, borrowed);
  }

  /**
   * Sends now what the socket takes and queues the rest (see #hold for what is copied then:
   * the per-connection header buffers always, payload parts when `borrowed`).
   */
  #enqueue(parts: Uint8Array[], size: number, fds: readonly number[], borrowed: boolean): void {
    if (this.#queue.length > 0) {
      this.#queue.push(this.#hold(parts, 0, fds, borrowed));
      return;
    }
    const sent = this.#writeAll(parts, size, fds);
    if (sent === null || sent === size) return;
    this.#queue.push(this.#hold(parts, sent, sent === 0 ? fds : [], borrowed));
    this.#watcher.set(FdEvent.READABLE | FdEvent.WRITABLE);
  }

  /**
   * sendmsg until everything went or the socket buffer is full: a partial send usually means
   * the buffer filled, but retrying at once costs one syscall where waiting for WRITABLE costs
   * an event-loop turn. Bytes sent, or null when the connection died.
   */
  #writeAll(parts: Uint8Array[], size: number, fds: readonly number[]): number | null {
    let sent = this.#write(parts, fds);
    while (sent !== null && sent > 0 && sent < size) {
      const more = this.#write(skipBytes(parts, sent), []);
      if (more === null) return null;
      if (more === 0) break;
      sent += more;
    }
    return sent;
  }

  /**
   * A queue entry for what is left after `sent` bytes. Nothing went: the fds did not either
   * (the queue holds duplicates). Something went: the fds went with its first byte. The
   * connection's own header buffers are copied, and so are `borrowed` parts, into the spill
   * buffer when it is free (a 1 MiB reply always waits for most of itself: fresh memory each
   * time would cost a page fault per 4 KiB).
   */
  #hold(parts: Uint8Array[], sent: number, fds: readonly number[], borrowed: boolean): Outgoing {
    const rest = sent > 0 ? skipBytes(parts, sent) : parts.slice();
    const own = rest.map((p) => p.buffer === this.#small.buffer || p.buffer === this.#head.buffer);
    let lent = 0;
    for (let i = 0; i < rest.length; i++) {
      if (own[i]) rest[i] = rest[i]!.slice();
      else if (borrowed) lent += rest[i]!.length;
    }
    const entry: Outgoing = { parts: rest, fds: fds.map((f) => dupFd(f)), spill: false };
    if (lent === 0) return entry;
    let into: Uint8Array;
    if (this.#spillBusy) into = new Uint8Array(lent);
    else {
      if (this.#spill.length < lent) this.#spill = new Uint8Array(lent);
      into = this.#spill.subarray(0, lent);
      this.#spillBusy = true;
      entry.spill = true;
    }
    // Own buffers were copied above; every other part is lent: gather them into one.
    let at = 0;
    for (let i = 0; i < rest.length; i++) {
      if (own[i]) continue;
      const p = rest[i]!;
      into.set(p, at);
      rest[i] = into.subarray(at, at + p.length);
      at += p.length;
    }
    return entry;
  }

  /**
   * Sends bytes exactly as given (tests of malformed frames), queued behind earlier messages.
   * @throws Error when the connection is closed.
   */
  sendRaw(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.#closed) throw new Error('vfio-user connection is closed');
    this.#enqueue([bytes], bytes.length, fds, false);
  }

  /** Closes the connection (idempotent); `onClose` gets `reason`. */
  close(reason: CloseReason = { kind: 'local' }): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    for (const fd of this.#framer.releaseFds()) closeFd(fd);
    for (const m of this.#queue) for (const fd of m.fds) closeFd(fd);
    this.#queue = [];
    this.#spillBusy = false;
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

  /** Sends queued messages until the socket buffer is full (sendmsg returns 0) or all went. */
  #flush(): void {
    while (this.#queue.length > 0) {
      const m = this.#queue[0]!;
      let total = 0;
      for (const p of m.parts) total += p.length;
      const sent = this.#write(m.parts, m.fds);
      if (sent === null) return;
      if (sent > 0) {
        for (const fd of m.fds) closeFd(fd);
        m.fds = [];
      }
      if (sent < total) {
        m.parts = skipBytes(m.parts, sent);
        if (sent === 0) return;
        continue;
      }
      if (m.spill) this.#spillBusy = false;
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
      for (const m of this.#framer.push(into, r.fds, r.bytes)) {
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
