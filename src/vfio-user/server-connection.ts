/**
 * The server end of one vfio-user connection, without device knowledge: decodes each command,
 * hands it to a handler strictly in arrival order (vfio-user.rst "Command Concurrency"), turns
 * a thrown VfioError into an error reply carrying its errno (the one place that does), honours
 * NO_REPLY, closes request fds the handler did not take, and sends the server→client commands
 * DMA_READ/DMA_WRITE, matching their replies by msg_id while commands keep flowing (no
 * deadlock: replies are never waited for inside a handler's turn unless the handler chooses to).
 * The device dispatch (one handleXxx per command) lives with the server, not here.
 */
import { closeFd } from '../native/index.ts';
import { VfioError } from '../vfio/errors.ts';
import { decodeReply, decodeRequest, encodeReplyParts, encodeRequestParts } from './codec.ts';
import { Command, commandName } from './constants.ts';
import type { FramedMessage, FramerOptions } from './framer.ts';
import {
  commandHeader,
  errorReplyHeader,
  isErrorReply,
  isReply,
  type MessageHeader,
  replyHeader,
  wantsReply,
} from './header.ts';
import type { Reply, Request } from './messages.ts';
import { PendingRequests } from './pending-requests.ts';
import { type CloseReason, Connection } from './transport.ts';
import { ReplyError } from './wire-errors.ts';

export interface RequestContext {
  readonly header: MessageHeader;
  readonly connection: ServerConnection;
  /** Takes the request's fds: the handler owns them from now on (else they are closed). */
  takeFds(): number[];
}

/** A reply and the fds to send with it (still owned by the handler's side). */
export interface HandlerResult {
  reply: Reply;
  fds?: readonly number[];
}

export type RequestHandler = (
  request: Request,
  context: RequestContext,
) => HandlerResult | Promise<HandlerResult>;

export interface ServerConnectionEvents {
  /** A handler threw something other than a VfioError (replied to with EIO), or a reply was odd. */
  log?(line: string): void;
  onClose?(reason: CloseReason): void;
}

export class ServerConnection {
  readonly connection: Connection;
  readonly #handler: RequestHandler;
  readonly #events: ServerConnectionEvents;
  readonly #pending = new PendingRequests();
  #queue: FramedMessage[] = [];
  #busy = false;

  /** Takes ownership of connected socket `fd`. */
  constructor(
    fd: number,
    handler: RequestHandler,
    limits: FramerOptions,
    events: ServerConnectionEvents = {},
  ) {
    this.#handler = handler;
    this.#events = events;
    this.connection = new Connection(
      fd,
      {
        onMessage: (m) => this.#onMessage(m),
        onClose: (reason) => {
          this.#pending.failAll(new VfioError('EIO', 'client disconnected'));
          for (const m of this.#queue) for (const f of m.fds) closeFd(f);
          this.#queue = [];
          events.onClose?.(reason);
        },
      },
      limits,
    );
  }

  /** Changes the framing limits (after VERSION). */
  setLimits(limits: FramerOptions): void {
    this.connection.setLimits(limits);
  }

  /**
   * DMA_READ from the client's memory.
   * @throws ReplyError for an error reply; VfioError EIO when the client goes away.
   */
  async dmaRead(address: bigint, count: number): Promise<Uint8Array> {
    const reply = await this.#request({ command: Command.DMA_READ, address, count: BigInt(count) });
    if (reply.command !== Command.DMA_READ)
      throw new VfioError('EINVAL', 'DMA_READ reply of another command');
    return reply.data;
  }

  /** DMA_WRITE to the client's memory; resolves with the count the client reports. */
  async dmaWrite(address: bigint, data: Uint8Array): Promise<bigint> {
    const reply = await this.#request({ command: Command.DMA_WRITE, address, data });
    if (reply.command !== Command.DMA_WRITE)
      throw new VfioError('EINVAL', 'DMA_WRITE reply of another command');
    return reply.count;
  }

  close(): void {
    this.connection.close();
  }

  async #request(request: Request): Promise<Reply> {
    const { msgId, reply } = this.#pending.open(request.command);
    try {
      this.connection.send(commandHeader(msgId, request.command, 0), encodeRequestParts(request));
    } catch (e) {
      this.#pending.cancel(msgId, e as Error);
    }
    const m = await reply;
    for (const fd of m.fds) closeFd(fd);
    if (isErrorReply(m.header))
      throw new ReplyError(m.header.command, m.header.msgId, m.header.errno);
    return decodeReply(m.header.command, m.payload);
  }

  #onMessage(m: FramedMessage): void {
    if (isReply(m.header)) {
      if (!this.#pending.settle(m)) {
        for (const fd of m.fds) closeFd(fd);
        this.#events.log?.(
          `unexpected reply to msg ${m.header.msgId} (${commandName(m.header.command)})`,
        );
      }
      return;
    }
    this.#queue.push(m);
    if (!this.#busy) void this.#run();
  }

  async #run(): Promise<void> {
    this.#busy = true;
    while (this.#queue.length > 0 && !this.connection.closed) {
      const m = this.#queue.shift()!;
      const pending = this.#dispatch(m);
      if (pending !== null) await pending;
    }
    this.#busy = false;
  }

  /** Handles one command; returns a promise only when the handler went asynchronous. */
  #dispatch(m: FramedMessage): Promise<void> | null {
    let fds: number[] | null = m.fds;
    const context: RequestContext = {
      header: m.header,
      connection: this,
      takeFds: () => {
        const taken = fds ?? [];
        fds = null;
        return taken;
      },
    };
    const finish = (result: HandlerResult | null, error: unknown) => {
      for (const fd of fds ?? []) closeFd(fd);
      fds = null;
      this.#respond(m.header, result, error);
    };
    try {
      const out = this.#handler(decodeRequest(m.header.command, m.payload), context);
      if (out instanceof Promise) {
        return out.then(
          (r) => finish(r, null),
          (e: unknown) => finish(null, e),
        );
      }
      finish(out, null);
    } catch (e) {
      finish(null, e);
    }
    return null;
  }

  #respond(request: MessageHeader, result: HandlerResult | null, error: unknown): void {
    if (this.connection.closed || !wantsReply(request)) return;
    if (result !== null) {
      this.connection.send(
        replyHeader(request, 0),
        encodeReplyParts(result.reply),
        result.fds ?? [],
      );
      return;
    }
    let errno = 5; // EIO
    if (error instanceof VfioError) errno = error.errno;
    else
      this.#events.log?.(
        `${commandName(request.command)}: ${error instanceof Error ? error.stack : String(error)}`,
      );
    this.connection.send(errorReplyHeader(request, errno));
  }
}
