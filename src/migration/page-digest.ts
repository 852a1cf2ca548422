/**
 * The server-only dirty tracking of memory a client maps (issue 8.3): a digest of each page's
 * bytes as they were sent; a page whose digest differs at the next pass changed since (or was
 * never sent) and is sent again. Needs nothing from the client, sees every writer (mappings,
 * our own writes, DMA), and is exact up to SHA-256 collisions.
 */
import { createHash } from 'node:crypto';

/** Bytes of one tracked page: the POWER host's 64 KiB page (gpu-ram-region POWER_PAGE_SIZE). */
export const TRACK_PAGE = 0x10000;

/** SHA-256 of `bytes` (one page, or its last partial piece). */
export function pageDigest(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** Whether two digests are the same bytes. */
export function sameDigest(a: Buffer | undefined, b: Buffer): boolean {
  return a?.equals(b) === true;
}
