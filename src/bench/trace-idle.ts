/**
 * What an idle tracer costs once a `trace` client has come and gone: 8-byte GPU RAM region reads
 * (each passes the nvlink2_region_read tracepoint) on a machine whose tracer had a sink attached
 * and detached, against the same reads on a machine whose tracer never had one — in alternating
 * rounds in this process. Equal figures mean detaching left nothing behind on the hot path.
 */
import { createMachine, type Machine } from '../machine/index.ts';
import { defaultPlatformTree } from '../platform/index.ts';
import { RingBufferSink } from '../trace/index.ts';
import { type PairedPlan, pairedThroughputs } from './paired-timing.ts';

/** Reads per timed operation (one region read is far below the timer's resolution). */
export const READS_PER_OP = 1000;
const GPU_RAM = 9;

/** The throughputs of measureTraceIdle, MiB/s per paired round, in round order. */
export interface TraceIdleResult {
  /** MiB/s per round: never traced, and after an attach and a detach. */
  readonly neverTraced: number[];
  readonly detached: number[];
}

function openGpu(machine: Machine) {
  const gpu = machine.servedFunctions().find((fn) => fn.role === 'gpu');
  if (gpu === undefined) throw new Error('the built-in platform has no GPU');
  const device = machine.device(gpu.name);
  device.open();
  return device;
}

/**
 * Times `READS_PER_OP` 8-byte GPU RAM (region 9) reads on a machine whose tracer never had a
 * sink against the same on one whose tracer had a RingBufferSink attached and detached, in
 * the paired rounds of `plan`; both machines are disposed after.
 * @throws Error when the built-in platform has no GPU.
 */
export async function measureTraceIdle(plan: PairedPlan): Promise<TraceIdleResult> {
  const fresh = createMachine(defaultPlatformTree());
  const visited = createMachine(defaultPlatformTree());
  try {
    const detach = visited.ctx.tracer.attach(new RingBufferSink(16)); // as trace-control does
    detach();
    const a = openGpu(fresh);
    const b = openGpu(visited);
    const buf = new Uint8Array(8);
    const reads = (d: typeof a) => async () => {
      for (let i = 0; i < READS_PER_OP; i++) d.rw(GPU_RAM, 0n, buf, false);
    };
    const r = await pairedThroughputs(
      { floor: reads(a), server: reads(b) },
      plan,
      8 * READS_PER_OP,
    );
    return { neverTraced: r.floor, detached: r.server };
  } finally {
    fresh.dispose();
    visited.dispose();
  }
}
