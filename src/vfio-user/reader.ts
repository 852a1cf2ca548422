/**
 * A little-endian read cursor over a message payload (vfio-user is host-endian; every host
 * this project targets is little-endian). It knows integers and byte runs, nothing of
 * messages; running past the end throws VfioError EINVAL naming what was being read.
 */
import { VfioError } from '../vfio/errors.ts';

export class ByteReader {
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  #at = 0;

  /** `what` names the payload in error messages ("DMA_MAP request"). */
  constructor(
    bytes: Uint8Array,
    readonly what: string,
  ) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.#at;
  }

  get remaining(): number {
    return this.#bytes.length - this.#at;
  }

  #need(n: number, field: string): number {
    if (this.remaining < n) {
      throw new VfioError(
        'EINVAL',
        `${this.what}: ${field} needs ${n} bytes at offset ${this.#at}, payload has ${this.#bytes.length}`,
      );
    }
    const at = this.#at;
    this.#at += n;
    return at;
  }

  u16(field: string): number {
    return this.#view.getUint16(this.#need(2, field), true);
  }

  u32(field: string): number {
    return this.#view.getUint32(this.#need(4, field), true);
  }

  u64(field: string): bigint {
    return this.#view.getBigUint64(this.#need(8, field), true);
  }

  /** `n` bytes as a view into the payload (no copy). */
  bytes(n: number, field: string): Uint8Array {
    const at = this.#need(n, field);
    return this.#bytes.subarray(at, at + n);
  }

  /** Everything left, as a view. */
  rest(): Uint8Array {
    const at = this.#at;
    this.#at = this.#bytes.length;
    return this.#bytes.subarray(at);
  }

  /** @throws VfioError EINVAL when bytes remain: the payload is longer than its layout. */
  end(): void {
    if (this.remaining !== 0) {
      throw new VfioError(
        'EINVAL',
        `${this.what}: payload is ${this.#bytes.length} bytes, layout ends at ${this.#at}`,
      );
    }
  }
}
