/** Tracepoints with the kernel's formats, a tracer that is free when idle, and its sinks. */
export {
  type ChromeTrace,
  type ChromeTraceEvent,
  ChromeTraceSink,
  toChromeTraceEvent,
} from './chrome-trace-sink.ts';
export {
  printfArgs,
  TRACE_EVENTS,
  type TraceEventArgs,
  type TraceEventDefinition,
  type TraceEventName,
} from './events.ts';
export { formatFtraceLine, formatTraceMessage, formatTraceTimestamp } from './format.ts';
export { type PrintfArg, PrintfError, printf } from './printf.ts';
export { RingBufferSink } from './ring-buffer-sink.ts';
export { TextSink } from './text-sink.ts';
export { type TraceRecord, Tracer, type TracerOptions, type TraceSink } from './tracer.ts';
