/**
 * How much the bench measures: the full plan behind `npm run bench`, and the quick one the
 * end-to-end test uses (same code paths, few samples, small copies; its figures are not
 * meaningful, only present and finite).
 */

import type { MappingCopyPlan } from './mapping-copy.ts';
import type { MigrationPlan } from './migration-figures.ts';
import type { PairedPlan } from './paired-timing.ts';
import type { StartupPlan } from './serve-startup.ts';

/** How long each measurement of `bench` runs (quick or full). */
export interface BenchPlan {
  readonly quick: boolean;
  /** 8-byte REGION_READ against the 40-byte echo. */
  readonly roundTrip: PairedPlan;
  /** 1 MiB REGION_READ / REGION_WRITE against the echo of the same shapes. */
  readonly throughput: PairedPlan;
  readonly mapping: MappingCopyPlan;
  readonly startup: StartupPlan;
  /** 8-byte GPU RAM reads, tracer detached after a trace client vs never traced. */
  readonly traceIdle: PairedPlan;
  /** Live migration between two serve processes: downtime with a writer, stop-copy throughput. */
  readonly migration: MigrationPlan;
}

const MiB = 1024 * 1024;

/** `bench`: enough repetitions for stable medians. */
export const FULL_PLAN: BenchPlan = {
  quick: false,
  roundTrip: { warmup: 5000, rounds: 20, perRound: 2500 },
  throughput: { warmup: 100, rounds: 10, perRound: 200 },
  mapping: { bytes: 256 * MiB, chunkBytes: 16 * MiB, repetitions: 15 },
  startup: { runs: 5, settleMs: 250, timeoutMs: 30_000 },
  traceIdle: { warmup: 20, rounds: 10, perRound: 40 },
  migration: {
    downtimePopulate: 64 * MiB,
    hotPages: 16,
    downtimeRuns: 3,
    throughputPopulate: 1024 * MiB,
    throughputRuns: 3,
    memoryBudget: '4G',
  },
};

/** `bench --quick`: a few repetitions of each, to check the bench runs (its figures are rough). */
export const QUICK_PLAN: BenchPlan = {
  quick: true,
  roundTrip: { warmup: 100, rounds: 2, perRound: 200 },
  throughput: { warmup: 4, rounds: 2, perRound: 8 },
  mapping: { bytes: 16 * MiB, chunkBytes: 4 * MiB, repetitions: 2 },
  startup: { runs: 1, settleMs: 50, timeoutMs: 60_000 },
  traceIdle: { warmup: 2, rounds: 2, perRound: 2 },
  migration: {
    downtimePopulate: 8 * MiB,
    hotPages: 4,
    downtimeRuns: 1,
    throughputPopulate: 32 * MiB,
    throughputRuns: 1,
    memoryBudget: '1G',
  },
};
