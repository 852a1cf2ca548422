/**
 * Gathered buffers of one outgoing message: what remains after a partial sendmsg(2). Shared by
 * the transport and the bench's raw-echo floor, so both resume partial sends the same way.
 */

/** `parts` without their first `n` bytes (no copies: views into the same buffers). */
export function skipBytes(parts: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let left = n;
  for (const p of parts) {
    if (left >= p.length) {
      left -= p.length;
      continue;
    }
    out.push(left > 0 ? p.subarray(left) : p);
    left = 0;
  }
  return out;
}
