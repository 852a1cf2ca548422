/**
 * The fuzzer's end of one vfio-user connection: a non-blocking UNIX stream socket owned by the
 * native addon, readiness from an FdWatcher, frames sent exactly as planned (a frame with fds
 * alone in its sendmsg, so they arrive with its first byte; frames without fds gathered up to
 * 64 per sendmsg), replies cut by their size field as they arrive, in parallel with sending.
 * Nothing waits for a reply before sending on: the server sees a pipelined stream.
 */

import { messageOf } from '../errors/index.ts';
import {
  closeFd,
  FdEvent,
  FdWatcher,
  receiveInto,
  sendMessage,
  shutdownFd,
} from '../native/index.ts';
import { HEADER_BYTES, type HeaderFields, readHeader } from './wire.ts';

/** Largest reply accepted: 1 MiB of data, its 16-byte head, the header, some slack. */
export const MAX_REPLY_BYTES = (1 << 20) + 4096;
const MAX_PARTS = 64;

/** What a `FuzzSocket` reports: replies, progress and the end of the connection. */
export interface FuzzSocketEvents {
  /** A whole reply; `fds` came with it (the callee closes them). */
  reply(header: Required<HeaderFields>, fds: number[]): void;
  /** Bytes were sent (progress, for stall detection). */
  sent(): void;
  /** The connection ended: the server closed it (`eof`), or sending/receiving failed. */
  end(why: 'eof' | 'malformed-reply' | 'error', detail: string): void;
}

interface Outgoing {
  bytes: Uint8Array;
  fds: number[];
}

/** The fuzzer's end of one connection, as the module header describes. */
export class FuzzSocket {
  readonly #fd: number;
  readonly #events: FuzzSocketEvents;
  readonly #watcher: FdWatcher;
  readonly #in = new Uint8Array(MAX_REPLY_BYTES * 2);
  #fill = 0;
  #queue: Outgoing[] = [];
  #pendingFds: number[] = [];
  #ended = false;
  #closed = false;

  /** Takes ownership of the connected non-blocking socket `fd`. */
  constructor(fd: number, events: FuzzSocketEvents) {
    this.#fd = fd;
    this.#events = events;
    this.#watcher = new FdWatcher(fd, FdEvent.READABLE, (status, ev) => {
      if (status >= 0) this.#onReady(ev);
      else this.#onPollError(status);
    });
  }

  /** Whether everything queued has gone to the socket. */
  get flushed(): boolean {
    return this.#queue.length === 0;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Queues `bytes` with `fds` (owned from now on: closed once sent or at close). */
  send(bytes: Uint8Array, fds: number[]): void {
    if (this.#ended) {
      for (const fd of fds) closeFd(fd);
      return;
    }
    this.#queue.push({ bytes, fds });
    if (this.#queue.length === 1) this.#flush();
  }

  /** Closes the socket and every fd not yet sent (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ended = true;
    this.#watcher.close();
    for (const m of this.#queue) for (const fd of m.fds) closeFd(fd);
    this.#queue = [];
    try {
      shutdownFd(this.#fd);
    } catch {
      // the peer is gone already
    }
    closeFd(this.#fd);
  }

  #end(why: 'eof' | 'malformed-reply' | 'error', detail: string): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const m of this.#queue) for (const fd of m.fds) closeFd(fd);
    this.#queue = [];
    this.#watcher.set(0);
    this.#events.end(why, detail);
  }

  /**
   * libuv reports EPOLLERR as a poll error (UV_EBADF). On a UNIX socket it means the server
   * closed while bytes of ours were still unread (the kernel then sets ECONNRESET): what it
   * sent before is still queued, so read it all, then the connection has ended.
   */
  #onPollError(status: number): void {
    if (this.#ended) return;
    this.#drain();
    if (!this.#ended) this.#end('eof', `closed by the server (poll error ${-status})`);
  }

  #onReady(events: number): void {
    if (this.#ended) return;
    if (events & FdEvent.WRITABLE) this.#flush();
    if (events & FdEvent.READABLE) this.#drain();
  }

  /** Parts for one sendmsg: the head frame alone if it has fds, else frames up to one with fds. */
  #batch(): { parts: Uint8Array[]; fds: number[] } {
    const head = this.#queue[0]!;
    if (head.fds.length > 0) return { parts: [head.bytes], fds: head.fds };
    const parts: Uint8Array[] = [];
    for (const m of this.#queue) {
      if (m.fds.length > 0 || parts.length === MAX_PARTS) break;
      parts.push(m.bytes);
    }
    return { parts, fds: [] };
  }

  #flush(): void {
    let progressed = false;
    while (this.#queue.length > 0 && !this.#ended) {
      const { parts, fds } = this.#batch();
      let sent: number;
      try {
        sent = sendMessage(this.#fd, parts.length === 1 ? parts[0]! : parts, fds);
      } catch (e) {
        // EPIPE/ECONNRESET: the server closed; whatever it sent before is still to be read.
        this.#queue.splice(0).forEach((m) => {
          for (const fd of m.fds) closeFd(fd);
        });
        this.#drain();
        if (!this.#ended) this.#end('eof', `send failed: ${messageOf(e)}`);
        return;
      }
      if (sent === 0) break;
      progressed = true;
      if (fds.length > 0) {
        for (const fd of fds) closeFd(fd);
        this.#queue[0]!.fds = [];
      }
      this.#consume(sent);
    }
    if (progressed) this.#events.sent();
    if (this.#ended) return;
    this.#watcher.set(
      this.#queue.length > 0 ? FdEvent.READABLE | FdEvent.WRITABLE : FdEvent.READABLE,
    );
  }

  #consume(sent: number): void {
    let left = sent;
    while (left > 0) {
      const m = this.#queue[0]!;
      if (left >= m.bytes.length) {
        left -= m.bytes.length;
        this.#queue.shift();
      } else {
        m.bytes = m.bytes.subarray(left);
        left = 0;
      }
    }
  }

  #drain(): void {
    for (;;) {
      if (this.#closed) return;
      let r: ReturnType<typeof receiveInto>;
      try {
        r = receiveInto(this.#fd, this.#in.subarray(this.#fill), 16);
      } catch (e) {
        this.#end('eof', `receive failed: ${messageOf(e)}`);
        return;
      }
      if (r === null) return;
      if (r.bytes === 0) {
        for (const fd of r.fds) closeFd(fd);
        this.#end('eof', this.#fill > 0 ? 'closed inside a reply' : 'closed');
        return;
      }
      this.#fill += r.bytes;
      if (!this.#cut(r.fds)) return;
    }
  }

  /** Hands out every whole reply; false once the stream is no longer trusted. */
  #cut(fds: number[]): boolean {
    this.#pendingFds.push(...fds);
    let at = 0;
    while (this.#fill - at >= HEADER_BYTES) {
      const h = readHeader(this.#in, at);
      if (h.size < HEADER_BYTES || h.size > MAX_REPLY_BYTES) {
        this.#end('malformed-reply', `reply size ${h.size} outside [16, ${MAX_REPLY_BYTES}]`);
        return false;
      }
      if (this.#fill - at < h.size) break;
      at += h.size;
      // fds arrive with the chunk ending in their message: give them to the last whole reply.
      const take = this.#fill - at < HEADER_BYTES ? this.#pendingFds.splice(0) : [];
      this.#events.reply(h, take);
      if (this.#ended) return false;
    }
    if (at > 0) {
      this.#in.copyWithin(0, at, this.#fill);
      this.#fill -= at;
    }
    return true;
  }
}
