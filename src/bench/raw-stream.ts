/**
 * The floor's transport: the least a vfio-user peer must do to move a framed message over the
 * project's socket primitives — a non-blocking UNIX stream fd the native addon owns, readiness
 * from an FdWatcher (uv_poll on Node's loop), `receiveInto` a buffer allocated once, frames cut
 * by the 16-byte header's size field, replies gathered into one `sendMessage` with backpressure.
 * No codec, no allocation per message, no dispatch: what the server and client add on top of
 * this is exactly what the benchmark's ratios measure.
 */

import { asError } from '../errors/index.ts';
import {
  closeFd,
  FdEvent,
  FdWatcher,
  receiveInto,
  sendMessage,
  shutdownFd,
} from '../native/index.ts';
import { skipBytes } from '../vfio-user/index.ts';

/** sizeof(struct vfio_user_header); the message size is the u32 at offset 4. */
export const FRAME_HEADER_BYTES = 16;

/** What a `RawStream` calls: each whole frame, and the end of the stream. */
export interface RawStreamHandlers {
  /** One whole message, header included; the view is valid only during the call. */
  onFrame(frame: Uint8Array): void;
  /** The stream ended (peer closed, error, or `close()`); the fd is closed. */
  onClose(error: Error | null): void;
}

/**
 * The floor's transport, as the module header describes: whole frames in, one `sendMessage` out.
 */
export class RawStream {
  readonly #fd: number;
  readonly #handlers: RawStreamHandlers;
  readonly #watcher: FdWatcher;
  readonly #in: Uint8Array;
  readonly #view: DataView;
  #fill = 0;
  #pending: Uint8Array[] = [];
  #closed = false;

  /** Takes ownership of the connected non-blocking socket `fd`; frames up to `maxFrame` bytes. */
  constructor(fd: number, maxFrame: number, handlers: RawStreamHandlers) {
    this.#fd = fd;
    this.#handlers = handlers;
    this.#in = new Uint8Array(maxFrame);
    this.#view = new DataView(this.#in.buffer);
    this.#watcher = new FdWatcher(fd, FdEvent.READABLE, (status, events) => {
      // A poll error (EPOLLERR, libuv's UV_EBADF) is the peer closing with bytes of ours
      // unread: what it sent before is still queued, so read it first (transport.ts).
      if (status < 0) {
        this.#drain();
        this.close();
      } else this.#onReady(events);
    });
  }

  /** Whether the stream keeps the process alive. */
  ref(on: boolean): void {
    this.#watcher.ref(on);
  }

  /** Sends `parts` as one message; what the socket buffer cannot take now waits for WRITABLE. */
  send(parts: readonly Uint8Array[]): void {
    if (this.#closed) throw new Error('raw stream is closed');
    if (this.#pending.length > 0) {
      this.#pending.push(...parts);
      return;
    }
    this.#pending = [...parts];
    this.#flush();
  }

  /** Closes the fd (idempotent); `onClose` gets `error`. */
  close(error: Error | null = null): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    try {
      shutdownFd(this.#fd);
    } catch {
      // already gone
    }
    closeFd(this.#fd);
    this.#handlers.onClose(error);
  }

  #onReady(events: number): void {
    if (this.#closed) return;
    if (events & FdEvent.WRITABLE) this.#flush();
    if (events & FdEvent.READABLE) this.#drain();
  }

  #flush(): void {
    while (this.#pending.length > 0 && !this.#closed) {
      let sent: number;
      try {
        sent = sendMessage(this.#fd, this.#pending.slice(0, 64));
      } catch (e) {
        this.close(asError(e));
        return;
      }
      if (sent === 0) break;
      this.#pending = skipBytes(this.#pending, sent);
    }
    if (this.#closed) return;
    this.#watcher.set(
      this.#pending.length > 0 ? FdEvent.READABLE | FdEvent.WRITABLE : FdEvent.READABLE,
    );
  }

  #drain(): void {
    while (!this.#closed) {
      let got: number;
      try {
        const r = receiveInto(this.#fd, this.#in.subarray(this.#fill), 0);
        if (r === null) return;
        got = r.bytes;
      } catch (e) {
        // ECONNRESET comes once everything the peer sent has been read: the end of the stream.
        if ((e as { code?: unknown }).code !== 'ECONNRESET') {
          this.close(asError(e));
          return;
        }
        got = 0;
      }
      if (got === 0) {
        this.close(this.#fill > 0 ? new Error('peer closed inside a message') : null);
        return;
      }
      this.#fill += got;
      this.#cutFrames();
    }
  }

  #cutFrames(): void {
    let at = 0;
    while (this.#fill - at >= FRAME_HEADER_BYTES && !this.#closed) {
      const size = this.#view.getUint32(at + 4, true);
      if (size < FRAME_HEADER_BYTES || size > this.#in.length) {
        this.close(new Error(`frame size ${size} outside [16, ${this.#in.length}]`));
        return;
      }
      if (this.#fill - at < size) break;
      this.#handlers.onFrame(this.#in.subarray(at, at + size));
      at += size;
    }
    if (at > 0) {
      this.#in.copyWithin(0, at, this.#fill);
      this.#fill -= at;
    }
  }
}
