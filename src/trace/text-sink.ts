/** A sink writing each record as one ftrace-style text line (format.ts) to a writer. */
import { formatFtraceLine } from './format.ts';
import type { TraceRecord, TraceSink } from './tracer.ts';

/** A sink writing each record as one ftrace-style text line (format.ts formatFtraceLine). */
export class TextSink implements TraceSink {
  /** @param writeLine receives each line without its newline (e.g. `(l) => stream.write(l + '\n')`). */
  constructor(private readonly writeLine: (line: string) => void) {}

  write(record: TraceRecord): void {
    this.writeLine(formatFtraceLine(record));
  }
}
