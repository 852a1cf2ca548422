/**
 * The server-only dirty tracking of memory a client maps (issue 8.3): a digest of each page's
 * bytes as they were sent; a page whose digest differs at the next pass changed since (or was
 * never sent) and is sent again. Needs nothing from the client and sees every writer (mappings
 * of any process, our own writes, DMA). The digest is XXH64 (native/digest.c, several GB/s:
 * stop-copy digests again every page pre-copy sent, inside the downtime); a change goes unseen
 * only if the page's new contents collide with the old in 64 bits.
 */
import { pageDigests } from '../native/index.ts';

/** Bytes of one tracked page: the POWER host's 64 KiB page (gpu-ram-region POWER_PAGE_SIZE). */
export const TRACK_PAGE = 0x10000;

/** The XXH64 of each TRACK_PAGE piece of `bytes` (the last may be shorter), in order. */
export function pageDigest(bytes: Uint8Array): bigint[] {
  const pieces = Math.ceil(bytes.length / TRACK_PAGE);
  const out = new Uint8Array(pieces * 8);
  pageDigests(bytes, TRACK_PAGE, out);
  const v = new DataView(out.buffer);
  return Array.from({ length: pieces }, (_, i) => v.getBigUint64(i * 8, true));
}
