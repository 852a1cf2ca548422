/**
 * GPU RAM through the client's mapping against memcpy in private memory. The mapping is the
 * MAP_SHARED window of the GPU RAM memfd the server handed out with GET_REGION_INFO (what a VMM
 * maps as guest RAM); the baseline is a Buffer.copy of the same size between two private
 * buffers of this process. Every buffer — both private ones and the mapped range — is written
 * once before timing, so all pages are resident and no side pays for page faults: this compares
 * warm memory bandwidth, private anonymous pages against shmem pages of another process.
 * Copies go in identical chunks on both sides; the three kinds take turns, their order rotating per repetition. The
 * figure is the best repetition of each kind: on a shared 2-core machine other load only ever
 * slows a copy down, so the best is the steadiest estimate of what the memory can do (the
 * medians are kept alongside).
 */
import { maxOf, median, mibPerSecond, nowNs } from './stats.ts';

/**
 * How much the mapping-copy figure copies: bytes per repetition, bytes per Buffer.copy call,
 * repetitions.
 */
export interface MappingCopyPlan {
  /** Bytes copied per repetition (the mapped range used, from offset 0). */
  readonly bytes: number;
  /** Chunk of each Buffer.copy call. */
  readonly chunkBytes: number;
  readonly repetitions: number;
}

/** MiB/s of one kind of copy over the repetitions. */
export interface CopyRate {
  readonly best: number;
  readonly median: number;
}

/**
 * Copy rates into and out of a mapped GPU RAM region, against private-to-private memcpy (the
 * floor).
 */
export interface MappingCopyResult {
  /** Private to private (the floor). */
  readonly memcpy: CopyRate;
  /** Private buffer into the mapping. */
  readonly copyIn: CopyRate;
  /** Mapping out to a private buffer. */
  readonly copyOut: CopyRate;
}

function rate(samples: readonly number[]): CopyRate {
  return { best: maxOf(samples), median: median(samples) };
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
  const runs: Record<keyof MappingCopyResult, [from: Buffer, to: Buffer, samples: number[]]> = {
    memcpy: [source, target, []],
    copyIn: [source, shared, []],
    copyOut: [shared, target, []],
  };
  const kinds = Object.keys(runs) as (keyof MappingCopyResult)[];
  for (let rep = 0; rep < plan.repetitions; rep++) {
    for (let k = 0; k < kinds.length; k++) {
      const [from, to, samples] = runs[kinds[(rep + k) % kinds.length]!];
      samples.push(timed(plan.bytes, () => copyChunked(from, to, plan.chunkBytes)));
    }
  }
  return {
    memcpy: rate(runs.memcpy[2]),
    copyIn: rate(runs.copyIn[2]),
    copyOut: rate(runs.copyOut[2]),
  };
}
