/**
 * The client end of one vfio-user connection: sends commands and matches replies by msg_id
 * (pipelining allowed), turns error replies into ReplyErrors, and answers the only commands a
 * server may send, DMA_READ and DMA_WRITE (vfio-user.rst), from the client's DMA regions;
 * anything else from the server gets an EINVAL error reply. No device knowledge.
 */

import { asError, Errno } from '../../errors/index.ts';
import { closeFd, connectUnix } from '../../native/index.ts';
import { VfioError } from '../../vfio/index.ts';
import type {
  BodyPlacement,
  FramedMessage,
  FramerOptions,
  Reply,
  ReplyOf,
  Request,
} from '../wire/index.ts';
import {
  type CloseReason,
  Command,
  Connection,
  commandHeader,
  commandName,
  decodeRegionDataPlaced,
  decodeReply,
  decodeRequest,
  encodeReplyParts,
  encodeRequestParts,
  errorReplyHeader,
  FramingError,
  HEADER_SIZE,
  isErrorReply,
  isReply,
  type MessageHeader,
  REGION_ACCESS_HEAD_SIZE,
  ReplyError,
  replyHeader,
  wantsReply,
} from '../wire/index.ts';
import { ClientDmaRegions } from './client-dma.ts';
import { replyPayloadLimit } from './client-reply-limits.ts';
import { PendingRequests } from './pending-requests.ts';

/** A decoded reply with the fds that came with it (now the caller's). */
export interface ReplyWithFds<R> {
  reply: R;
  header: MessageHeader;
  /** The reply payload exactly as received (`reply` holds views into it). */
  payload: Uint8Array;
  fds: number[];
}

/**
 * A client's connection: sends requests with fresh msg_ids, matches replies (bounded by
 * client-reply-limits.ts), serves the server's DMA_READ/DMA_WRITE from its DMA regions, and reports
 * the close.
 */
export class ClientChannel {
  /** The socket: framed messages in, queued parts and fds out. */
  readonly connection: Connection;
  /** This client's DMA regions (DMA_MAP'd ranges), which answer the server's DMA_READ/WRITE. */
  readonly dma = new ClientDmaRegions();
  /** Resolves once, when the connection closes: EOF, a local close, or an error. */
  readonly closed: Promise<CloseReason>;
  readonly #pending = new PendingRequests();
  /** Our own max_data_xfer_size: DMA requests from the server beyond it are refused. */
  #maxDataXferSize: number;
  /** How long a request waits for its reply (undefined: as long as the connection lives). */
  readonly #replyTimeoutMs: number | undefined;

  private constructor(
    fd: number,
    limits: FramerOptions,
    maxDataXferSize: number,
    replyTimeoutMs: number | undefined,
  ) {
    let onClosed: (r: CloseReason) => void = () => {};
    this.closed = new Promise((resolve) => {
      onClosed = resolve;
    });
    this.#maxDataXferSize = maxDataXferSize;
    this.#replyTimeoutMs = replyTimeoutMs;
    this.connection = new Connection(
      fd,
      {
        onMessage: (m) => this.#onMessage(m),
        onClose: (reason) => {
          const why = reason.kind === 'error' ? reason.error.message : reason.kind;
          this.#pending.failAll(new VfioError('EIO', `vfio-user connection closed (${why})`));
          this.dma.clear();
          onClosed(reason);
        },
        placeBody: (h) => this.#placeBody(h),
      },
      limits,
    );
  }

  /**
   * Connects to the server socket at `path`. With `replyTimeoutMs`, a request whose reply has
   * not fully arrived by then fails with ETIMEDOUT and ends the connection (QEMU's
   * vfio_user_send_wait, x-msg-timeout).
   * @throws SystemCallError ENOENT/ECONNREFUSED when nobody listens there.
   */
  static connect(
    path: string,
    limits: FramerOptions,
    maxDataXferSize: number,
    replyTimeoutMs?: number,
  ): ClientChannel {
    return ClientChannel.adopt(connectUnix(path), limits, maxDataXferSize, replyTimeoutMs);
  }

  /** Wraps an already connected, non-blocking, close-on-exec socket fd (taking ownership). */
  static adopt(
    fd: number,
    limits: FramerOptions,
    maxDataXferSize: number,
    replyTimeoutMs?: number,
  ): ClientChannel {
    return new ClientChannel(fd, limits, maxDataXferSize, replyTimeoutMs);
  }

  /**
   * Sends `request` and resolves with its decoded reply. Reply fds are closed unless
   * `keepFds` (then they are the caller's). With `into` (REGION_READ only), the reply's data
   * is received straight into it (the reply's `data` is then a view of `into`); the caller
   * leaves `into` alone until the promise settles. A reply longer than its request allows
   * (client-reply-limits.ts) is refused before it is received, and the connection closed.
   * @throws ReplyError for an error reply; VfioError EINVAL for a reply that does not decode,
   *   E2BIG for one too long, ETIMEDOUT for one late (see `connect`), EIO when the connection
   *   closes first.
   */
  async request<R extends Request>(
    request: R,
    fds: readonly number[] = [],
    options: { keepFds?: boolean; into?: Uint8Array } = {},
  ): Promise<ReplyWithFds<ReplyOf<R['command']>>> {
    const placeable =
      request.command === Command.REGION_READ || request.command === Command.MIG_DATA_READ;
    const into = placeable ? options.into : undefined;
    const { msgId, reply } = this.#pending.open(request.command, into, replyPayloadLimit(request));
    try {
      this.connection.send(
        commandHeader(msgId, request.command, 0),
        encodeRequestParts(request),
        fds,
      );
    } catch (e) {
      this.#pending.cancel(msgId, asError(e));
    }
    const m = await (this.#replyTimeoutMs === undefined
      ? reply
      : this.#timed(reply, msgId, request.command, this.#replyTimeoutMs));
    if (!options.keepFds && m.fds.length > 0) {
      for (const fd of m.fds) closeFd(fd);
      m.fds = [];
    }
    return decodeWithFds(m) as ReplyWithFds<ReplyOf<R['command']>>;
  }

  /** `reply`, or ETIMEDOUT after `ms` (the connection is then closed: the stream is unsure). */
  async #timed<T>(reply: Promise<T>, msgId: number, command: number, ms: number): Promise<T> {
    const timer = setTimeout(() => {
      const e = new VfioError(
        'ETIMEDOUT',
        `no reply to ${commandName(command)} (msg ${msgId}) within ${ms} ms`,
      );
      this.#pending.cancel(msgId, e);
      this.connection.close({ kind: 'error', error: e });
    }, ms);
    try {
      return await reply;
    } finally {
      clearTimeout(timer);
    }
  }

  /** How long a request waits for its reply (ms; undefined: as long as the connection lives). */
  get replyTimeoutMs(): number | undefined {
    return this.#replyTimeoutMs;
  }

  /** Requests sent whose replies have not come yet. */
  get awaiting(): number {
    return this.#pending.size;
  }

  /** Sends `request` with NO_REPLY: no reply comes, not even for an error. */
  post(request: Request, fds: readonly number[] = []): void {
    this.connection.send(
      commandHeader(0, request.command, 0, true),
      encodeRequestParts(request),
      fds,
    );
  }

  /** Sends bytes verbatim (malformed frames in tests). */
  sendRaw(bytes: Uint8Array, fds: readonly number[] = []): void {
    this.connection.sendRaw(bytes, fds);
  }

  /** The raw reply to a message sent with `sendRaw` under `msgId`. */
  expectReply(msgId: number, command: number): Promise<FramedMessage> {
    return this.#pending.expect(msgId, command);
  }

  /** After VERSION: the framer's receive limits, and our max_data_xfer_size for DMA requests. */
  setLimits(limits: FramerOptions, maxDataXferSize: number): void {
    this.connection.setLimits(limits);
    this.#maxDataXferSize = maxDataXferSize;
  }

  /** Closes the socket; pending requests reject with EIO. */
  close(): void {
    this.connection.close();
  }

  /**
   * Called before a body is received: a reply longer than its request allows ends the
   * connection (its request fails with E2BIG); a REGION_READ reply whose request gave a buffer
   * has its data placed there, past the head.
   * @throws FramingError E2BIG for a reply over its limit.
   */
  #placeBody(h: MessageHeader): BodyPlacement | null {
    if (!isReply(h)) return null;
    const limit = this.#pending.replyLimit(h.msgId);
    const bytes = h.size - HEADER_SIZE;
    if (limit !== undefined && bytes > limit) {
      const e = new FramingError(
        'message-too-long',
        'E2BIG',
        `${commandName(h.command)} reply of ${bytes} bytes, at most ${limit} expected`,
      );
      this.#pending.cancel(h.msgId, e);
      throw e;
    }
    if (isErrorReply(h)) return null;
    if (h.command !== Command.REGION_READ && h.command !== Command.MIG_DATA_READ) return null;
    const into = this.#pending.target(h.msgId, h.command);
    if (into === undefined) return null;
    const head = h.command === Command.REGION_READ ? REGION_ACCESS_HEAD_SIZE : MIG_DATA_HEAD_SIZE;
    return { head, data: into };
  }

  #onMessage(m: FramedMessage): void {
    if (isReply(m.header)) {
      if (!this.#pending.settle(m)) for (const fd of m.fds) closeFd(fd);
      return;
    }
    for (const fd of m.fds) closeFd(fd);
    let reply: Reply;
    try {
      reply = this.#serveServerCommand(m);
    } catch (e) {
      const errno = e instanceof VfioError ? e.errno : Errno.EINVAL;
      if (wantsReply(m.header)) this.connection.send(errorReplyHeader(m.header, errno));
      return;
    }
    if (wantsReply(m.header))
      this.connection.send(replyHeader(m.header, 0), encodeReplyParts(reply));
  }

  #serveServerCommand(m: FramedMessage): Reply {
    const request = decodeRequest(m.header.command, m.payload);
    switch (request.command) {
      case Command.DMA_READ: {
        if (request.count > BigInt(this.#maxDataXferSize)) {
          throw new VfioError(
            'E2BIG',
            `DMA_READ of ${request.count} bytes exceeds max_data_xfer_size`,
          );
        }
        return {
          command: Command.DMA_READ,
          address: request.address,
          data: this.dma.read(request.address, Number(request.count)),
        };
      }
      case Command.DMA_WRITE:
        this.dma.write(request.address, request.data);
        return {
          command: Command.DMA_WRITE,
          address: request.address,
          count: BigInt(request.data.length),
        };
      default:
        throw new VfioError(
          'EINVAL',
          `${commandName(request.command)} may not be sent by a server`,
        );
    }
  }
}

/** argsz and size before MIG_DATA_READ reply data. */
const MIG_DATA_HEAD_SIZE = 8;

/**
 * A reply whose data was received into the request's buffer: REGION_READ or MIG_DATA_READ.
 * @throws VfioError EINVAL when the head does not describe the data placed.
 */
function decodePlacedReply(command: number, head: Uint8Array, placed: Uint8Array): Reply {
  if (command === Command.REGION_READ)
    return { command, ...decodeRegionDataPlaced(head, placed, 'REGION_READ reply') };
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length !== MIG_DATA_HEAD_SIZE || v.getUint32(4, true) !== placed.length)
    throw new VfioError(
      'EINVAL',
      `MIG_DATA_READ reply: size does not match the ${placed.length} data bytes`,
    );
  return { command: Command.MIG_DATA_READ, argsz: v.getUint32(0, true), data: placed };
}

function decodeWithFds(m: FramedMessage): ReplyWithFds<Reply> {
  if (isErrorReply(m.header)) {
    for (const fd of m.fds) closeFd(fd);
    throw new ReplyError(m.header.command, m.header.msgId, m.header.errno);
  }
  try {
    const reply: Reply =
      m.placed === undefined
        ? decodeReply(m.header.command, m.payload)
        : decodePlacedReply(m.header.command, m.payload, m.placed);
    return {
      reply,
      header: m.header,
      payload: m.payload,
      fds: m.fds,
    };
  } catch (e) {
    for (const fd of m.fds) closeFd(fd);
    throw e;
  }
}
