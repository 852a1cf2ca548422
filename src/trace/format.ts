/**
 * Text renderings of a trace record: the event's message (TP_printk with the kernel's format)
 * and a whole line in the layout of /sys/kernel/tracing/trace with the `irq-info` option off
 * (kernel/trace/trace_output.c, trace_print_context(): "%16s-%-7d [%03d] %5lu.%06lu: ").
 */

import { printfArgs, TRACE_EVENTS, type TraceEventName } from './events.ts';
import { printf } from './printf.ts';
import type { TraceRecord } from './tracer.ts';

/** The event's TP_printk output, e.g. `0000:04:00.0: 3e000000000 -> 7fff00000000 ret=256`. */
export function formatTraceMessage<E extends TraceEventName>(record: TraceRecord<E>): string {
  return printf(TRACE_EVENTS[record.event].format, printfArgs(record.event, record.args));
}

/** `seconds.microseconds` as ftrace prints a timestamp (`%5lu.%06lu`). */
export function formatTraceTimestamp(ns: bigint): string {
  const us = ns / 1000n;
  const sec = (us / 1_000_000n).toString().padStart(5, ' ');
  return `${sec}.${(us % 1_000_000n).toString().padStart(6, '0')}`;
}

/** One line of ftrace text output, without a trailing newline. */
export function formatFtraceLine(record: TraceRecord): string {
  const context = `${record.task.padStart(16, ' ')}-${String(record.pid).padEnd(7, ' ')}`;
  const cpu = String(record.cpu).padStart(3, '0');
  return `${context} [${cpu}] ${formatTraceTimestamp(record.timestampNs)}: ${record.event}: ${formatTraceMessage(record)}`;
}
