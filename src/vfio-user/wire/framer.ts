/**
 * Incremental framing of a vfio-user byte stream (vfio-user.rst "Header"): feed it chunks as
 * recvmsg returns them, with the fds that came along; it yields whole messages {header,
 * payload, fds}. The header is validated before anything is allocated: size under 16, size over
 * the limit, an unknown message type, or more fds than allowed are FramingErrors, after which
 * the stream is not to be trusted (close the connection, then `releaseFds()`).
 *
 * Which message owns a chunk's fds: on a UNIX stream socket the kernel attaches SCM_RIGHTS to
 * the first byte of the sendmsg that carried them and ends a recvmsg right after that segment
 * (net/unix/af_unix.c unix_stream_read_generic), so the fds belong to the message that contains
 * the chunk's last byte. A peer that sends each message with one sendmsg (QEMU, libvfio-user,
 * this project) is always framed right.
 *
 * A receiver that knows where a message's bulk belongs (the client reading a region into its
 * caller's buffer, the server taking a region write) installs a placer: asked once the header
 * is validated, it may send the body past its first `head` bytes into a buffer of its own,
 * which large bodies then reach straight from recvmsg (`directTarget`) with no copy.
 *
 * Order: `frame` hands each message to its sink as soon as it is whole, before it reads the
 * next header, so the placer (which may put a body straight into a region) only ever runs
 * once every earlier message has been handled (vfio-user.rst "Command Concurrency": commands
 * are processed in the order received). The sink can stop framing after any message; the
 * caller resumes with the rest of the chunk.
 *
 * Memory: a body of its own grows with the bytes that arrive (doubling from 64 KiB), so a
 * header announcing 1 MiB costs what the peer actually sent, not 1 MiB.
 */
import {
  HEADER_SIZE,
  HeaderFlag,
  MessageType,
  WRITE_MULTI_ENTRY_SIZE,
  WRITE_MULTI_MAX_ENTRIES,
} from './constants.ts';
import { decodeHeader, type MessageHeader } from './header.ts';
import { FramingError } from './wire-errors.ts';

/** No fds: one shared empty list rather than a new one per call. */
const NO_FDS: readonly number[] = Object.freeze([]);

/**
 * One whole message off the stream: header, payload bytes (or its head and the placed rest), and
 * the fds that came with it.
 */
export interface FramedMessage {
  header: MessageHeader;
  /**
   * The bytes after the header (its own buffer, not shared with the framer); only the first
   * `head` of them when the placer placed the rest.
   */
  payload: Uint8Array;
  /** The rest of the body, received into the placer's buffer (absent unless placed). */
  placed?: Uint8Array;
  /** fds that arrived with this message; the receiver owns them. */
  fds: number[];
}

/** The framer's limits: the largest message (bytes, header included) and most fds per message. */
export interface FramerOptions {
  /** Largest whole message accepted (header included). */
  maxMessageSize: number;
  /** Most fds one message may carry. */
  maxFds: number;
}

/**
 * The message size limit for a peer's max_data_xfer_size: header, the largest fixed part that
 * precedes data (16 bytes), the data; at least a full REGION_WRITE_MULTI of QEMU's 200 entries.
 */
export function messageSizeLimit(maxDataXferSize: number): number {
  return (
    HEADER_SIZE +
    Math.max(16 + maxDataXferSize, 8 + WRITE_MULTI_ENTRY_SIZE * WRITE_MULTI_MAX_ENTRIES)
  );
}

/**
 * Where a placed body goes: its first `head` bytes into the payload, the rest into `data`, or
 * into what `data` returns when called with those first bytes once they are in.
 */
export interface BodyPlacement {
  readonly head: number;
  /** At least as long as the rest of the body (the framer uses a view of the exact length). */
  readonly data: Uint8Array | ((head: Uint8Array) => Uint8Array);
}

/**
 * Called once per message with a body, after its header is validated: a placement, or null for
 * a body of its own. The placer owns `data` again once the message is handed out or the
 * connection ends.
 */
export type BodyPlacer = (header: MessageHeader) => BodyPlacement | null;

/**
 * Receives each message as soon as it is framed (its fds are now the sink's); false stops
 * framing after it.
 */
export type MessageSink = (message: FramedMessage) => boolean;

/** Own bodies up to this size are allocated at once; larger ones grow as their bytes arrive. */
const BODY_GROW_BYTES = 64 * 1024;

/**
 * Cuts a byte stream (with its SCM_RIGHTS fds) into messages: checks each header's size and fd
 * count before allocating; a FramingError ends the connection.
 */
export class MessageFramer {
  #options: FramerOptions;
  readonly #head = new Uint8Array(HEADER_SIZE);
  #headFill = 0;
  #header: MessageHeader | null = null;
  /** The body (a placed body's head): `#bodySize` bytes, in a buffer that may still grow. */
  #body: Uint8Array | null = null;
  #bodySize = 0;
  #bodyFill = 0;
  /** The placed rest of the body, filled after #body. */
  #tail: Uint8Array | null = null;
  /** Chooses #tail once #body is full, when the placement waits for the head. */
  #resolveTail: ((head: Uint8Array) => Uint8Array) | null = null;
  #tailBytes = 0;
  #tailFill = 0;
  #fds: number[] = [];
  readonly #placer: BodyPlacer | null;

  constructor(options: FramerOptions, placer: BodyPlacer | null = null) {
    this.#options = options;
    this.#placer = placer;
  }

  /** Bytes of a message received so far (0 at a message boundary). */
  get buffered(): number {
    return this.#headFill + this.#bodyFill + this.#tailFill;
  }

  /**
   * Frames `chunk[from, end)` (copied: the caller may reuse the chunk; `end` spares a receive
   * buffer a subarray per read), handing each message to `sink` before reading on. `fds` came
   * with the chunk and go with its last byte. Returns where framing stopped: `end` when the
   * chunk is consumed (its fds taken), earlier when `sink` returned false with bytes left; the
   * caller then still owns `fds` and resumes with `frame(chunk, sink, fds, returned, end)`.
   * @throws FramingError; the framer then holds every fd not yet handed out (`releaseFds`).
   *   Whatever `sink` throws propagates the same way.
   */
  frame(
    chunk: Uint8Array,
    sink: MessageSink,
    fds: readonly number[] = NO_FDS,
    from = 0,
    end = chunk.length,
  ): number {
    let pendingFds = fds.length > 0 ? fds : null;
    if (pendingFds !== null && end === from) {
      this.#fds.push(...pendingFds);
      throw new FramingError(
        'fds-without-bytes',
        'EINVAL',
        `${pendingFds.length} fds arrived with no bytes`,
      );
    }
    let at = from;
    try {
      while (at < end) {
        at += this.#fill(chunk, at, end);
        if (at === end && pendingFds !== null) {
          const attach = pendingFds;
          pendingFds = null;
          this.#attachFds([...attach]);
        }
        const message = this.#take();
        if (message !== null && !sink(message) && at < end) return at;
      }
    } catch (e) {
      // The stream is dead: fds not handed out yet are the framer's to release.
      if (pendingFds !== null) this.#fds.push(...pendingFds);
      throw e;
    }
    return end;
  }

  /**
   * Every message of `chunk` in an array: only for a framer without a placer (nothing is
   * placed before the caller handles the earlier messages), e.g. a test or a probe.
   * @throws FramingError as `frame`; Error when a placer is installed.
   */
  push(chunk: Uint8Array, fds: readonly number[] = NO_FDS, end = chunk.length): FramedMessage[] {
    if (this.#placer !== null) {
      throw new Error(
        'push() collects messages before they are handled: use frame() with a placer',
      );
    }
    const out: FramedMessage[] = [];
    try {
      this.frame(chunk, (m) => out.push(m) > 0, fds, 0, end);
    } catch (e) {
      for (const m of out) this.#fds.push(...m.fds);
      throw e;
    }
    return out;
  }

  /**
   * Where a large body can be received without a copy: the unfilled part of the current body,
   * when at least `minBytes` of it remain (an own body grows first if it must); null otherwise
   * (receive into a scratch buffer).
   */
  directTarget(minBytes: number): Uint8Array | null {
    this.#placeTail();
    if (this.#body === null) return null;
    if (this.#inBody()) {
      this.#growBody();
      if (this.#body.length - this.#bodyFill < minBytes) return null;
      return this.#body.subarray(this.#bodyFill);
    }
    if (this.#tail!.length - this.#tailFill < minBytes) return null;
    return this.#tail!.subarray(this.#tailFill);
  }

  /** Unfilled bytes of the buffer the next body bytes go to (as allocated now); -1 between messages. */
  #room(): number {
    if (this.#body === null) return -1;
    return this.#inBody()
      ? this.#body.length - this.#bodyFill
      : this.#tail!.length - this.#tailFill;
  }

  /** Whether the next body bytes go to #body (until full, or when nothing is placed). */
  #inBody(): boolean {
    return this.#bodyFill < this.#bodySize || this.#tail === null;
  }

  /** An own body whose buffer is full but not the body: twice the buffer, up to the body. */
  #growBody(): void {
    const body = this.#body!;
    if (this.#bodyFill < body.length || body.length >= this.#bodySize) return;
    const grown = new Uint8Array(Math.min(this.#bodySize, Math.max(2 * body.length, 1)));
    grown.set(body.subarray(0, this.#bodyFill));
    this.#body = grown;
  }

  /**
   * Accounts `n` bytes received into `directTarget()`, with their fds; the message when it is
   * now whole (a direct target never spans two messages).
   * @throws FramingError as `frame`.
   */
  commitDirect(n: number, fds: readonly number[] = NO_FDS): FramedMessage | null {
    this.#placeTail();
    if (n > this.#room()) {
      throw new RangeError(`commitDirect(${n}) without a direct target that large`);
    }
    if (this.#inBody()) this.#bodyFill += n;
    else this.#tailFill += n;
    this.#placeTail();
    if (fds.length > 0) this.#attachFds([...fds]);
    return this.#take();
  }

  /** Changes the limits for messages whose header has not been read yet. */
  setLimits(options: FramerOptions): void {
    this.#options = options;
  }

  /** Every fd held for an unfinished message; the framer forgets them. */
  releaseFds(): number[] {
    const fds = this.#fds;
    this.#fds = [];
    return fds;
  }

  /** Once the head of a placed body is in, asks where the rest goes. */
  #placeTail(): void {
    const resolve = this.#resolveTail;
    if (resolve === null || this.#body === null || this.#bodyFill < this.#bodySize) return;
    this.#resolveTail = null;
    const data = resolve(this.#body);
    if (data.length < this.#tailBytes) {
      throw new RangeError(`body placement of ${data.length} bytes for ${this.#tailBytes}`);
    }
    this.#tail = data.subarray(0, this.#tailBytes);
  }

  #fill(chunk: Uint8Array, at: number, end: number): number {
    if (this.#body === null) {
      const n = Math.min(HEADER_SIZE - this.#headFill, end - at);
      copyBytes(this.#head, this.#headFill, chunk, at, n);
      this.#headFill += n;
      if (this.#headFill === HEADER_SIZE) this.#startBody();
      return n;
    }
    if (this.#inBody()) {
      this.#growBody();
      const n = Math.min(this.#body.length - this.#bodyFill, end - at);
      copyBytes(this.#body, this.#bodyFill, chunk, at, n);
      this.#bodyFill += n;
      this.#placeTail();
      return n;
    }
    const n = Math.min(this.#tail!.length - this.#tailFill, end - at);
    copyBytes(this.#tail!, this.#tailFill, chunk, at, n);
    this.#tailFill += n;
    return n;
  }

  #startBody(): void {
    const h = decodeHeader(this.#head);
    if (h.size < HEADER_SIZE) {
      throw new FramingError(
        'message-too-short',
        'EINVAL',
        `message size ${h.size} is under the 16-byte header`,
      );
    }
    if (h.size > this.#options.maxMessageSize) {
      throw new FramingError(
        'message-too-long',
        'E2BIG',
        `message size ${h.size} exceeds the limit of ${this.#options.maxMessageSize}`,
      );
    }
    const type = h.flags & HeaderFlag.TYPE_MASK;
    if (type !== MessageType.COMMAND && type !== MessageType.REPLY) {
      throw new FramingError(
        'bad-message-type',
        'EINVAL',
        `message type ${type} is neither command nor reply`,
      );
    }
    this.#header = h;
    const bodyBytes = h.size - HEADER_SIZE;
    const p = bodyBytes > 0 && this.#placer !== null ? this.#placer(h) : null;
    if (p !== null && typeof p.data === 'function' && p.head <= bodyBytes) {
      this.#setBody(p.head, p.head);
      this.#tail = new Uint8Array(0); // a placeholder until the head is in
      this.#resolveTail = p.data;
      this.#tailBytes = bodyBytes - p.head;
      this.#placeTail();
    } else if (
      p !== null &&
      typeof p.data !== 'function' &&
      p.head <= bodyBytes &&
      bodyBytes - p.head <= p.data.length
    ) {
      this.#setBody(p.head, p.head);
      this.#tail = p.data.subarray(0, bodyBytes - p.head);
    } else {
      this.#setBody(bodyBytes, Math.min(bodyBytes, BODY_GROW_BYTES));
      this.#tail = null;
    }
    this.#tailFill = 0;
  }

  #setBody(size: number, allocate: number): void {
    this.#body = new Uint8Array(allocate);
    this.#bodySize = size;
    this.#bodyFill = 0;
  }

  #attachFds(fds: number[]): void {
    this.#fds.push(...fds);
    if (this.#fds.length > this.#options.maxFds) {
      throw new FramingError(
        'too-many-fds',
        'EINVAL',
        `${this.#fds.length} fds with one message, at most ${this.#options.maxFds} allowed`,
      );
    }
  }

  #take(): FramedMessage | null {
    if (this.#header === null || this.#body === null || this.#bodyFill !== this.#bodySize)
      return null;
    if (this.#tail !== null && this.#tailFill !== this.#tail.length) return null;
    // A grown body ends exactly at its size (#growBody caps there).
    const message: FramedMessage = { header: this.#header, payload: this.#body, fds: this.#fds };
    if (this.#tail !== null) message.placed = this.#tail;
    this.#header = null;
    this.#body = null;
    this.#bodySize = 0;
    this.#bodyFill = 0;
    this.#tail = null;
    this.#tailFill = 0;
    this.#resolveTail = null;
    this.#headFill = 0;
    this.#fds = [];
    return message;
  }
}

/** Up to this many bytes are copied by a loop: a subarray for set() is an allocation. */
const LOOP_COPY_BYTES = 64;

function copyBytes(
  to: Uint8Array,
  toAt: number,
  from: Uint8Array,
  fromAt: number,
  n: number,
): void {
  if (n > LOOP_COPY_BYTES) {
    to.set(from.subarray(fromAt, fromAt + n), toAt);
    return;
  }
  for (let i = 0; i < n; i++) to[toAt + i] = from[fromAt + i]!;
}
