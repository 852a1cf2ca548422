/**
 * A minimal vfio-user peer for wire tests, independent of the project's transport and codecs:
 * a non-blocking UNIX socket (the native addon) that sends byte chunks exactly as given, one
 * sendmsg each, queued while the socket is full, and frames what comes back by the header's
 * size field (vfio-user.rst "Header") into {msgId, command, flags, errno, body} handed to a
 * callback as soon as each message is whole. The body is a view valid during the callback.
 */
import {
  closeFd,
  connectUnix,
  FdEvent,
  FdWatcher,
  receiveInto,
  sendMessage,
} from '../../src/native/index.ts';

export interface RawMessage {
  msgId: number;
  command: number;
  flags: number;
  errno: number;
  body: Uint8Array;
}

/** Largest message accepted: 1 MiB of data plus its heads, and room for the next one. */
const RECEIVE_BYTES = 4 << 20;

export class RawPeer {
  readonly fd: number;
  readonly #watcher: FdWatcher;
  readonly #rx = new Uint8Array(RECEIVE_BYTES);
  #rxFill = 0;
  readonly #tx: Uint8Array[] = [];
  #closed = false;
  #paused = false;
  /** Set when the peer closed or the socket failed. */
  failure: Error | null = null;

  constructor(
    path: string,
    private readonly onMessage: (m: RawMessage) => void,
  ) {
    this.fd = connectUnix(path);
    this.#watcher = new FdWatcher(this.fd, FdEvent.READABLE, (status, events) => {
      // EPOLLERR (libuv's UV_EBADF): the server closed with bytes of ours unread; what it sent
      // before is still queued here, so read it first.
      if (status < 0) {
        this.#read();
        this.#fail(new Error('the server closed the connection with bytes of ours unread'));
        return;
      }
      if (events & FdEvent.WRITABLE) this.#flush();
      if (events & FdEvent.READABLE) this.#read();
    });
  }

  /** Sends `chunk` with one sendmsg after everything queued before it. */
  send(chunk: Uint8Array): void {
    if (this.#closed) throw new Error('raw peer is closed');
    this.#tx.push(chunk);
    if (this.#tx.length === 1) this.#flush();
  }

  /**
   * Stops reading replies (they pile up in the server's socket buffer, then in the server)
   * until `resume`.
   */
  pause(): void {
    this.#paused = true;
    this.#watcher.set(this.#tx.length > 0 ? FdEvent.WRITABLE : 0);
  }

  resume(): void {
    this.#paused = false;
    this.#watcher.set(FdEvent.READABLE | (this.#tx.length > 0 ? FdEvent.WRITABLE : 0));
    this.#read();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    closeFd(this.fd);
  }

  #fail(e: Error): void {
    this.failure ??= e;
    this.close();
  }

  #flush(): void {
    try {
      while (this.#tx.length > 0) {
        const chunk = this.#tx[0]!;
        const n = sendMessage(this.fd, chunk);
        if (n < chunk.length) {
          this.#tx[0] = chunk.subarray(n);
          this.#watcher.set((this.#paused ? 0 : FdEvent.READABLE) | FdEvent.WRITABLE);
          return;
        }
        this.#tx.shift();
      }
      this.#watcher.set(this.#paused ? 0 : FdEvent.READABLE);
    } catch (e) {
      this.#fail(e as Error);
    }
  }

  #read(): void {
    try {
      for (;;) {
        if (this.#closed || this.#paused) return;
        const r = receiveInto(this.fd, this.#rx.subarray(this.#rxFill), 0);
        if (r === null) return;
        if (r.bytes === 0) {
          this.#fail(new Error('the server closed the connection'));
          return;
        }
        this.#rxFill += r.bytes;
        this.#frame();
      }
    } catch (e) {
      this.#fail(e as Error);
    }
  }

  #frame(): void {
    const rx = this.#rx;
    const v = new DataView(rx.buffer);
    let at = 0;
    while (this.#rxFill - at >= 16) {
      const size = v.getUint32(at + 4, true);
      if (size < 16 || size > RECEIVE_BYTES / 2) throw new Error(`reply size ${size}`);
      if (this.#rxFill - at < size) break;
      this.onMessage({
        msgId: v.getUint16(at, true),
        command: v.getUint16(at + 2, true),
        flags: v.getUint32(at + 8, true),
        errno: v.getUint32(at + 12, true),
        body: rx.subarray(at + 16, at + size),
      });
      at += size;
    }
    rx.copyWithin(0, at, this.#rxFill);
    this.#rxFill -= at;
  }
}
