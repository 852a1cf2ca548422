/**
 * One bench run (issue 4 item 7): every figure measured in this one process against floors
 * measured in the same run. Order: the peer child (vfio-user GPU + raw echo) for the round
 * trip, the 1 MiB transfers and the mapping; then fresh `serve` processes for start-up and RSS.
 * Throws only when something cannot be measured; missed targets are results.
 */
import { cpus, loadavg } from 'node:os';
import { type Placement, pinThisProcess } from './cpu-placement.ts';
import { EchoClient } from './echo-client.ts';
import { absoluteFigure, type Figure, ratioFigure } from './figures.ts';
import { BAR0, connectGpu, type GpuTarget } from './gpu-target.ts';
import { type MappingCopyResult, measureMappingCopy } from './mapping-copy.ts';
import { pairedLatencies, pairedThroughputs } from './paired-timing.ts';
import { type PeerProcess, startPeer } from './peer-process.ts';
import type { BenchPlan } from './plan.ts';
import { measureServeStartup, type StartupRun } from './serve-startup.ts';
import { type LatencySummary, maxOf, median, summarizeLatency } from './stats.ts';

const MiB = 1024 * 1024;

/**
 * What `bench --json` writes (schema vfio-nvlink2-bench/1): when, where (node, CPUs) and every
 * figure.
 */
export interface BenchResult {
  readonly schema: 'vfio-nvlink2-bench/1';
  readonly startedAt: string;
  readonly quick: boolean;
  readonly node: string;
  readonly cpus: number;
  /** 1/5/15-minute load averages when the run started and ended: how shared the machine was. */
  readonly load: { readonly start: number[]; readonly end: number[] };
  /** Where the bench and the peer ran during the wire and mapping figures. */
  readonly placement: Placement;
  readonly figures: Figure[];
  /** The measurements behind the figures. */
  readonly raw: {
    roundTrip: { floor: LatencySummary; server: LatencySummary };
    throughput: { readFloor: number[]; read: number[]; writeFloor: number[]; write: number[] };
    mapping: MappingCopyResult;
    startup: StartupRun[];
  };
}

/** Receives one progress message per step of the bench. */
export type Progress = (message: string) => void;

async function roundTripFigures(
  gpu: GpuTarget,
  echo: EchoClient,
  plan: BenchPlan,
): Promise<{ figures: Figure[]; floor: LatencySummary; server: LatencySummary }> {
  const samples = await pairedLatencies(
    { floor: () => echo.read(8), server: () => gpu.client.regionRead(BAR0, 0n, 8) },
    plan.roundTrip,
  );
  const floor = summarizeLatency(samples.floor);
  const server = summarizeLatency(samples.server);
  const common = {
    unit: 'µs',
    floorLabel: 'raw echo, 32-byte request / 40-byte reply, same processes and socket primitives',
    target: { kind: 'ratio-at-most', limit: 1.3 } as const,
    detail: `REGION_READ of 8 bytes at BAR0+0, ${server.samples} samples per side after ${plan.roundTrip.warmup} warm-up, ${plan.roundTrip.rounds} alternating rounds`,
  };
  return {
    floor,
    server,
    figures: [
      ratioFigure({
        ...common,
        id: 'region-read-8b-p50',
        label: '8-byte REGION_READ p50',
        value: server.p50Us,
        floor: floor.p50Us,
      }),
      ratioFigure({
        ...common,
        id: 'region-read-8b-p99',
        label: '8-byte REGION_READ p99',
        value: server.p99Us,
        floor: floor.p99Us,
      }),
    ],
  };
}

async function throughputFigures(gpu: GpuTarget, echo: EchoClient, plan: BenchPlan) {
  const data = new Uint8Array(MiB).fill(0x77);
  // Both sides receive into a buffer of their own, reused: the echo client into its stream's.
  const into = new Uint8Array(MiB);
  const reads = await pairedThroughputs(
    {
      floor: () => echo.read(MiB),
      server: () => gpu.client.regionRead(gpu.gpuRam, 0n, MiB, into),
    },
    plan.throughput,
    MiB,
  );
  const writes = await pairedThroughputs(
    { floor: () => echo.write(data), server: () => gpu.client.regionWrite(gpu.gpuRam, 0n, data) },
    plan.throughput,
    MiB,
  );
  const common = {
    unit: 'MiB/s',
    target: { kind: 'ratio-at-least', limit: 0.7 } as const,
    detail: `1 MiB at GPU RAM offset 0, one request at a time, best of ${plan.throughput.rounds} alternating rounds of ${plan.throughput.perRound}`,
  };
  const figures = [
    ratioFigure({
      ...common,
      id: 'region-read-1m',
      label: '1 MiB REGION_READ',
      value: maxOf(reads.server),
      floor: maxOf(reads.floor),
      floorLabel: 'raw echo, 32-byte request / 1 MiB + 32 reply',
    }),
    ratioFigure({
      ...common,
      id: 'region-write-1m',
      label: '1 MiB REGION_WRITE',
      value: maxOf(writes.server),
      floor: maxOf(writes.floor),
      floorLabel: 'raw echo, 1 MiB + 32 request / 32-byte reply',
    }),
  ];
  return {
    figures,
    raw: {
      readFloor: reads.floor,
      read: reads.server,
      writeFloor: writes.floor,
      write: writes.server,
    },
  };
}

function mappingFigures(
  gpu: GpuTarget,
  plan: BenchPlan,
): { figures: Figure[]; raw: MappingCopyResult } {
  const area = gpu.mapGpuRam().areas[0];
  const window = area?.mapping.windows[0];
  if (area === undefined || area.regionOffset !== 0n || window === undefined) {
    throw new Error('GPU RAM mapping has no window at region offset 0');
  }
  const raw = measureMappingCopy(window.bytes, plan.mapping);
  const mib = plan.mapping.bytes / MiB;
  const common = {
    unit: 'MiB/s',
    floor: raw.memcpy.best,
    floorLabel: `Buffer.copy of ${mib} MiB between two private buffers of the bench process`,
    target: { kind: 'ratio-at-least', limit: 0.95 } as const,
    detail: `${mib} MiB in ${plan.mapping.chunkBytes / MiB} MiB chunks, all pages pre-faulted on both sides, best of ${plan.mapping.repetitions} rotating repetitions`,
  };
  return {
    raw,
    figures: [
      ratioFigure({
        ...common,
        id: 'gpu-ram-map-in',
        label: 'GPU RAM mapping, copy in',
        value: raw.copyIn.best,
      }),
      ratioFigure({
        ...common,
        id: 'gpu-ram-map-out',
        label: 'GPU RAM mapping, copy out',
        value: raw.copyOut.best,
      }),
    ],
  };
}

function startupFigures(runs: readonly StartupRun[]): Figure[] {
  const bareNodeMs = median(runs.map((r) => r.bareNodeMs));
  const sockets = runs[0]?.sockets ?? 0;
  return [
    absoluteFigure({
      id: 'serve-startup',
      label: '`serve` start-up (6 GPUs)',
      unit: 'ms',
      value: median(runs.map((r) => r.ms)),
      target: { kind: 'value-at-most', limit: 300 },
      detail: `spawn to all ${sockets} sockets accepting, median of ${runs.length} runs (a bare node start to exit, measured before each: ${bareNodeMs.toFixed(0)} ms)`,
    }),
    absoluteFigure({
      id: 'serve-rss',
      label: '`serve` RSS, apertures untouched',
      unit: 'MB',
      value: median(runs.map((r) => r.rssMb)),
      target: { kind: 'value-at-most', limit: 80 },
      detail: `VmRSS in 10^6 bytes once every socket accepted, median of ${runs.length} runs`,
    }),
  ];
}

/** The figures that need the peer: round trips, 1 MiB transfers, the GPU RAM mapping. */
async function measureWithPeer(peer: PeerProcess, plan: BenchPlan, progress: Progress) {
  const echo = EchoClient.connect(peer.echo);
  try {
    const gpu = await connectGpu(peer.device);
    try {
      progress(`8-byte round trips against ${peer.address}`);
      const wire = await roundTripFigures(gpu, echo, plan);
      progress('1 MiB REGION_READ / REGION_WRITE');
      const bulk = await throughputFigures(gpu, echo, plan);
      progress(`GPU RAM mapping copies (${plan.mapping.bytes / MiB} MiB)`);
      const mapping = mappingFigures(gpu, plan);
      return { wire, bulk, mapping };
    } finally {
      gpu.close();
    }
  } finally {
    echo.close();
  }
}

/**
 * Runs every measurement of `plan`; `pin` puts the bench and its peer on one CPU for the wire
 * and mapping figures (cpu-placement.ts). @throws Error when a figure cannot be measured.
 */
export async function runBench(
  plan: BenchPlan,
  progress: Progress,
  pin = true,
): Promise<BenchResult> {
  const startedAt = new Date().toISOString();
  const loadAtStart = loadavg();
  const pinning = pinThisProcess(pin);
  let peerFigures: Awaited<ReturnType<typeof measureWithPeer>>;
  try {
    progress('starting the peer (vfio-user GPU + raw echo)');
    const peer = await startPeer(pinning.placement);
    try {
      peerFigures = await measureWithPeer(peer, plan, progress);
    } finally {
      await peer.stop();
    }
  } finally {
    pinning.restore();
  }
  const { wire, bulk, mapping } = peerFigures;
  progress(`serve start-up, ${plan.startup.runs} run(s)`);
  const startup = await measureServeStartup(plan.startup, (n) =>
    progress(`serve start-up run ${n}/${plan.startup.runs} done`),
  );
  return {
    schema: 'vfio-nvlink2-bench/1',
    startedAt,
    quick: plan.quick,
    node: process.version,
    cpus: cpus().length,
    load: { start: loadAtStart, end: loadavg() },
    placement: pinning.placement,
    figures: [...wire.figures, ...bulk.figures, ...mapping.figures, ...startupFigures(startup)],
    raw: {
      roundTrip: { floor: wire.floor, server: wire.server },
      throughput: bulk.raw,
      mapping: mapping.raw,
      startup,
    },
  };
}
