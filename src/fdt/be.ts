/**
 * Big-endian cells read and written byte by byte, without a DataView: a DataView needs the
 * value's ArrayBuffer, and asking a small Uint8Array (V8 keeps those ≤ 64 bytes inside the
 * heap) for its buffer moves its bytes out to a new off-heap allocation. Building and reading
 * the built-in platform's ~1,000 properties that way was a tenth of a restart's tree work
 * (issue 8: restart to accepting).
 */

/** The big-endian u32 at `at` of `bytes` (the caller has checked `at + 4 <= length`). */
export function be32At(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] as number) * 0x1000000 +
      (((bytes[at + 1] as number) << 16) |
        ((bytes[at + 2] as number) << 8) |
        (bytes[at + 3] as number))) >>>
    0
  );
}

/** Every whole big-endian u32 cell of `bytes`, in order (a trailing partial cell is left out). */
export function be32Cells(bytes: Uint8Array): number[] {
  return Array.from({ length: Math.floor(bytes.length / 4) }, (_, i) => be32At(bytes, i * 4));
}

/** The big-endian u64 at `at` of `bytes` (the caller has checked `at + 8 <= length`). */
export function be64At(bytes: Uint8Array, at: number): bigint {
  return (BigInt(be32At(bytes, at)) << 32n) | BigInt(be32At(bytes, at + 4));
}

/** Writes `value` (taken mod 2^32) big-endian at `at` of `bytes`. */
export function setBe32At(bytes: Uint8Array, at: number, value: number): void {
  const v = value >>> 0;
  bytes[at] = v >>> 24;
  bytes[at + 1] = (v >>> 16) & 0xff;
  bytes[at + 2] = (v >>> 8) & 0xff;
  bytes[at + 3] = v & 0xff;
}

/** Writes `value` (taken mod 2^64) big-endian at `at` of `bytes`. */
export function setBe64At(bytes: Uint8Array, at: number, value: bigint): void {
  const v = BigInt.asUintN(64, value);
  setBe32At(bytes, at, Number(v >> 32n));
  setBe32At(bytes, at + 4, Number(v & 0xffffffffn));
}
