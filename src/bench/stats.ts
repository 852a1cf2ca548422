/**
 * Summaries of timing samples for the benchmark: percentiles over latency samples (nearest
 * rank, so p99 is a sample that really happened) and the median of repeated runs. Pure.
 */

/** Latency percentiles of one measured series, in microseconds. */
export interface LatencySummary {
  readonly samples: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
}

/**
 * The `p`-th percentile (0 < p ≤ 100) of `sorted` (ascending) by nearest rank.
 * @throws RangeError for an empty series.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of an empty series');
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/**
 * The median of `values` (mean of the two middle ones for an even count).
 * @throws RangeError for an empty series.
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty series');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * The largest of `values`, by a loop: `Math.max(...values)` overflows the stack past ~125,000.
 * @throws RangeError for an empty series.
 */
export function maxOf(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('maximum of an empty series');
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  return max;
}

/** Percentiles of latency samples given in nanoseconds. */
export function summarizeLatency(samplesNs: readonly number[]): LatencySummary {
  const sorted = [...samplesNs].sort((a, b) => a - b);
  const total = sorted.reduce((n, v) => n + v, 0);
  return {
    samples: sorted.length,
    p50Us: percentile(sorted, 50) / 1000,
    p99Us: percentile(sorted, 99) / 1000,
    meanUs: total / sorted.length / 1000,
  };
}

/** MiB/s for `bytes` moved in `ns` nanoseconds. */
export function mibPerSecond(bytes: number, ns: number): number {
  return bytes / (1024 * 1024) / (ns / 1e9);
}

/** Nanoseconds on the monotonic clock, as a number (safe for ~104 days of uptime). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}
