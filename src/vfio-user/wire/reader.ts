/**
 * A little-endian read cursor over a message payload (vfio-user is host-endian; every host
 * this project targets is little-endian). It knows integers and byte runs, nothing of
 * messages; running past the end throws VfioError EINVAL naming what was being read. Integers
 * are assembled from the bytes rather than through a DataView: a DataView needs the payload's
 * ArrayBuffer, and for the small payloads that dominate (on-heap typed arrays) V8 then has to
 * allocate one with malloc and copy the bytes out, once per message.
 */
import { VfioError } from '../../vfio/index.ts';

/** A little-endian read cursor over one payload, as the module header describes. */
export class ByteReader {
  readonly #bytes: Uint8Array;
  #at = 0;

  /** `what` names the payload in error messages ("DMA_MAP request"). */
  constructor(
    bytes: Uint8Array,
    readonly what: string,
  ) {
    this.#bytes = bytes;
  }

  /** Bytes read so far: the offset of the next field in the payload. */
  get offset(): number {
    return this.#at;
  }

  /** Bytes left after `offset` (0 at the end). */
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

  /**
   * The next 2 bytes as an unsigned little-endian integer; `field` names it in the error.
   * @throws VfioError EINVAL when fewer than 2 bytes remain
   */
  u16(field: string): number {
    const at = this.#need(2, field);
    const b = this.#bytes;
    return b[at]! | (b[at + 1]! << 8);
  }

  /**
   * The next 4 bytes as an unsigned little-endian integer.
   * @throws VfioError EINVAL when fewer than 4 bytes remain
   */
  u32(field: string): number {
    return readU32(this.#bytes, this.#need(4, field));
  }

  /**
   * The next 8 bytes as an unsigned little-endian bigint.
   * @throws VfioError EINVAL when fewer than 8 bytes remain
   */
  u64(field: string): bigint {
    const at = this.#need(8, field);
    const lo = readU32(this.#bytes, at);
    const hi = readU32(this.#bytes, at + 4);
    // One BigInt for the common value under 2^32 (offsets, counts) instead of three.
    return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
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

function readU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}
