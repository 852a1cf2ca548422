/**
 * The floor's near end: sends REGION_READ- and REGION_WRITE-shaped messages to the echo
 * responder (echo-server.ts) over the raw stream and resolves when the reply has arrived, one
 * request at a time — the same request/reply pattern as the vfio-user client's region calls,
 * minus its codecs and bookkeeping.
 */
import { connectUnix } from '../native/index.ts';
import {
  ACCESS_HEAD_BYTES,
  ECHO_MAX_DATA,
  ECHO_REGION_READ,
  ECHO_REGION_WRITE,
} from './echo-server.ts';
import { FRAME_HEADER_BYTES, RawStream } from './raw-stream.ts';

/**
 * The floor's near end, as the module header describes: one REGION_READ/REGION_WRITE-shaped request
 * at a time over a `RawStream`.
 */
export class EchoClient {
  readonly #stream: RawStream;
  readonly #head = new Uint8Array(FRAME_HEADER_BYTES + ACCESS_HEAD_BYTES);
  readonly #headView = new DataView(this.#head.buffer);
  #msgId = 0;
  #waiter: { resolve(): void; reject(e: Error): void } | null = null;

  private constructor(fd: number) {
    this.#stream = new RawStream(fd, FRAME_HEADER_BYTES + ACCESS_HEAD_BYTES + ECHO_MAX_DATA, {
      onFrame: () => this.#settle(null),
      onClose: (error) => this.#settle(error ?? new Error('echo peer closed the connection')),
    });
  }

  /** @throws SystemCallError ENOENT/ECONNREFUSED when nobody listens at `path`. */
  static connect(path: string): EchoClient {
    return new EchoClient(connectUnix(path));
  }

  /** A REGION_READ-shaped round trip: 32-byte request, reply of 32 + `count` bytes. */
  read(count: number): Promise<void> {
    return this.#request(ECHO_REGION_READ, count, null);
  }

  /** A REGION_WRITE-shaped round trip: 32 + data bytes out, a 32-byte reply. */
  write(data: Uint8Array): Promise<void> {
    return this.#request(ECHO_REGION_WRITE, data.length, data);
  }

  close(): void {
    this.#stream.close();
  }

  #request(command: number, count: number, data: Uint8Array | null): Promise<void> {
    if (this.#waiter !== null) return Promise.reject(new Error('one echo request at a time'));
    const size = this.#head.length + (data?.length ?? 0);
    const v = this.#headView;
    this.#msgId = (this.#msgId + 1) & 0xffff;
    v.setUint16(0, this.#msgId, true);
    v.setUint16(2, command, true);
    v.setUint32(4, size, true);
    v.setUint32(8, 0, true);
    v.setUint32(12, 0, true);
    v.setBigUint64(16, 0n, true);
    v.setUint32(24, 1, true);
    v.setUint32(28, count, true);
    const done = new Promise<void>((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
    // The head is reused per request: send a copy only when it may wait in the queue.
    this.#stream.send(data === null ? [this.#head] : [this.#head.slice(), data]);
    return done;
  }

  #settle(error: Error | null): void {
    const w = this.#waiter;
    this.#waiter = null;
    if (w === null) return;
    if (error === null) w.resolve();
    else w.reject(error);
  }
}
