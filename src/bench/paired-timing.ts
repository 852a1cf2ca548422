/**
 * Timing server operations against their floors in the same run: the sides (floors, our
 * server, a reference server) are measured in interleaved rounds whose order rotates and
 * reverses from round to round, so that drift on a noisy 2-core machine (frequency, a
 * neighbour's burst, GC) lands on every side instead of skewing a ratio. Every round starts
 * after the warm-up, which runs every side first.
 */
import { mibPerSecond, nowNs } from './stats.ts';

/** One asynchronous operation (a round trip) per side, by name. */
export type Operations<K extends string> = Readonly<Record<K, () => Promise<unknown>>>;

/**
 * How a paired timing runs: warm-up operations per side, alternating rounds, operations per side
 * per round.
 */
export interface PairedPlan {
  /** Operations per side before anything is recorded. */
  readonly warmup: number;
  /** Interleaved rounds; each side runs `perRound` operations per round. */
  readonly rounds: number;
  readonly perRound: number;
}

/** Samples per side. */
export type Samples<K extends string> = Record<K, number[]>;

/** The sides' order in `round`: rotated by the round, reversed on odd rounds. */
export function orderOf<K>(sides: readonly K[], round: number): K[] {
  const n = sides.length;
  const rotated = sides.map((_, i) => sides[(i + round) % n] as K);
  return round % 2 === 0 ? rotated : rotated.reverse();
}

async function repeat(op: () => Promise<unknown>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await op();
}

function sidesOf<K extends string>(ops: Operations<K>): K[] {
  return Object.keys(ops) as K[];
}

function emptySamples<K extends string>(sides: readonly K[]): Samples<K> {
  return Object.fromEntries(sides.map((s) => [s, []])) as unknown as Samples<K>;
}

/** Latency of every operation, in nanoseconds, per side. */
export async function pairedLatencies<K extends string>(
  ops: Operations<K>,
  plan: PairedPlan,
): Promise<Samples<K>> {
  const sides = sidesOf(ops);
  for (const side of sides) await repeat(ops[side], plan.warmup);
  const out = emptySamples(sides);
  for (let round = 0; round < plan.rounds; round++) {
    for (const side of orderOf(sides, round)) {
      const op = ops[side];
      const samples = out[side];
      for (let i = 0; i < plan.perRound; i++) {
        const t0 = nowNs();
        await op();
        samples.push(nowNs() - t0);
      }
    }
  }
  return out;
}

/** Throughput of each round, in MiB/s, per side, for operations moving `bytesPerOp` each. */
export async function pairedThroughputs<K extends string>(
  ops: Operations<K>,
  plan: PairedPlan,
  bytesPerOp: number,
): Promise<Samples<K>> {
  const sides = sidesOf(ops);
  for (const side of sides) await repeat(ops[side], plan.warmup);
  const out = emptySamples(sides);
  for (let round = 0; round < plan.rounds; round++) {
    for (const side of orderOf(sides, round)) {
      const t0 = nowNs();
      await repeat(ops[side], plan.perRound);
      out[side].push(mibPerSecond(bytesPerOp * plan.perRound, nowNs() - t0));
    }
  }
  return out;
}
