/**
 * The fuzzer's seeded random numbers: sfc32 (Chris Doty-Humphrey's Small Fast Counting PRNG,
 * as in PractRand) seeded through splitmix32, so one seed and one stream number always give
 * the same sequence. Each lane of the fuzzer draws from its own stream: what a lane sends
 * never depends on how the lanes interleave in time.
 */

/** splitmix32 step: a well-mixed 32-bit value from a counter. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A seeded sfc32 stream, as the module header describes: integers, picks, chances, bytes. */
export class Random {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** The generator for `seed` (any u32) and `stream` (lane number, purpose...). */
  constructor(seed: number, stream = 0) {
    const st = { s: (seed ^ Math.imul(stream + 1, 0x632be5ab)) | 0 };
    this.#a = splitmix32(st);
    this.#b = splitmix32(st);
    this.#c = splitmix32(st);
    this.#d = splitmix32(st) | 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniform u32. */
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** A uniform u64. */
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  /** An integer in [0, n) for 0 < n ≤ 2^32 (float scaling: bias below 2^-20 for our n). */
  below(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.below(items.length)]!;
  }

  /** One of `choices` with probability proportional to its weight. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of choices) total += w;
    let x = (this.u32() / 0x1_0000_0000) * total;
    for (const [w, v] of choices) {
      if (x < w) return v;
      x -= w;
    }
    return choices[choices.length - 1]![1];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    this.fill(out);
    return out;
  }

  /**
   * Fills `into`: fully random up to 4 KiB, beyond that a random 4 KiB block repeated with a
   * random byte per block (large bodies cost the generator nothing, yet no two blocks match).
   */
  fill(into: Uint8Array): void {
    const head = Math.min(into.length, 4096);
    for (let i = 0; i < head; i += 4) {
      const v = this.u32();
      into[i] = v & 0xff;
      if (i + 1 < head) into[i + 1] = (v >>> 8) & 0xff;
      if (i + 2 < head) into[i + 2] = (v >>> 16) & 0xff;
      if (i + 3 < head) into[i + 3] = v >>> 24;
    }
    for (let at = head; at < into.length; at += 4096) {
      const n = Math.min(4096, into.length - at);
      into.copyWithin(at, 0, n);
      into[at] = this.u32() & 0xff;
    }
  }
}
