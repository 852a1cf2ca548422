/**
 * What the live page counts as it happens, since serve started: interrupts raised per device
 * (the vfio-pci core's tracer hook, src/vfio/tracer.ts) and ATSD launches per register address
 * (the nvlink2_atsd_launch tracepoint). Counting is a Map update; nothing else is kept.
 */

import { hex } from '../text/index.ts';
import type { TraceRecord, TraceSink } from '../trace/index.ts';
import type { InterruptEvent, VfioTracer } from '../vfio/index.ts';

/** The live page's counters: a VfioTracer counting interrupts per device and a TraceSink counting nvlink2_atsd_launch per ATSD register. */
export class LiveCounters implements VfioTracer, TraceSink {
  /** Interrupts raised per device; `delivered` those that reached an eventfd. */
  readonly interrupts = new Map<string, { raised: number; delivered: number }>();
  /** ATSD launches per register address (hex, as the firmware tables show it). */
  readonly atsdLaunches = new Map<string, number>();

  interrupt(event: InterruptEvent): void {
    const c = this.interrupts.get(event.device) ?? { raised: 0, delivered: 0 };
    c.raised++;
    if (event.delivered) c.delivered++;
    this.interrupts.set(event.device, c);
  }

  write(record: TraceRecord): void {
    if (record.event !== 'nvlink2_atsd_launch') return;
    const { atsd } = (record as TraceRecord<'nvlink2_atsd_launch'>).args;
    const key = hex(atsd);
    this.atsdLaunches.set(key, (this.atsdLaunches.get(key) ?? 0) + 1);
  }
}
