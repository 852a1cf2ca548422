/**
 * An in-memory ring buffer of trace records (like the ftrace ring buffer in overwrite mode):
 * keeps the newest `capacity` records, counts what it dropped, formats only when read.
 */

import type { TraceEventName } from './events.ts';
import { formatFtraceLine } from './format.ts';
import type { TraceRecord, TraceSink } from './tracer.ts';

/** A sink keeping the last `capacity` records (oldest dropped first, counted in `overwritten`). */
export class RingBufferSink implements TraceSink {
  private readonly slots: (TraceRecord | undefined)[];
  private head = 0;
  private size = 0;
  /** Records overwritten because the buffer was full. */
  overruns = 0;

  constructor(readonly capacity = 4096) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`capacity ${capacity} is not a positive integer`);
    this.slots = new Array<TraceRecord | undefined>(capacity);
  }

  write(record: TraceRecord): void {
    this.slots[(this.head + this.size) % this.capacity] = record;
    if (this.size < this.capacity) this.size++;
    else {
      this.head = (this.head + 1) % this.capacity;
      this.overruns++;
    }
  }

  /** Oldest first; only `event` records when given. */
  records<E extends TraceEventName>(event?: E): TraceRecord<E>[] {
    const out: TraceRecord<E>[] = [];
    for (let i = 0; i < this.size; i++) {
      const r = this.slots[(this.head + i) % this.capacity] as TraceRecord;
      if (event === undefined || r.event === event) out.push(r as TraceRecord<E>);
    }
    return out;
  }

  /** The records as ftrace text lines. */
  lines(event?: TraceEventName): string[] {
    return this.records(event).map((r) => formatFtraceLine(r));
  }

  clear(): void {
    this.slots.fill(undefined);
    this.head = 0;
    this.size = 0;
  }
}
