/**
 * What the live page shows of a running machine, as plain JSON: per device whether it is served
 * and which client partition (pid, LPID) holds it; per GPU the GPU RAM and BAR bytes populated and
 * a heat strip of its real RAM (populated bytes per bucket, from the memfd's SEEK_DATA ranges);
 * per NPU the ATSD register bindings and the XTS BDF→LPID table; the LPIDs in use; the newest
 * tracepoint lines. Read-only: reading it changes no device.
 */
import type { Machine, PartitionRegistry } from '../machine/index.ts';
import { gpuRamKey } from '../nvlink2/index.ts';
import { hex } from '../text/index.ts';
import type { TopologyModel } from '../topology/index.ts';
import type { RingBufferSink } from '../trace/index.ts';
import type { SessionState } from '../vfio-user/index.ts';
import type { LiveCounters } from './counters.ts';

/** Buckets of a GPU's heat strip. */
export const HEAT_BUCKETS = 64;
/** Trace lines the page keeps. */
export const TRACE_TAIL = 40;

/**
 * The live page's JSON: serve's pid and LPIDs in use, the memory budget and touched/refused
 * bytes, and per device, GPU and NPU what the page draws (byte counts in bytes).
 */
export interface LiveSnapshot {
  readonly pid: number;
  readonly lpidsInUse: readonly number[];
  readonly memory: {
    readonly budget: number | null;
    readonly touched: number;
    readonly refused: number;
  };
  readonly devices: readonly {
    readonly address: string;
    readonly role: string;
    readonly served: boolean;
    readonly client: { readonly pid: number; readonly lpid: number } | null;
    /** Region indices whose mmap fd the client was given (GPU RAM 9, ATSD 10, BARs). */
    readonly mapped: readonly number[];
    /** The client's DMA_MAP regions now, and their bytes. */
    readonly dmaMaps: number;
    readonly dmaBytes: number;
    /** Interrupts raised since serve started, and how many reached an eventfd. */
    readonly interrupts: number;
    readonly interruptsDelivered: number;
  }[];
  readonly gpus: readonly {
    readonly address: string;
    readonly gpuRam: number;
    readonly bars: number;
    /** Bytes of real RAM per bucket. */
    readonly bucketBytes: number;
    /** Populated bytes per bucket. */
    readonly strip: readonly number[];
  }[];
  readonly npus: readonly {
    readonly path: string;
    readonly domain: number;
    readonly atsd: readonly {
      readonly index: number;
      readonly lpid: number;
      readonly msrHv: boolean;
      /** The register's address (hex) and its launches since serve started. */
      readonly address: string | null;
      readonly launches: number;
    }[];
    /** The XTS process-context table: PID-map entries with their MSR bits and refs. */
    readonly pidMap: readonly {
      readonly index: number;
      readonly lparShort: number;
      readonly msr: string;
      readonly refs: number;
    }[];
    readonly bdfMap: readonly { readonly bdf: number; readonly lpid: number }[];
  }[];
  readonly trace: readonly string[];
}

/** Populated bytes of [start, end) in each of `count` equal buckets. */
export function heatStrip(
  ranges: readonly [bigint, bigint][],
  size: bigint,
  count: number,
): number[] {
  const bucket = size / BigInt(count);
  const strip = new Array<number>(count).fill(0);
  if (bucket === 0n) return strip;
  for (const [from, to] of ranges) {
    const end = to < size ? to : size;
    for (let at = from; at < end; ) {
      const i = Number(at / bucket);
      if (i >= count) break;
      const stop = (BigInt(i) + 1n) * bucket < end ? (BigInt(i) + 1n) * bucket : end;
      strip[i] = (strip[i] ?? 0) + Number(stop - at);
      at = stop;
    }
  }
  return strip;
}

/** What liveSnapshot reads: the machine, its topology and partitions, the served addresses, and optionally sessions, counters and a trace ring. */
export interface LiveSources {
  readonly machine: Machine;
  readonly topology: TopologyModel;
  readonly partitions: PartitionRegistry;
  /** Addresses with a socket. */
  readonly served: ReadonlySet<string>;
  /** The connected session of a device, if any. */
  readonly session?: (address: string) => SessionState | undefined;
  readonly counters?: LiveCounters;
  readonly trace?: RingBufferSink;
}

/** The snapshot of the machine now. */
export function liveSnapshot(sources: LiveSources): LiveSnapshot {
  const { machine, topology, partitions, served, session, counters, trace } = sources;
  const usage = machine.memoryUsage();
  const owners = partitions.list();
  const devices = machine.functions.map((fn) => {
    const owner = owners.find((p) => p.devices.includes(fn.name));
    const s = session?.(fn.name);
    const dma = s?.dma.regions ?? [];
    const irqs = counters?.interrupts.get(fn.name);
    return {
      address: fn.name,
      role: fn.role,
      served: served.has(fn.name),
      client: owner ? { pid: owner.pid, lpid: owner.lpid } : null,
      mapped: s ? [...s.grants.keys()].sort((a, b) => a - b) : [],
      dmaMaps: dma.length,
      dmaBytes: Number(dma.reduce((sum, r) => sum + r.size, 0n)),
      interrupts: irqs?.raised ?? 0,
      interruptsDelivered: irqs?.delivered ?? 0,
    };
  });
  const gpus = usage.gpus.map((g) => {
    const real = topology.gpus.find((t) => t.address === g.address)?.ramBytes ?? 0n;
    const memory = machine.ctx.memory.peek(gpuRamKey(g.address));
    const ranges = memory && real > 0n ? memory.dataRanges(0n, real) : [];
    return {
      address: g.address,
      gpuRam: Number(g.gpuRam),
      bars: Number(g.bars),
      bucketBytes: Number(real / BigInt(HEAT_BUCKETS)),
      strip: heatStrip(ranges, real, HEAT_BUCKETS),
    };
  });
  const npus = machine.firmwareSnapshot().map((n) => ({
    path: n.path,
    domain: n.domain,
    atsd: n.atsd.map((a) => {
      const address = a.address === undefined ? null : hex(a.address);
      return {
        index: a.index,
        lpid: a.lpid,
        msrHv: a.msrHv,
        address,
        launches: (address && counters?.atsdLaunches.get(address)) || 0,
      };
    }),
    pidMap: n.pidMap.map((p) => ({
      index: p.index,
      lparShort: p.lparShort,
      msr: (['dr', 'hv', 'pr', 'sf'] as const)
        .filter((k) => p.msr[k])
        .join('|')
        .toUpperCase(),
      refs: p.refs,
    })),
    bdfMap: n.bdfMap.map((e) => ({ bdf: e.bdf, lpid: e.lpid })),
  }));
  return {
    pid: process.pid,
    lpidsInUse: machine.lpids.inUse(),
    memory: {
      budget: usage.budget === undefined ? null : Number(usage.budget),
      touched: Number(usage.touched),
      refused: usage.refused,
    },
    devices,
    gpus,
    npus,
    trace: trace ? trace.lines().slice(-TRACE_TAIL) : [],
  };
}
