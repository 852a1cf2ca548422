/**
 * Timing a server operation against its floor in the same run: the two are measured in
 * alternating rounds (floor, server, then server, floor, ...) so that drift on a noisy 2-core
 * machine (frequency, a neighbour's burst, GC) lands on both sides instead of skewing the ratio.
 * Every round starts after the warm-up, which runs both sides first.
 */
import { mibPerSecond, nowNs } from './stats.ts';

/** One asynchronous operation (a round trip) and its floor counterpart. */
export interface OperationPair {
  readonly floor: () => Promise<unknown>;
  readonly server: () => Promise<unknown>;
}

/**
 * How a paired timing runs: warm-up operations per side, alternating rounds, operations per side
 * per round.
 */
export interface PairedPlan {
  /** Operations per side before anything is recorded. */
  readonly warmup: number;
  /** Alternating rounds; each side runs `perRound` operations per round. */
  readonly rounds: number;
  readonly perRound: number;
}

/** Per-operation times (ns) of the floor and of the server, one sample per operation recorded. */
export interface PairedSamples {
  readonly floor: number[];
  readonly server: number[];
}

type Side = keyof PairedSamples;

function orderOf(round: number): [Side, Side] {
  return round % 2 === 0 ? ['floor', 'server'] : ['server', 'floor'];
}

async function repeat(op: () => Promise<unknown>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await op();
}

/** Latency of every operation, in nanoseconds, per side. */
export async function pairedLatencies(
  pair: OperationPair,
  plan: PairedPlan,
): Promise<PairedSamples> {
  await repeat(pair.floor, plan.warmup);
  await repeat(pair.server, plan.warmup);
  const out: PairedSamples = { floor: [], server: [] };
  for (let round = 0; round < plan.rounds; round++) {
    for (const side of orderOf(round)) {
      const op = pair[side];
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
export async function pairedThroughputs(
  pair: OperationPair,
  plan: PairedPlan,
  bytesPerOp: number,
): Promise<PairedSamples> {
  await repeat(pair.floor, plan.warmup);
  await repeat(pair.server, plan.warmup);
  const out: PairedSamples = { floor: [], server: [] };
  for (let round = 0; round < plan.rounds; round++) {
    for (const side of orderOf(round)) {
      const t0 = nowNs();
      await repeat(pair[side], plan.perRound);
      out[side].push(mibPerSecond(bytesPerOp * plan.perRound, nowNs() - t0));
    }
  }
  return out;
}
