/**
 * Requests awaiting replies on one connection, by msg_id (vfio-user.rst "Header": IDs belong to
 * the sender and are echoed in the reply; "Command Concurrency": commands may be pipelined).
 * Used by the client for its commands and by a server for the DMA_READ/WRITE it sends.
 */
import { VfioError } from '../../vfio/index.ts';
import type { FramedMessage } from '../wire/index.ts';
import { commandName } from '../wire/index.ts';

interface Waiter {
  command: number;
  /** Where the reply's data is to be received, if the requester gave a buffer. */
  into: Uint8Array | undefined;
  /** Most payload bytes the reply may carry (client-reply-limits.ts), if bounded. */
  limit: number | undefined;
  resolve(message: FramedMessage): void;
  reject(error: Error): void;
}

/**
 * The requests of one connection still waiting for a reply, by msg_id: the next id, the reply's
 * destination and limit, and rejection of all on close.
 */
export class PendingRequests {
  readonly #waiting = new Map<number, Waiter>();
  #next = 0;

  /** How many requests await their reply. */
  get size(): number {
    return this.#waiting.size;
  }

  /**
   * A fresh msg_id (16 bits, wrapping, skipping ones still awaited) and the promise of its reply.
   * `limit` bounds the reply's payload (see `replyLimit`).
   * @throws VfioError EBUSY when all 65536 ids await replies.
   */
  open(
    command: number,
    into?: Uint8Array,
    limit?: number,
  ): { msgId: number; reply: Promise<FramedMessage> } {
    if (this.#waiting.size >= 0x10000)
      throw new VfioError('EBUSY', 'all 65536 message ids are awaiting replies');
    while (this.#waiting.has(this.#next)) this.#next = (this.#next + 1) & 0xffff;
    const msgId = this.#next;
    this.#next = (this.#next + 1) & 0xffff;
    const reply = new Promise<FramedMessage>((resolve, reject) => {
      this.#waiting.set(msgId, { command, into, limit, resolve, reject });
    });
    return { msgId, reply };
  }

  /**
   * Awaits the reply to a message whose id the caller chose (raw frames in tests).
   * @throws VfioError EBUSY when `msgId` is already awaited.
   */
  expect(msgId: number, command: number): Promise<FramedMessage> {
    if (this.#waiting.has(msgId))
      throw new VfioError('EBUSY', `msg ${msgId} already awaits a reply`);
    return new Promise<FramedMessage>((resolve, reject) => {
      this.#waiting.set(msgId, { command, into: undefined, limit: undefined, resolve, reject });
    });
  }

  /** The buffer the request `msgId` of `command` asked its reply's data to be received into. */
  target(msgId: number, command: number): Uint8Array | undefined {
    const w = this.#waiting.get(msgId);
    return w !== undefined && w.command === command ? w.into : undefined;
  }

  /** The most payload bytes the reply to `msgId` may carry; undefined when not bounded. */
  replyLimit(msgId: number): number | undefined {
    return this.#waiting.get(msgId)?.limit;
  }

  /** Forgets `msgId` without settling it (the request could not be sent). */
  cancel(msgId: number, error: Error): void {
    const w = this.#waiting.get(msgId);
    this.#waiting.delete(msgId);
    w?.reject(error);
  }

  /**
   * Hands a reply to its waiter. False when nobody waits for its msg_id (the caller closes the
   * reply's fds and may log). A reply whose command differs from the request's rejects.
   */
  settle(reply: FramedMessage): boolean {
    const w = this.#waiting.get(reply.header.msgId);
    if (w === undefined) return false;
    this.#waiting.delete(reply.header.msgId);
    if (reply.header.command !== w.command) {
      w.reject(
        new VfioError(
          'EINVAL',
          `reply to msg ${reply.header.msgId} is for ${commandName(reply.header.command)}, request was ${commandName(w.command)}`,
        ),
      );
      return false;
    }
    w.resolve(reply);
    return true;
  }

  /** Rejects every waiter (the connection ended). */
  failAll(error: Error): void {
    const waiters = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const w of waiters) w.reject(error);
  }
}
