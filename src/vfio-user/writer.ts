/**
 * A little-endian write cursor over a buffer of known size (encoders compute the size first).
 * It knows integers and byte runs, nothing of messages. No shared module-level instance:
 * every encode allocates its own.
 */
export class ByteWriter {
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.#view = new DataView(this.bytes.buffer);
  }

  u16(v: number): this {
    this.#view.setUint16(this.#at, v, true);
    this.#at += 2;
    return this;
  }

  u32(v: number): this {
    this.#view.setUint32(this.#at, v >>> 0, true);
    this.#at += 4;
    return this;
  }

  u64(v: bigint): this {
    this.#view.setBigUint64(this.#at, BigInt.asUintN(64, v), true);
    this.#at += 8;
    return this;
  }

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

  /** The buffer; throws if the encoder's size computation and its writes disagree. */
  finish(): Uint8Array {
    if (this.#at !== this.bytes.length) {
      throw new Error(`ByteWriter: wrote ${this.#at} of ${this.bytes.length} bytes`);
    }
    return this.bytes;
  }
}
