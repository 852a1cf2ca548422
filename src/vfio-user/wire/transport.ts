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
 *
 * Order and bounds: each message goes to `onMessage` as soon as it is framed, before the next
 * header is read (so nothing is placed ahead of an unhandled message). Reading stops while the
 * owner pauses it and while more than `maxQueuedBytes` of replies wait for the peer to read
 * them (back-pressure: the peer's own sends then block); the rest of a chunk already read waits
 * in the receive buffer. A peer that stops sending inside a message for `stallTimeoutMs` is
 * closed.
 *
 * A peer that leaves loses nothing it sent. When it can no longer receive (a send fails with
 * EPIPE or ECONNRESET; or poll reports an error: a UNIX socket that closes with bytes unread
 * resets its peer, net/unix/af_unix.c unix_release_sock, which epoll reports as EPOLLERR and
 * libuv's uv_poll as UV_EBADF, stopping the watcher), what is queued for it is dropped and
 * sends are dropped from then on, while every byte it sent is still read and each message
 * handled in order up to the end of the stream, which then closes the connection as 'eof'.
 */

import { asError } from '../../errors/index.ts';
import {
  closeFd,
  dupFd,
  FAST_CONTROL_SLOTS,
  type FastHandoff,
  type FastPathTable,
  FastSlot,
  FdEvent,
  FdWatcher,
  peerCredentials,
  receiveInto,
  sendBuffer,
  sendMessage,
  shutdownFd,
  systemCallError,
} from '../../native/index.ts';
import { skipBytes } from './byte-parts.ts';
import { HEADER_SIZE } from './constants.ts';
import {
  type BodyPlacer,
  type FramedMessage,
  type FramerOptions,
  MessageFramer,
  type MessageSink,
} from './framer.ts';
import { type MessageHeader, writeHeader } from './header.ts';
import { FramingError } from './wire-errors.ts';

/** Why a connection ended: 'eof' (peer closed at a message boundary), 'local', or an error. */
export type CloseReason = { kind: 'eof' } | { kind: 'local' } | { kind: 'error'; error: Error };

/** What a `Connection` calls: each whole message, the close, and where message bodies go. */
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

/** Options of `Connection`: the unsent-bytes bound for back-pressure and the stall timeout (ms). */
export interface ConnectionOptions {
  /**
   * Unsent bytes past which, checked after each message handled, reading stops until the
   * queue is half drained (back-pressure on a peer that does not read its replies). Absent:
   * no bound (a client, whose queue holds its own requests, must always read its replies).
   */
  readonly maxQueuedBytes?: number;
  /** Closes a peer that sends nothing for this long inside a message; 0 or absent: never. */
  readonly stallTimeoutMs?: number;
}

/** Bytes of a received chunk not framed yet (reading stopped after a message). */
interface Unframed {
  readonly from: number;
  readonly end: number;
  /** fds that came with the chunk: they belong to its last byte. */
  readonly fds: readonly number[];
}

interface Outgoing {
  /** Bytes of `parts` not sent yet. */
  bytes: number;
  parts: Uint8Array[];
  /** Duplicates owned by the queue; closed once sent or dropped. */
  fds: number[];
  /** Whether `parts` hold the connection's spill buffer (freed once sent or dropped). */
  spill: boolean;
}

/** SO_SNDBUF asked for each connection (bytes; the kernel doubles it, capped by wmem_max). */
const SEND_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * One vfio-user socket (the native addon's fd, watched outside libuv): framed messages in, queued
 * parts and fds out, and one close reason.
 */
export class Connection {
  /** The socket's fd (the native addon's); closed with the connection. */
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
  #queuedBytes = 0;
  readonly #maxQueuedBytes: number;
  /** Reading stopped until the queue drains to half of #maxQueuedBytes. */
  #backedUp = false;
  #closed = false;
  /** Reading paused by the owner (`pause`). */
  #paused = false;
  /** The peer can no longer receive: sends are dropped, reading goes on to the end. */
  #peerGone = false;
  /** Poll reported the reset (libuv stopped watching): read to the end without readiness. */
  #readToEnd = false;
  /** Rest of the last chunk read into #scratch, not framed yet. */
  #unframed: Unframed | null = null;
  /** Ends the connection once #unframed is handled (the chunk's fds were truncated). */
  #failAfterUnframed: FramingError | null = null;
  /** What the watcher watches now (FdEvent bits). */
  #watching: number = FdEvent.READABLE;
  /** Inside #continueReading (a handler may pause and resume re-entrantly). */
  #continuing = false;
  readonly #stallTimeoutMs: number;
  #stallTimer: NodeJS.Timeout | null = null;
  /** performance.now() of the last read that returned bytes. */
  #lastReadAt = 0;
  /** The native fast path's table (attachFastPath), or null. */
  #fast: FastPathTable | null = null;
  /** Shared with the native fast path: FastSlot GATE (ours), counters and PENDING (its). */
  readonly #control = new Int32Array(FAST_CONTROL_SLOTS);
  /** The stall check of data the fast path receives into place (it never enters JS). */
  #fastStallTimer: NodeJS.Timeout | null = null;
  #fastProgress = -1;
  /** Hands a framed message to the handler; false stops framing (see #readable). */
  readonly #deliver: MessageSink = (m) => {
    if (this.#closed) {
      for (const fd of m.fds) closeFd(fd);
      return false;
    }
    this.#handlers.onMessage(m);
    if (this.#queuedBytes > this.#maxQueuedBytes) this.#backedUp = true;
    return this.#readable();
  };

  /** Takes ownership of a connected, non-blocking, close-on-exec stream socket `fd`. */
  constructor(
    fd: number,
    handlers: ConnectionHandlers,
    limits: FramerOptions,
    options: ConnectionOptions = {},
  ) {
    this.fd = fd;
    this.#handlers = handlers;
    const placer = handlers.placeBody;
    this.#framer = new MessageFramer(limits, placer ? (h) => placer.call(handlers, h) : null);
    this.#maxFds = limits.maxFds;
    this.#maxQueuedBytes = options.maxQueuedBytes ?? Number.POSITIVE_INFINITY;
    this.#stallTimeoutMs = options.stallTimeoutMs ?? 0;
    try {
      // Room for a few max_data_xfer_size messages in the socket: a 1 MiB reply or request
      // then goes in one sendmsg instead of waiting (and being copied) in our queue.
      sendBuffer(fd, SEND_BUFFER_BYTES);
    } catch {
      // Not a socket (a test's pipe): its default buffer serves.
    }
    this.#watcher = new FdWatcher(fd, FdEvent.READABLE, (status, events, handoff) =>
      this.#onReady(status, events, handoff),
    );
  }

  /**
   * Serves `table`'s plain ranges natively (native/fastpath.c) whenever this connection is at a
   * message boundary with nothing queued: REGION_READ/REGION_WRITE inside them are answered in
   * the readiness callback, in order with everything else; null stops it. No-op once closed.
   */
  attachFastPath(table: FastPathTable | null): void {
    if (this.#closed) return;
    this.#fast = table;
    this.#watcher.fast(table, this.#scratch, this.#control, this.#maxFds);
    this.#syncGate();
    if (table !== null && this.#stallTimeoutMs > 0 && this.#fastStallTimer === null) {
      this.#fastStallTimer = setInterval(() => this.#checkFastStall(), this.#stallTimeoutMs);
      this.#fastStallTimer.unref();
    }
  }

  /**
   * Every stall timeout: a REGION_WRITE whose data the fast path receives into place, and that
   * got none since the last check, is a peer stalled inside a message (closed as #checkStall
   * closes one; after one to two timeouts).
   */
  #checkFastStall(): void {
    const progress = this.#control[FastSlot.PROGRESS]!;
    const receiving = this.#control[FastSlot.RECEIVING] === 1;
    if (receiving && progress === this.#fastProgress) {
      this.close({
        kind: 'error',
        error: new Error(
          `peer sent nothing for ${this.#stallTimeoutMs / 1000} s inside a message (a REGION_WRITE received into place)`,
        ),
      });
      return;
    }
    this.#fastProgress = receiving ? progress : -1;
  }

  /** Requests served on the native fast path so far (REGION_READ, REGION_WRITE). */
  get fastPathServed(): { reads: number; writes: number } {
    return { reads: this.#control[FastSlot.READS]!, writes: this.#control[FastSlot.WRITES]! };
  }

  /**
   * Opens the native fast path's gate only at a message boundary with nothing queued, read
   * ahead or paused: then whatever the socket holds next is the next message, and a reply sent
   * at once is in order. Called whenever that state may have changed (JS runs to completion
   * before the next readiness callback, so the native side never sees a stale gate).
   */
  #syncGate(): void {
    const open =
      this.#fast !== null &&
      !this.#closed &&
      !this.#paused &&
      !this.#backedUp &&
      !this.#peerGone &&
      !this.#readToEnd &&
      this.#unframed === null &&
      this.#failAfterUnframed === null &&
      this.#framer.buffered === 0 &&
      this.#queue.length === 0;
    this.#control[FastSlot.GATE] = open ? 1 : 0;
  }

  /** Bytes queued for the peer and not sent yet. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Stops handing out messages (after the one being handled, if any) and reading, until
   * `resume`; bytes already read wait. Used while the owner decides what the connection is.
   */
  pause(): void {
    this.#paused = true;
    this.#updateWatch();
    this.#syncGate();
  }

  /**
   * Whether nothing of the connection is between its two ends here: open, nothing queued to
   * send, nothing read and not yet handed out. A paused idle connection's socket may be lent
   * to other code for a while (the stop-copy relay, migrate-device.ts) and the framing stays
   * right, provided that code leaves it between two whole messages.
   */
  get idle(): boolean {
    return (
      !this.#closed &&
      this.#queue.length === 0 &&
      this.#unframed === null &&
      this.#framer.buffered === 0
    );
  }

  /** Undoes `pause`: messages already read are handed out now, then reading goes on. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#continueReading();
  }

  /** Whether the connection has closed (EOF, `close`, or an error); nothing is sent after. */
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
   * closed at once either way. Once the peer is gone (see the class comment) nothing is sent.
   * @throws Error when the connection is closed; SystemCallError EBADF for a bad fd in `fds`.
   */
  send(
    header: MessageHeader,
    payload: readonly Uint8Array[] = [],
    fds: readonly number[] = [],
    borrowed = false,
  ): void {
    if (this.#closed) throw new Error('vfio-user connection is closed');
    if (this.#peerGone) return;
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
    // Behind a fast reply still waiting natively too: it goes first.
    if (this.#queue.length > 0 || this.#control[FastSlot.PENDING] !== 0) {
      this.#queue.push(this.#hold(parts, size, 0, fds, borrowed));
      this.#queuedBytes += size;
      this.#updateWatch();
      return;
    }
    const sent = this.#writeAll(parts, size, fds);
    if (sent === null || sent === size) return;
    this.#queue.push(this.#hold(parts, size, sent, sent === 0 ? fds : [], borrowed));
    this.#queuedBytes += size - sent;
    this.#updateWatch();
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
  #hold(
    parts: Uint8Array[],
    size: number,
    sent: number,
    fds: readonly number[],
    borrowed: boolean,
  ): Outgoing {
    const rest = sent > 0 ? skipBytes(parts, sent) : parts.slice();
    const own = rest.map((p) => p.buffer === this.#small.buffer || p.buffer === this.#head.buffer);
    let lent = 0;
    for (let i = 0; i < rest.length; i++) {
      if (own[i]) rest[i] = rest[i]!.slice();
      else if (borrowed) lent += rest[i]!.length;
    }
    const entry: Outgoing = {
      bytes: size - sent,
      parts: rest,
      fds: dupAll(fds),
      spill: false,
    };
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
    if (this.#peerGone) return;
    this.#enqueue([bytes], bytes.length, fds, false);
  }

  /** Closes the connection (idempotent); `onClose` gets `reason`. */
  close(reason: CloseReason = { kind: 'local' }): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    if (this.#stallTimer !== null) clearTimeout(this.#stallTimer);
    this.#stallTimer = null;
    for (const fd of this.#framer.releaseFds()) closeFd(fd);
    for (const fd of this.#unframed?.fds ?? []) closeFd(fd);
    this.#unframed = null;
    for (const m of this.#queue) for (const fd of m.fds) closeFd(fd);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#backedUp = false;
    this.#spillBusy = false;
    this.#fast = null;
    this.#syncGate();
    if (this.#fastStallTimer !== null) clearInterval(this.#fastStallTimer);
    this.#fastStallTimer = null;
    try {
      shutdownFd(this.fd);
    } catch {
      // already disconnected
    }
    closeFd(this.fd);
    this.#handlers.onClose(reason);
  }

  /**
   * Bytes sent (possibly partial), or null when nothing more can be sent: the peer is gone
   * (reading goes on, see #lostPeer) or the connection died (and is now closed).
   */
  #write(parts: Uint8Array[], fds: readonly number[]): number | null {
    try {
      return sendMessage(this.fd, parts.length === 1 ? parts[0]! : parts, fds);
    } catch (e) {
      if (isPeerReset(e)) this.#lostPeer();
      else this.close({ kind: 'error', error: asError(e) });
      return null;
    }
  }

  /**
   * The peer cannot receive any more: what waits for it is dropped (with the duplicated fds),
   * and so is whatever is sent from now on. Reading is not stopped: what the peer sent before
   * it left is still handled, in order.
   */
  #lostPeer(): void {
    if (this.#peerGone) return;
    this.#peerGone = true;
    for (const m of this.#queue) for (const fd of m.fds) closeFd(fd);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#spillBusy = false;
    if (this.#backedUp) {
      this.#backedUp = false; // only ever set outside a handler: resuming here frames nothing twice
      this.#continueReading();
    } else this.#updateWatch();
  }

  /** Sends queued messages until the socket buffer is full (sendmsg returns 0) or all went. */
  #flush(): void {
    while (this.#queue.length > 0) {
      const m = this.#queue[0]!;
      const sent = this.#write(m.parts, m.fds);
      if (sent === null) return;
      this.#queuedBytes -= sent;
      if (sent > 0) {
        for (const fd of m.fds) closeFd(fd);
        m.fds = [];
      }
      if (sent < m.bytes) {
        m.bytes -= sent;
        m.parts = skipBytes(m.parts, sent);
        if (sent === 0) break;
        continue;
      }
      if (m.spill) this.#spillBusy = false;
      this.#queue.shift();
    }
    // Reading resumes once half the bound has drained, not at once: fewer pause/resume flips.
    if (this.#backedUp && this.#queuedBytes <= this.#maxQueuedBytes / 2) {
      this.#backedUp = false;
      this.#continueReading();
    } else this.#updateWatch();
  }

  /** Whether messages may be handed out and bytes read: open, not paused, not backed up. */
  #readable(): boolean {
    return !this.#closed && !this.#paused && !this.#backedUp;
  }

  /** The events to watch: readable while reading goes on, writable while replies wait. */
  #wanted(): number {
    const read = this.#readable() && this.#unframed === null ? FdEvent.READABLE : 0;
    return read | (this.#queue.length > 0 ? FdEvent.WRITABLE : 0);
  }

  #updateWatch(): void {
    this.#syncGate();
    if (this.#closed) return;
    const want = this.#wanted();
    if (want === this.#watching) return;
    this.#watching = want;
    this.#watcher.set(want);
  }

  /**
   * Reading may go on (resumed, or the queue drained): frames the rest of the chunk read
   * before it stopped, then watches the socket again.
   */
  #continueReading(): void {
    if (this.#continuing) return;
    this.#continuing = true;
    try {
      const rest = this.#unframed;
      if (rest !== null && this.#readable()) {
        this.#unframed = null;
        try {
          this.#frameScratch(rest.from, rest.end, rest.fds);
          this.#failIfFramed();
        } catch (e) {
          this.#fail(e);
        }
      }
    } finally {
      this.#continuing = false;
    }
    if (this.#readToEnd) this.#drainToEnd();
    else this.#updateWatch();
  }

  /** Frames #scratch[from, end); keeps what is left when reading stopped after a message. */
  #frameScratch(from: number, end: number, fds: readonly number[]): void {
    const at = this.#framer.frame(this.#scratch, this.#deliver, fds, from, end);
    if (at === end) return;
    if (this.#closed) for (const fd of fds) closeFd(fd);
    else this.#unframed = { from: at, end, fds };
  }

  /** Throws the error kept for after the rest of a chunk, once that rest is handled. */
  #failIfFramed(): void {
    const error = this.#failAfterUnframed;
    if (error === null || this.#unframed !== null || this.#closed) return;
    this.#failAfterUnframed = null;
    throw error;
  }

  /** A FramingError or a failed system call closes the connection; anything else is a bug. */
  #fail(e: unknown): void {
    if (e instanceof FramingError || isSystemError(e)) {
      this.close({ kind: 'error', error: asError(e) });
      return;
    }
    throw e;
  }

  #onReady(status: number, events: number, handoff?: FastHandoff): void {
    try {
      this.#ready(status, events, handoff);
    } finally {
      this.#syncGate();
    }
  }

  #ready(status: number, events: number, handoff?: FastHandoff): void {
    if (this.#closed) {
      for (const fd of handoff?.fds ?? []) closeFd(fd);
      return;
    }
    if (handoff !== undefined) {
      try {
        this.#takeHandoff(handoff);
      } catch (e) {
        this.#fail(e);
        return;
      }
      if (this.#closed) return;
    }
    if (status < 0) {
      // EPOLLERR: the peer closed with bytes of ours unread (libuv says UV_EBADF and stops
      // the watcher). What it sent before is still queued here: read it all.
      this.#watcher.set(0);
      this.#watching = 0;
      this.#readToEnd = true;
      this.#lostPeer();
      this.#drainToEnd();
      return;
    }
    if (events & FdEvent.WRITABLE) this.#flush();
    if (events & FdEvent.READABLE) this.#drain();
  }

  /**
   * What the native fast path left us: a reply it could not send (the peer gone, or another
   * failure that ends the connection), a failed receive, and bytes it read into #scratch but
   * did not handle, [from, end), framed here as #readOnce frames what it reads.
   */
  #takeHandoff(h: FastHandoff): void {
    if (h.bodyError !== 0) {
      // A REGION_WRITE the fast path received into place stopped inside its data.
      const error =
        h.bodyError === -2
          ? new FramingError(
              'fds-truncated',
              'EINVAL',
              `peer sent more than ${this.#maxFds} fds with one message, or this process is out of fds (MSG_CTRUNC)`,
            )
          : h.bodyError === -1 || isPeerReset(systemCallError('recvmsg', h.bodyError))
            ? new FramingError('message-too-short', 'EINVAL', 'peer closed inside a message')
            : systemCallError('recvmsg', h.bodyError);
      this.close({ kind: 'error', error });
      return;
    }
    if (h.sendErrno !== 0) {
      const error = systemCallError('sendmsg', h.sendErrno);
      if (isPeerReset(error)) this.#lostPeer();
      else {
        for (const fd of h.fds) closeFd(fd);
        this.close({ kind: 'error', error });
        return;
      }
    }
    if (h.recvErrno !== 0) {
      const error = systemCallError('recvmsg', h.recvErrno);
      if (!isPeerReset(error)) throw error;
      this.#lostPeer();
    }
    if (h.end === h.from) return;
    if (this.#stallTimer !== null) this.#lastReadAt = performance.now();
    if (h.truncatedControl) {
      const error = new FramingError(
        'fds-truncated',
        'EINVAL',
        `peer sent more than ${this.#maxFds} fds with one message, or this process is out of fds (MSG_CTRUNC)`,
      );
      if (h.end - h.from <= 1) throw error;
      this.#failAfterUnframed = error;
      this.#frameScratch(h.from, h.end - 1, []);
      this.#failIfFramed();
      return;
    }
    this.#frameScratch(h.from, h.end, h.fds);
  }

  /**
   * After a reset: reads and hands out everything the peer sent, up to the end of the stream
   * (which closes the connection), without waiting for readiness: it is all here already. A
   * pause by the owner stops it; `resume` goes on.
   */
  #drainToEnd(): void {
    try {
      while (this.#readable() && this.#unframed === null) {
        if (this.#readOnce() === null) break;
      }
    } catch (e) {
      this.#fail(e);
      return;
    }
    // Nothing more to read, yet no end of stream: the reset came from elsewhere; watch again.
    if (this.#readable() && this.#unframed === null) {
      this.#readToEnd = false;
      this.#updateWatch();
    }
  }

  #drain(): void {
    try {
      for (let i = 0; i < READS_PER_WAKEUP && this.#readable() && this.#unframed === null; i++) {
        if (this.#readOnce() !== true) break;
      }
    } catch (e) {
      this.#fail(e);
      return;
    }
    this.#updateWatch();
    if (this.#stallTimeoutMs > 0 && this.#stallTimer === null && this.#framer.buffered > 0) {
      this.#lastReadAt = performance.now();
      this.#armStallTimer(this.#stallTimeoutMs);
    }
  }

  #armStallTimer(ms: number): void {
    this.#stallTimer = setTimeout(() => this.#checkStall(), ms);
    this.#stallTimer.unref();
  }

  /**
   * The stall timer: a peer inside a message that sent nothing for the timeout is closed. Time
   * spent with reading stopped on our side (pause, back-pressure) does not count.
   */
  #checkStall(): void {
    this.#stallTimer = null;
    const buffered = this.#framer.buffered;
    if (this.#closed || buffered === 0) return;
    if (!this.#readable() || this.#unframed !== null) {
      this.#lastReadAt = performance.now();
      this.#armStallTimer(this.#stallTimeoutMs);
      return;
    }
    const idle = performance.now() - this.#lastReadAt;
    if (idle < this.#stallTimeoutMs) {
      this.#armStallTimer(this.#stallTimeoutMs - idle);
      return;
    }
    this.close({
      kind: 'error',
      error: new Error(
        `peer sent nothing for ${this.#stallTimeoutMs / 1000} s inside a message (${buffered} bytes of it received)`,
      ),
    });
  }

  /**
   * One recvmsg: true when it filled its buffer (more may wait), false when it did not (the
   * socket is probably drained) or the connection ended, null when nothing was there (EAGAIN).
   * A read that did not fill its buffer ends the wakeup: epoll is level-triggered, so anything
   * that arrived meanwhile wakes us again, and the usual EAGAIN read is saved. ECONNRESET (the
   * peer closed with our bytes unread, reported once everything it sent has been read) is the
   * end of the stream.
   */
  #readOnce(): boolean | null {
    const direct = this.#framer.directTarget(DIRECT_MIN_BYTES);
    const into = direct ?? this.#scratch;
    let r: ReturnType<typeof receiveInto>;
    try {
      r = receiveInto(this.fd, into, this.#maxFds);
    } catch (e) {
      if (!isPeerReset(e)) throw e;
      this.#lostPeer();
      r = { bytes: 0, fds: [], truncatedControl: false };
    }
    if (r === null) return null;
    if (r.truncatedControl) {
      const error = new FramingError(
        'fds-truncated',
        'EINVAL',
        // The kernel truncates too when it cannot install the fds (this process at EMFILE).
        `peer sent more than ${this.#maxFds} fds with one message, or this process is out of fds (MSG_CTRUNC)`,
      );
      if (direct !== null || r.bytes <= 1) throw error;
      // The fds belonged to the chunk's last byte: every message that ends before it came
      // without fds and is whole. Those are handled first, then the connection ends.
      this.#failAfterUnframed = error;
      this.#frameScratch(0, r.bytes - 1, []);
      this.#failIfFramed();
      return false;
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
    if (this.#stallTimer !== null) this.#lastReadAt = performance.now();
    if (direct !== null) {
      const m = this.#framer.commitDirect(r.bytes, r.fds);
      if (m !== null) this.#deliver(m);
    } else this.#frameScratch(0, r.bytes, r.fds);
    return r.bytes === into.length;
  }

  /** Raises or lowers the limits (after VERSION negotiation). */
  setLimits(limits: FramerOptions): void {
    this.#framer.setLimits(limits);
    this.#maxFds = limits.maxFds;
    if (this.#fast !== null) this.attachFastPath(this.#fast);
  }
}

/**
 * Close-on-exec duplicates of every fd, or none: the ones made are closed when one fails.
 * @throws SystemCallError EMFILE/ENFILE when this process is out of fds.
 */
function dupAll(fds: readonly number[]): number[] {
  const dups: number[] = [];
  try {
    for (const fd of fds) dups.push(dupFd(fd));
  } catch (e) {
    for (const fd of dups) closeFd(fd);
    throw e;
  }
  return dups;
}

/** EPIPE or ECONNRESET from a send or receive: the peer has gone (or stopped reading). */
function isPeerReset(e: unknown): boolean {
  const code = e instanceof Error ? (e as { code?: unknown }).code : undefined;
  return code === 'EPIPE' || code === 'ECONNRESET';
}

function isSystemError(e: unknown): boolean {
  return e instanceof Error && typeof (e as { syscall?: unknown }).syscall === 'string';
}
