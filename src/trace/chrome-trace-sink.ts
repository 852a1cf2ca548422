/**
 * A sink collecting records as Chrome trace-viewer / Perfetto JSON ("Trace Event Format":
 * instant events, `ph: "i"`, timestamps in microseconds). 64-bit values become hex strings
 * (JSON numbers lose precision past 2^53), so addresses read as they do in the text output.
 */

import { TRACE_EVENTS } from './events.ts';
import { formatTraceMessage } from './format.ts';
import type { TraceRecord, TraceSink } from './tracer.ts';

/**
 * One instant event of the Trace Event Format (Chrome's trace viewer, Perfetto): `ts` in
 * microseconds.
 */
export interface ChromeTraceEvent {
  readonly name: string;
  readonly cat: string;
  readonly ph: 'i';
  readonly s: 't';
  /** Microseconds, fractional. */
  readonly ts: number;
  readonly pid: number;
  readonly tid: number;
  readonly args: Readonly<Record<string, string | number>>;
}

/** A whole Trace Event Format file: the events, displayed in ns. */
export interface ChromeTrace {
  readonly traceEvents: ChromeTraceEvent[];
  readonly displayTimeUnit: 'ns';
}

/** A trace record as a Trace Event Format instant event (bigint arguments as hex strings). */
export function toChromeTraceEvent(record: TraceRecord): ChromeTraceEvent {
  const args: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(record.args as Record<string, unknown>)) {
    args[key] = typeof value === 'bigint' ? `0x${value.toString(16)}` : (value as string | number);
  }
  args.message = formatTraceMessage(record);
  return {
    name: record.event,
    cat: TRACE_EVENTS[record.event].system,
    ph: 'i',
    s: 't',
    ts: Number(record.timestampNs) / 1000,
    pid: record.pid,
    tid: record.cpu,
    args,
  };
}

/** A sink that keeps every record as a Trace Event Format event (`toJSON` gives the file). */
export class ChromeTraceSink implements TraceSink {
  readonly events: ChromeTraceEvent[] = [];

  write(record: TraceRecord): void {
    this.events.push(toChromeTraceEvent(record));
  }

  toJSON(): ChromeTrace {
    return { traceEvents: this.events, displayTimeUnit: 'ns' };
  }

  /** The JSON text trace-viewer loads. */
  serialize(): string {
    return JSON.stringify(this.toJSON());
  }
}
