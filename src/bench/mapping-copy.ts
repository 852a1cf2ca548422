/**
 * GPU RAM through the client's mapping against memcpy in private memory. The mapping is the
 * MAP_SHARED window of the GPU RAM memfd the server handed out with GET_REGION_INFO (what a VMM
 * maps as guest RAM); the baseline is a Buffer.copy of the same size between two private
 * buffers of this process. Every buffer — both private ones and the mapped range — is written
 * once before timing, so all pages are resident and no side pays for page faults: this compares
 * warm memory bandwidth, private anonymous pages against shmem pages of another process.
 * Copies go in identical chunks on both sides; the three kinds alternate per repetition and
 * the median of each is reported.
 */
import { median, mibPerSecond, nowNs } from './stats.ts';

export interface MappingCopyPlan {
  /** Bytes copied per repetition (the mapped range used, from offset 0). */
  readonly bytes: number;
  /** Chunk of each Buffer.copy call. */
  readonly chunkBytes: number;
  readonly repetitions: number;
}

export interface MappingCopyResult {
  /** MiB/s, medians over the repetitions. */
  readonly memcpy: number;
  readonly copyIn: number;
  readonly copyOut: number;
}

function copyChunked(from: Buffer, to: Buffer, chunk: number): void {
  for (let at = 0; at < from.length; at += chunk) {
    from.copy(to, at, at, Math.min(from.length, at + chunk));
  }
}

function timed(bytes: number, run: () => void): number {
  const t0 = nowNs();
  run();
  return mibPerSecond(bytes, nowNs() - t0);
}

/**
 * Times copies into and out of `mapped` (at least `plan.bytes` long) against private memcpy.
 * @throws RangeError when the mapped view is shorter than the plan.
 */
export function measureMappingCopy(mapped: Uint8Array, plan: MappingCopyPlan): MappingCopyResult {
  if (mapped.length < plan.bytes) {
    throw new RangeError(`mapped view of ${mapped.length} bytes is under the plan's ${plan.bytes}`);
  }
  const shared = Buffer.from(mapped.buffer, mapped.byteOffset, plan.bytes);
  const source = Buffer.allocUnsafe(plan.bytes).fill(0x5a);
  const target = Buffer.allocUnsafe(plan.bytes).fill(0);
  shared.fill(0x3c);
  const memcpy: number[] = [];
  const copyIn: number[] = [];
  const copyOut: number[] = [];
  for (let rep = 0; rep < plan.repetitions; rep++) {
    memcpy.push(timed(plan.bytes, () => copyChunked(source, target, plan.chunkBytes)));
    copyIn.push(timed(plan.bytes, () => copyChunked(source, shared, plan.chunkBytes)));
    copyOut.push(timed(plan.bytes, () => copyChunked(shared, target, plan.chunkBytes)));
  }
  return { memcpy: median(memcpy), copyIn: median(copyIn), copyOut: median(copyOut) };
}
