/**
 * A little-endian write cursor over a buffer of known size (encoders compute the size first).
 * It knows integers and byte runs, nothing of messages. No shared module-level instance:
 * every encode allocates its own. Integers are stored byte by byte, without a DataView, for
 * the reason given in reader.ts (small buffers would each get a malloc'd ArrayBuffer).
 */
export class ByteWriter {
  /** The whole buffer, zero-filled at first; `finish` hands it over once every byte is written. */
  readonly bytes: Uint8Array;
  #at = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }

  /** Stores the low 16 bits of `v`, little-endian. */
  u16(v: number): this {
    this.bytes[this.#at] = v & 0xff;
    this.bytes[this.#at + 1] = (v >>> 8) & 0xff;
    this.#at += 2;
    return this;
  }

  /** Stores `v` modulo 2^32, little-endian. */
  u32(v: number): this {
    this.#put32(v >>> 0);
    return this;
  }

  /** Two's complement modulo 2^64, as DataView.setBigUint64(asUintN(64, v)) would store it. */
  u64(v: bigint): this {
    if (v >= 0n && v <= 0xffffffffn) {
      // No BigInt arithmetic for the common value under 2^32.
      this.#put32(Number(v));
      this.#put32(0);
      return this;
    }
    const u = BigInt.asUintN(64, v);
    this.#put32(Number(u & 0xffffffffn));
    this.#put32(Number(u >> 32n));
    return this;
  }

  #put32(v: number): void {
    const b = this.bytes;
    const at = this.#at;
    b[at] = v & 0xff;
    b[at + 1] = (v >>> 8) & 0xff;
    b[at + 2] = (v >>> 16) & 0xff;
    b[at + 3] = (v >>> 24) & 0xff;
    this.#at = at + 4;
  }

  /**
   * Copies `data` in as it is.
   * @throws RangeError when it runs past the buffer's end (TypedArray.set)
   */
  raw(data: Uint8Array): this {
    this.bytes.set(data, this.#at);
    this.#at += data.length;
    return this;
  }

  /** Leaves `n` zero bytes. */
  skip(n: number): this {
    this.#at += n;
    return this;
  }

  /**
   * The buffer, once exactly `bytes.length` bytes were written.
   * @throws Error when the encoder's size computation and its writes disagree (a bug, not input)
   */
  finish(): Uint8Array {
    if (this.#at !== this.bytes.length) {
      throw new Error(`ByteWriter: wrote ${this.#at} of ${this.bytes.length} bytes`);
    }
    return this.bytes;
  }
}
