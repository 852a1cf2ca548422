/**
 * The values a fuzzer tries first: edges of integer widths, powers of two and their
 * neighbours, the protocol's own sizes (16-byte header, 1 MiB transfers), and offsets chosen
 * against a region's size so that offset + count lands just inside, on, or past its end, or
 * wraps past 2^64.
 */
import type { Random } from './random.ts';

const MiB = 1 << 20;

/**
 * u32 values at the edges (0, 1, powers of two and their neighbours, the maximum) that fields are
 * drawn from.
 */
export const U32_EDGES: readonly number[] = [
  0,
  1,
  2,
  3,
  4,
  7,
  8,
  15,
  16,
  17,
  20,
  23,
  24,
  31,
  32,
  33,
  40,
  63,
  64,
  80,
  0x7f,
  0x80,
  0xff,
  0x100,
  0x3ff,
  0x400,
  0xfff,
  0x1000,
  0x1001,
  0xffff,
  0x10000,
  0xfffff,
  MiB,
  MiB + 1,
  MiB + 16,
  MiB + 32,
  0x7fffffff,
  0x80000000,
  0xfffffff0,
  0xfffffffe,
  0xffffffff,
];

/** u64 values at the edges (0, page and power-of-two neighbours, off_t's limit, the maximum). */
export const U64_EDGES: readonly bigint[] = [
  0n,
  1n,
  7n,
  8n,
  0xfffn,
  0x1000n,
  0xffffffffn,
  0x100000000n,
  1n << 34n,
  1n << 37n,
  1n << 40n,
  1n << 47n,
  (1n << 63n) - 1n,
  1n << 63n,
  (1n << 64n) - 0x100000n,
  (1n << 64n) - 0x1000n,
  (1n << 64n) - 8n,
  (1n << 64n) - 1n,
];

/** A u32 from the edges, or uniform. */
export function edgeU32(rng: Random): number {
  return rng.chance(0.8) ? rng.pick(U32_EDGES) : rng.u32();
}

/** A u64 from the edges, an edge ± a little, or uniform. */
export function edgeU64(rng: Random): bigint {
  const x = rng.u32() % 10;
  if (x < 6) return rng.pick(U64_EDGES);
  if (x < 8) return BigInt.asUintN(64, rng.pick(U64_EDGES) + BigInt(rng.int(-64, 64)));
  return rng.u64();
}

/** Bytes of most region accesses are few; some are large, a few exactly the 1 MiB limit. */
export function accessCount(rng: Random, max: number): number {
  return rng.weighted<() => number>([
    [45, () => rng.pick([1, 2, 4, 8])],
    [3, () => 0],
    [30, () => rng.int(1, 256)],
    [12, () => rng.int(257, 16384)],
    [5, () => rng.int(16385, 131072)],
    [1, () => rng.int(131073, max)],
    [1, () => max],
    [3, () => rng.pick([3, 5, 6, 7, 9, 4095, 4097, 16383, 16384, 16385])],
  ])();
}

/** The window of each region the fuzzer writes and reads most (bounds the memory it touches). */
export const HOT_BYTES = 8n * BigInt(MiB);

/**
 * An offset into a region of `size` bytes for an access of `count`: mostly inside the hot
 * window, else at or around the end, at a power of two, wrapping 2^64 with the count, or any.
 */
export function regionOffset(rng: Random, size: bigint, count: number): bigint {
  const hot = size > 0n && size < HOT_BYTES ? size : HOT_BYTES;
  const n = BigInt(count);
  return rng.weighted<() => bigint>([
    [55, () => BigInt(rng.below(Number(hot))) & ~BigInt(rng.pick([0, 0, 1, 3, 7, 4095]))],
    [10, () => BigInt.asUintN(64, size - n + BigInt(rng.int(-8, 8)))],
    [5, () => BigInt.asUintN(64, size + BigInt(rng.int(-2, 64)))],
    [5, () => BigInt.asUintN(64, (1n << BigInt(rng.int(12, 40))) + BigInt(rng.int(-8, 8)))],
    [10, () => BigInt.asUintN(64, -n + BigInt(rng.int(-4, 4)))],
    [10, () => edgeU64(rng)],
    [5, () => rng.u64()],
  ])();
}
