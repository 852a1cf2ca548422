/**
 * One bench run (issue 4 item 7): every figure measured in this one process against floors
 * measured in the same run. Order: the peer child (vfio-user GPU + raw echo) for the round
 * trip, the 1 MiB transfers and the mapping; then fresh `serve` processes for start-up and RSS.
 * Throws only when something cannot be measured; missed targets are results.
 */
import { cpus, loadavg } from 'node:os';
import { USEMEM_REGION_INDEX } from '../nvgrace/index.ts';
import { VfioUserClient } from '../vfio-user/index.ts';
import { type Placement, pinThisProcess } from './cpu-placement.ts';
import { EchoClient } from './echo-client.ts';
import { absoluteFigure, type Figure, ratioFigure } from './figures.ts';
import { type FloorProcess, startEchoFloor, startLvuGpio } from './floor-processes.ts';
import { CONFIG, connectGpu, type GpuTarget } from './gpu-target.ts';
import { type MappingCopyResult, measureMappingCopy } from './mapping-copy.ts';
import { type MigrationResult, measureMigration, migrationFigures } from './migration-figures.ts';
import { pairedLatencies, pairedThroughputs } from './paired-timing.ts';
import { type PeerProcess, startPeer } from './peer-process.ts';
import type { BenchPlan } from './plan.ts';
import { measureServeRestart, type RestartResult } from './serve-restart.ts';
import { measureServeStartup, type StartupRun } from './serve-startup.ts';
import { type LatencySummary, maxOf, median, summarizeLatency } from './stats.ts';
import { measureTraceIdle, READS_PER_OP, type TraceIdleResult } from './trace-idle.ts';

const MiB = 1024 * 1024;

/**
 * What `bench --json` writes (schema vfio-nvlink2-bench/1): when, where (node, CPUs) and every
 * figure.
 */
export interface BenchResult {
  readonly schema: 'vfio-nvlink2-bench/2';
  readonly startedAt: string;
  readonly quick: boolean;
  readonly node: string;
  readonly cpus: number;
  /** 1/5/15-minute load averages when the run started and ended: how shared the machine was. */
  readonly load: { readonly start: number[]; readonly end: number[] };
  /** Where the bench and the peer ran during the wire and mapping figures. */
  readonly placement: Placement;
  /** The libvfio-user sample measured beside ours (LVU_GPIO), if any. */
  readonly lvuGpio: string | null;
  readonly figures: Figure[];
  /** The measurements behind the figures. */
  readonly raw: {
    roundTrip: {
      cFloor: LatencySummary;
      nodeFloor: LatencySummary;
      server: LatencySummary;
      lvu: LatencySummary | null;
    };
    throughput: {
      readCFloor: number[];
      readNodeFloor: number[];
      read: number[];
      writeCFloor: number[];
      writeNodeFloor: number[];
      write: number[];
    };
    mapping: MappingCopyResult;
    usemem: MappingCopyResult;
    startup: StartupRun[];
    restart: RestartResult;
    traceIdle: TraceIdleResult;
    migration: MigrationResult;
  };
}

/** Receives one progress message per step of the bench. */
export type Progress = (message: string) => void;

/** What the wire figures talk to: the two echo floors, our GPU, maybe libvfio-user's sample. */
interface WireEnds {
  readonly gpu: GpuTarget;
  readonly cEcho: EchoClient;
  readonly nodeEcho: EchoClient;
  readonly lvu: VfioUserClient | null;
}

const C_FLOOR =
  'the C echo (native/echo-floor.c), 32-byte request / 36-byte reply, own process on the same CPU';
const NODE_FLOOR =
  "the Node echo in the server's process, same socket primitives, 32-byte request / 36-byte reply";

async function roundTripFigures(ends: WireEnds, plan: BenchPlan) {
  const { gpu, cEcho, nodeEcho, lvu } = ends;
  const ops = {
    cFloor: () => cEcho.read(4),
    nodeFloor: () => nodeEcho.read(4),
    server: () => gpu.client.regionRead(CONFIG, 0n, 4),
  };
  const samples =
    lvu === null
      ? await pairedLatencies(ops, plan.roundTrip)
      : await pairedLatencies({ ...ops, lvu: () => lvu.regionRead(CONFIG, 0n, 4) }, plan.roundTrip);
  const cFloor = summarizeLatency(samples.cFloor);
  const nodeFloor = summarizeLatency(samples.nodeFloor);
  const server = summarizeLatency(samples.server);
  const lvuSamples = 'lvu' in samples ? (samples.lvu as number[]) : null;
  const lvuSummary = lvuSamples === null ? null : summarizeLatency(lvuSamples);
  const sides = lvu === null ? 3 : 4;
  const common = {
    unit: 'µs',
    detail: `REGION_READ of 4 bytes of config space (region 7, offset 0), ${server.samples} samples per side after ${plan.roundTrip.warmup} warm-up, ${plan.roundTrip.rounds} interleaved rounds over ${sides} sides`,
  };
  const p50 = { ...common, label: '4-byte config REGION_READ p50', value: server.p50Us };
  const p99 = { ...common, label: '4-byte config REGION_READ p99', value: server.p99Us };
  const figures = [
    ratioFigure({
      ...p50,
      id: 'config-read-4b-p50',
      floor: cFloor.p50Us,
      floorLabel: C_FLOOR,
      target: { kind: 'ratio-at-most', limit: 1.1 },
    }),
    ratioFigure({
      ...p99,
      id: 'config-read-4b-p99',
      floor: cFloor.p99Us,
      floorLabel: C_FLOOR,
      target: { kind: 'ratio-at-most', limit: 1.3 },
    }),
    ratioFigure({
      ...p50,
      id: 'config-read-4b-p50-node',
      label: `${p50.label} (Node floor)`,
      floor: nodeFloor.p50Us,
      floorLabel: NODE_FLOOR,
      target: { kind: 'ratio-at-most', limit: 1.3 },
    }),
    ratioFigure({
      ...p99,
      id: 'config-read-4b-p99-node',
      label: `${p99.label} (Node floor)`,
      floor: nodeFloor.p99Us,
      floorLabel: NODE_FLOOR,
      target: { kind: 'ratio-at-most', limit: 1.3 },
    }),
  ];
  if (lvuSummary !== null) {
    figures.push(
      ratioFigure({
        ...p50,
        id: 'config-read-4b-p50-lvu',
        label: `${p50.label} (libvfio-user)`,
        floor: lvuSummary.p50Us,
        floorLabel: `libvfio-user's gpio-pci-idio-16 sample (LVU_GPIO), the same client and CPU, REGION_READ of its config space`,
        target: { kind: 'ratio-at-most', limit: 1.0 },
      }),
    );
  }
  return { figures, cFloor, nodeFloor, server, lvu: lvuSummary };
}

async function throughputFigures(ends: WireEnds, plan: BenchPlan) {
  const { gpu, cEcho, nodeEcho } = ends;
  const data = new Uint8Array(MiB).fill(0x77);
  // Every side receives into a buffer of its own, reused: the echo clients into their stream's.
  const into = new Uint8Array(MiB);
  const reads = await pairedThroughputs(
    {
      cFloor: () => cEcho.read(MiB),
      nodeFloor: () => nodeEcho.read(MiB),
      server: () => gpu.client.regionRead(gpu.gpuRam, 0n, MiB, into),
    },
    plan.throughput,
    MiB,
  );
  const writes = await pairedThroughputs(
    {
      cFloor: () => cEcho.write(data),
      nodeFloor: () => nodeEcho.write(data),
      server: () => gpu.client.regionWrite(gpu.gpuRam, 0n, data),
    },
    plan.throughput,
    MiB,
  );
  const common = {
    unit: 'MiB/s',
    detail: `1 MiB at GPU RAM offset 0, one request at a time, best of ${plan.throughput.rounds} interleaved rounds of ${plan.throughput.perRound}`,
  };
  const read = { ...common, label: '1 MiB REGION_READ', value: maxOf(reads.server) };
  const write = { ...common, label: '1 MiB REGION_WRITE', value: maxOf(writes.server) };
  const readShape = '32-byte request / 1 MiB + 32 reply';
  const writeShape = '1 MiB + 32 request / 32-byte reply';
  const figures = [
    ratioFigure({
      ...read,
      id: 'region-read-1m',
      floor: maxOf(reads.cFloor),
      floorLabel: `the C echo, ${readShape}`,
      target: { kind: 'ratio-at-least', limit: 0.9 },
    }),
    ratioFigure({
      ...read,
      id: 'region-read-1m-node',
      label: `${read.label} (Node floor)`,
      floor: maxOf(reads.nodeFloor),
      floorLabel: `the Node echo, ${readShape}`,
      target: { kind: 'ratio-at-least', limit: 0.7 },
    }),
    ratioFigure({
      ...write,
      id: 'region-write-1m',
      floor: maxOf(writes.cFloor),
      floorLabel: `the C echo, ${writeShape}`,
      target: { kind: 'ratio-at-least', limit: 0.9 },
    }),
    ratioFigure({
      ...write,
      id: 'region-write-1m-node',
      label: `${write.label} (Node floor)`,
      floor: maxOf(writes.nodeFloor),
      floorLabel: `the Node echo, ${writeShape}`,
      target: { kind: 'ratio-at-least', limit: 0.7 },
    }),
  ];
  return {
    figures,
    raw: {
      readCFloor: reads.cFloor,
      readNodeFloor: reads.nodeFloor,
      read: reads.server,
      writeCFloor: writes.cFloor,
      writeNodeFloor: writes.nodeFloor,
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

/**
 * nvgrace-gpu's usemem (BAR4) through the client's mapping of its sparse-mmap area: the same
 * copies against the same memcpy floor as the GPU RAM figures.
 */
async function usememFigures(
  path: string,
  plan: BenchPlan,
): Promise<{ figures: Figure[]; raw: MappingCopyResult }> {
  const client = await VfioUserClient.connect(path);
  try {
    const mapped = await client.mapRegion(USEMEM_REGION_INDEX);
    try {
      const window = mapped.areas[0]?.mapping.windows[0];
      if (window === undefined) throw new Error('usemem mapping has no window at offset 0');
      const raw = measureMappingCopy(window.bytes, plan.mapping);
      const mib = plan.mapping.bytes / MiB;
      const common = {
        unit: 'MiB/s',
        floor: raw.memcpy.best,
        floorLabel: `Buffer.copy of ${mib} MiB between two private buffers of the bench process`,
        target: { kind: 'ratio-at-least', limit: 0.95 } as const,
        detail: `Grace Hopper usemem (BAR4), ${mib} MiB in ${plan.mapping.chunkBytes / MiB} MiB chunks, all pages pre-faulted on both sides, best of ${plan.mapping.repetitions} rotating repetitions`,
      };
      return {
        raw,
        figures: [
          ratioFigure({
            ...common,
            id: 'usemem-map-in',
            label: 'usemem mapping, copy in',
            value: raw.copyIn.best,
          }),
          ratioFigure({
            ...common,
            id: 'usemem-map-out',
            label: 'usemem mapping, copy out',
            value: raw.copyOut.best,
          }),
        ],
      };
    } finally {
      mapped.unmap();
    }
  } finally {
    client.close();
  }
}

/** `serve` start-up over a bare `node` start; at most this many times it (issue 14 item 4). */
export const STARTUP_RATIO_LIMIT = 4;

function startupFigures(runs: readonly StartupRun[]): Figure[] {
  const sockets = runs[0]?.sockets ?? 0;
  return [
    ratioFigure({
      id: 'serve-startup',
      label: '`serve` start-up (6 GPUs)',
      unit: 'ms',
      value: median(runs.map((r) => r.ms)),
      floor: median(runs.map((r) => r.bareNodeMs)),
      floorLabel: 'a bare `node` running an empty module, spawn to exit, measured before each run',
      target: { kind: 'ratio-at-most', limit: STARTUP_RATIO_LIMIT },
      detail: `spawn to all ${sockets} sockets accepting, median of ${runs.length} runs, over the median bare node start of the same runs`,
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

/** `serve --state-dir` restart after kill -9: every socket accepting within this (issue 8). */
export const RESTART_MS_LIMIT = 300;
/** --sync's fdatasync per write over the same write without it; at most this many times. */
export const SYNC_WRITE_RATIO_LIMIT = 200;

function restartFigures(r: RestartResult): Figure[] {
  const what = `spawn to all ${r.sockets} sockets accepting on a state directory left by kill -9 (16 MiB of GPU RAM written), median of ${r.restartMs.length} runs`;
  return [
    ratioFigure({
      id: 'serve-restart',
      label: '`serve --state-dir` restart after kill -9',
      unit: 'ms',
      value: median(r.restartMs),
      floor: median(r.bareNodeMs),
      floorLabel: 'a bare `node` running an empty module, spawn to exit, measured before each run',
      target: { kind: 'ratio-at-most', limit: STARTUP_RATIO_LIMIT },
      detail: `${what}, over the median bare node start of the same runs (as \`serve\` start-up)`,
    }),
    absoluteFigure({
      id: 'serve-restart-ms',
      label: '`serve --state-dir` restart, absolute',
      unit: 'ms',
      value: median(r.restartMs),
      target: { kind: 'value-at-most', limit: RESTART_MS_LIMIT },
      detail: `${what} (issue 8's target; node's own start-up included)`,
    }),
    ratioFigure({
      id: 'state-dir-sync-write',
      label: '4 KiB REGION_WRITE with --sync',
      unit: 'µs',
      value: median(r.syncWriteUs),
      floor: median(r.writeUs),
      floorLabel: 'the same writes to a --state-dir server without --sync',
      target: { kind: 'ratio-at-most', limit: SYNC_WRITE_RATIO_LIMIT },
      detail: `round trip of one 4 KiB REGION_WRITE to GPU RAM (fdatasync of its file before the reply), median of ${r.syncWriteUs.length}`,
    }),
  ];
}

function traceIdleFigure(r: TraceIdleResult, plan: BenchPlan): Figure {
  return ratioFigure({
    id: 'trace-detached-region-read',
    label: 'GPU RAM 8-byte reads, trace detached',
    unit: 'MiB/s',
    value: Math.max(...r.detached),
    floor: Math.max(...r.neverTraced),
    floorLabel: 'the same reads on a machine whose tracer never had a listener',
    target: { kind: 'ratio-at-least', limit: 0.9 },
    detail: `in process, ${READS_PER_OP} reads per operation, best of ${plan.traceIdle.rounds} alternating rounds of ${plan.traceIdle.perRound}; a sink attached and detached first, as a \`trace\` client does`,
  });
}

/** The figures that need the peer: round trips, 1 MiB transfers, the GPU RAM mapping. */
async function measureWithPeer(
  peer: PeerProcess,
  cFloor: FloorProcess,
  lvuServer: FloorProcess | null,
  plan: BenchPlan,
  progress: Progress,
) {
  const nodeEcho = EchoClient.connect(peer.echo);
  const cEcho = EchoClient.connect(cFloor.path);
  let lvu: VfioUserClient | null = null;
  try {
    if (lvuServer !== null) lvu = await VfioUserClient.connect(lvuServer.path);
    const gpu = await connectGpu(peer.device);
    try {
      const ends = { gpu, cEcho, nodeEcho, lvu };
      progress(`4-byte config reads against ${peer.address}${lvu ? ' and LVU_GPIO' : ''}`);
      const wire = await roundTripFigures(ends, plan);
      progress('1 MiB REGION_READ / REGION_WRITE');
      const bulk = await throughputFigures(ends, plan);
      progress(`GPU RAM mapping copies (${plan.mapping.bytes / MiB} MiB)`);
      const mapping = mappingFigures(gpu, plan);
      progress(`usemem mapping copies (${plan.mapping.bytes / MiB} MiB)`);
      const usemem = await usememFigures(peer.grace, plan);
      return { wire, bulk, mapping, usemem };
    } finally {
      gpu.close();
    }
  } finally {
    lvu?.close();
    cEcho.close();
    nodeEcho.close();
  }
}

/**
 * Runs every measurement of `plan`; `pin` puts the bench and its peer on one CPU for the wire
 * and mapping figures (cpu-placement.ts); `lvuGpio`, a built libvfio-user gpio-pci-idio-16
 * sample, is measured beside ours. @throws Error when a figure cannot be measured.
 */
export async function runBench(
  plan: BenchPlan,
  progress: Progress,
  pin = true,
  lvuGpio: string | null = null,
): Promise<BenchResult> {
  const startedAt = new Date().toISOString();
  const loadAtStart = loadavg();
  const pinning = pinThisProcess(pin);
  let peerFigures: Awaited<ReturnType<typeof measureWithPeer>>;
  try {
    progress('starting the peer (vfio-user GPU + Node echo) and the C echo');
    const peer = await startPeer(pinning.placement);
    const cFloor = await startEchoFloor(pinning.placement).catch(async (e: unknown) => {
      await peer.stop();
      throw e;
    });
    let lvu: FloorProcess | null = null;
    try {
      if (lvuGpio !== null) lvu = await startLvuGpio(lvuGpio, pinning.placement);
      peerFigures = await measureWithPeer(peer, cFloor, lvu, plan, progress);
    } finally {
      await lvu?.stop();
      await cFloor.stop();
      await peer.stop();
    }
  } finally {
    pinning.restore();
  }
  const { wire, bulk, mapping, usemem } = peerFigures;
  progress(`serve start-up, ${plan.startup.runs} run(s)`);
  const startup = await measureServeStartup(plan.startup, (n) =>
    progress(`serve start-up run ${n}/${plan.startup.runs} done`),
  );
  progress(`serve --state-dir restart after kill -9, ${plan.startup.runs} run(s)`);
  const restart = await measureServeRestart(plan.startup, plan.quick ? 20 : 500, progress);
  progress('region reads with the tracer detached after a trace client');
  const traceIdle = await measureTraceIdle(plan.traceIdle);
  const migration = await measureMigration(plan.migration, progress);
  return {
    schema: 'vfio-nvlink2-bench/2',
    startedAt,
    quick: plan.quick,
    node: process.version,
    cpus: cpus().length,
    load: { start: loadAtStart, end: loadavg() },
    placement: pinning.placement,
    lvuGpio,
    figures: [
      ...wire.figures,
      ...bulk.figures,
      ...mapping.figures,
      ...usemem.figures,
      ...startupFigures(startup),
      ...restartFigures(restart),
      traceIdleFigure(traceIdle, plan),
      ...migrationFigures(migration, plan.migration),
    ],
    raw: {
      roundTrip: {
        cFloor: wire.cFloor,
        nodeFloor: wire.nodeFloor,
        server: wire.server,
        lvu: wire.lvu,
      },
      throughput: bulk.raw,
      mapping: mapping.raw,
      usemem: usemem.raw,
      startup,
      restart,
      traceIdle,
      migration,
    },
  };
}
