/**
 * Canaries: GPU RAM (region 9 of every GPU) written with a seeded pattern before the run, at
 * offsets no fuzz write may reach, and read back afterwards through a second connection. A
 * change means some message wrote outside what it addressed. The guard keeps the fuzzer's own
 * writes away: it reads each frame as the server's framer would (header, then the access
 * head; for a frame whose size field is shorter than its bytes, the rest as the next frame)
 * and moves any REGION_WRITE or REGION_WRITE_MULTI entry that would touch the canary span.
 */
import { Command } from '../vfio-user/index.ts';
import type { Canary } from './plan.ts';
import { Random } from './random.ts';
import { getU32, getU64, HEADER_BYTES, readHeader, setU64, TYPE_COMMAND } from './wire.ts';

/** GPU RAM's region index on the built-in platform (the first device-specific region). */
export const GPU_RAM_REGION = 9;
/** The span the canaries live in, and that no fuzz write may touch: [1 GiB, 1 GiB + 1 MiB). */
export const CANARY_START = 1n << 30n;
/** The end (exclusive) of the canary span: 1 MiB after CANARY_START. */
export const CANARY_END = CANARY_START + (1n << 20n);
const CANARY_SPANS = 4;
const CANARY_BYTES = 4096;

/** Where a guarded write goes instead: its offset modulo this (far below CANARY_START). */
const REDIRECT_MASK = (1n << 23n) - 1n;

/** The canaries of one GPU, from the run's seed and the GPU's index. */
export function canariesFor(seed: number, device: number): Canary[] {
  const rng = new Random(seed, 0x0ca9a000 + device);
  return Array.from({ length: CANARY_SPANS }, (_, k) => ({
    offset: CANARY_START + (BigInt(k) * (CANARY_END - CANARY_START)) / BigInt(CANARY_SPANS),
    bytes: rng.bytes(CANARY_BYTES),
  }));
}

function touchesCanaries(offset: bigint, length: bigint): boolean {
  const end = offset + (length > 0n ? length : 1n);
  return offset < CANARY_END && end > CANARY_START;
}

/**
 * Rewrites, in place, every GPU RAM write in `bytes` (one frame as sent, possibly a misframed
 * one) that would reach the canaries. Returns how many were moved.
 */
export function guardFrame(bytes: Uint8Array): number {
  let moved = 0;
  let at = 0;
  // A frame whose size is short of its bytes leaves the rest to be read as further frames.
  while (bytes.length - at >= HEADER_BYTES) {
    const h = readHeader(bytes, at);
    if (h.size < HEADER_BYTES || (h.flags & 0xf) !== TYPE_COMMAND) break;
    const body = bytes.subarray(at + HEADER_BYTES, Math.min(bytes.length, at + h.size));
    const dataBytes = BigInt(h.size - HEADER_BYTES - 16);
    if (h.command === Command.REGION_WRITE && body.length >= 16) {
      const count = BigInt(getU32(body, 12));
      const length = count > dataBytes ? count : dataBytes;
      if (getU32(body, 8) === GPU_RAM_REGION && touchesCanaries(getU64(body, 0), length)) {
        setU64(body, 0, getU64(body, 0) & REDIRECT_MASK);
        moved++;
      }
    }
    if (h.command === Command.REGION_WRITE_MULTI) {
      for (let e = 8; e + 16 <= body.length; e += 24) {
        if (getU32(body, e + 8) !== GPU_RAM_REGION) continue;
        const count = BigInt(getU32(body, e + 12));
        if (touchesCanaries(getU64(body, e), count > 8n ? count : 8n)) {
          setU64(body, e, getU64(body, e) & REDIRECT_MASK);
          moved++;
        }
      }
    }
    if (h.size >= bytes.length - at) break;
    at += h.size;
  }
  return moved;
}
