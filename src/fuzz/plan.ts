/**
 * What the fuzzer sends, decided before it is sent: per connection, the device, the frames
 * (exact bytes, the kinds of fds to attach) and how the connection ends. Plans come from the
 * lane's seeded generator alone, so a seed names the message sequence whatever the timing.
 */

/** Kinds of descriptors the fuzzer attaches (created when the frame is sent). */
export type FdKind =
  /** A fresh eventfd (what SET_IRQS expects). */
  | 'eventfd'
  /** A blocking eventfd whose counter is one below its maximum: a write of 1 would block. */
  | 'eventfd-full'
  /** A 256 KiB memfd (what DMA_MAP expects). */
  | 'memfd'
  /** A memfd of size 0. */
  | 'memfd-empty'
  /** One end of a socket pair whose other end the fuzzer closes at once. */
  | 'socket'
  /** One end of a blocking socket pair whose other end the fuzzer holds and never reads. */
  | 'socket-held'
  /** /dev/null opened read-write. */
  | 'devnull'
  /** The temporary directory, opened read-only. */
  | 'directory';

/** Every kind of fd the fuzzer may attach to a frame. */
export const FD_KINDS: readonly FdKind[] = [
  'eventfd',
  'eventfd-full',
  'memfd',
  'memfd-empty',
  'socket',
  'socket-held',
  'devnull',
  'directory',
];

/** What the server must do with a frame, judged from its bytes and fd count. */
export type Expectation =
  /** One reply, in order. */
  | 'reply'
  /** No reply (NO_REPLY, or a reply-typed message the server ignores). */
  | 'silent'
  /** A framing error: the server closes the connection. */
  | 'fatal'
  /** The size field disagrees with the bytes sent: anything may follow. */
  | 'misframed';

/** One frame as planned: its exact bytes, the fds to attach, a label, and what reply to expect. */
export interface PlannedFrame {
  /** Exactly the bytes sent (for a cut frame, only the first `cutAt` go out). */
  readonly bytes: Uint8Array;
  readonly fds: readonly FdKind[];
  /** What was generated, e.g. `REGION_WRITE offset=edge` (for reports). */
  readonly label: string;
  readonly expect: Expectation;
}

/** How a connection ends once its frames are sent. */
export type ConnectionEnd =
  /** Waits for every expected reply, then closes. */
  | 'close'
  /** Closes as soon as everything is sent, replies still on their way. */
  | 'close-now'
  /** The last frame is a framing error: waits for the server to close. */
  | 'fatal'
  /** The last frame is sent in part, then the connection closes (a disconnect mid-message). */
  | 'cut'
  /** The last frame's size field is wrong; closes right after. */
  | 'misframed';

/**
 * One connection as planned: its device, its frames, how it ends (and where a cut frame is cut),
 * frames from an intruder, and how many frames are guarded.
 */
export interface PlannedConnection {
  /** Index into the device list. */
  readonly device: number;
  readonly frames: readonly PlannedFrame[];
  readonly end: ConnectionEnd;
  /** For 'cut': bytes of the last frame that are sent. */
  readonly cutAt: number;
  /**
   * Frames sent on a second connection to the same device while this one holds it (the
   * server must refuse it: EBUSY to its first message, then close); empty for none.
   */
  readonly intruder: readonly PlannedFrame[];
  /** Writes the canary guard moved away from the canaries. */
  readonly guarded: number;
}

/** A device as the fuzzer aims at it (learnt from the server before the run). */
export interface FuzzDevice {
  readonly address: string;
  readonly socket: string;
  /** Whether region 9 is GPU RAM (the canaries live there). */
  readonly gpu: boolean;
  /** Region sizes by index (0 for regions without size or info). */
  readonly regionSizes: readonly bigint[];
  /** Vectors per IRQ index. */
  readonly irqCounts: readonly number[];
}

/** A span of GPU RAM (region 9) written before the run and read back after it. */
export interface Canary {
  readonly offset: bigint;
  readonly bytes: Uint8Array;
}
