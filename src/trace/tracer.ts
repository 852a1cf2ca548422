/**
 * The tracer: named events with the kernel's formats (events.ts), delivered to sinks. Like an
 * ftrace tracepoint behind a static key, an event nobody listens to costs one lookup: callers
 * either check `enabled(event)` or pass a function that builds the arguments, and nothing is
 * formatted here at all (sinks format, and the ring buffer only when read).
 * No module-level instance: whoever needs one creates it and passes it down.
 */
import type { TraceEventArgs, TraceEventName } from './events.ts';

/** One event as it happened. */
export interface TraceRecord<E extends TraceEventName = TraceEventName> {
  readonly event: E;
  readonly args: TraceEventArgs[E];
  /** Nanoseconds on the tracer's clock (monotonic by default, like ftrace's local clock). */
  readonly timestampNs: bigint;
  readonly task: string;
  readonly pid: number;
  readonly cpu: number;
}

/** Where records go. A sink must not throw. */
export interface TraceSink {
  write(record: TraceRecord): void;
}

/** Options of `Tracer`: clock (ns), and the task, pid and cpu shown in text output. */
export interface TracerOptions {
  /** Nanosecond clock; default process.hrtime.bigint. */
  readonly clock?: () => bigint;
  /** Task (comm) shown in text output; default 'node'. */
  readonly task?: string;
  /** Default process.pid. */
  readonly pid?: number;
  /** Default 0 (Node runs JavaScript on one thread). */
  readonly cpu?: number;
}

type ArgsOrThunk<E extends TraceEventName> = TraceEventArgs[E] | (() => TraceEventArgs[E]);

interface Subscription {
  readonly sink: TraceSink;
  /** undefined: every event. */
  readonly events: ReadonlySet<TraceEventName> | undefined;
}

/**
 * Named tracepoints and their sinks: `emit` formats nothing when nobody subscribed to the event.
 */
export class Tracer {
  private readonly subscriptions: Subscription[] = [];
  /** How many subscriptions want each event; `all` counts those that want every event. */
  private readonly listeners = new Map<TraceEventName, number>();
  private all = 0;
  /** Counters handed out by `listening`, kept up to date by attach and detach. */
  private readonly watches: { events: readonly TraceEventName[]; counter: Int32Array }[] = [];
  private readonly clock: () => bigint;
  private readonly task: string;
  private readonly pid: number;
  private readonly cpu: number;

  constructor(options: TracerOptions = {}) {
    this.clock = options.clock ?? process.hrtime.bigint;
    this.task = options.task ?? 'node';
    this.pid = options.pid ?? process.pid;
    this.cpu = options.cpu ?? 0;
  }

  /** True when at least one sink listens to `event`. */
  enabled(event: TraceEventName): boolean {
    return this.all > 0 || (this.listeners.get(event) ?? 0) > 0;
  }

  /**
   * A counter of the sinks listening to any of `events` (slot 0), kept up to date as sinks
   * attach and detach: read without a call, by the native fast path, which must not serve an
   * access a listened tracepoint would report.
   */
  listening(events: readonly TraceEventName[]): Int32Array {
    const watch = { events: [...events], counter: new Int32Array(1) };
    this.watches.push(watch);
    this.refresh(watch);
    return watch.counter;
  }

  private refresh(watch: { events: readonly TraceEventName[]; counter: Int32Array }): void {
    let n = this.all;
    for (const e of watch.events) n += this.listeners.get(e) ?? 0;
    watch.counter[0] = n;
  }

  /**
   * Delivers `event` to the sinks listening to it. `args` may be a function; it is called only
   * when someone listens.
   */
  emit<E extends TraceEventName>(event: E, args: ArgsOrThunk<E>): void {
    if (!this.enabled(event)) return;
    const record: TraceRecord<E> = {
      event,
      args: typeof args === 'function' ? (args as () => TraceEventArgs[E])() : args,
      timestampNs: this.clock(),
      task: this.task,
      pid: this.pid,
      cpu: this.cpu,
    };
    for (const s of this.subscriptions) {
      if (!s.events || s.events.has(event)) s.sink.write(record as unknown as TraceRecord);
    }
  }

  /**
   * Starts delivering `events` (default: all) to `sink`.
   * @returns a function that detaches the sink again.
   */
  attach(sink: TraceSink, events?: readonly TraceEventName[]): () => void {
    const sub: Subscription = { sink, events: events ? new Set(events) : undefined };
    this.subscriptions.push(sub);
    this.count(sub, 1);
    let attached = true;
    return () => {
      if (!attached) return;
      attached = false;
      this.subscriptions.splice(this.subscriptions.indexOf(sub), 1);
      this.count(sub, -1);
    };
  }

  private count(sub: Subscription, delta: 1 | -1): void {
    if (!sub.events) this.all += delta;
    else for (const e of sub.events) this.listeners.set(e, (this.listeners.get(e) ?? 0) + delta);
    for (const w of this.watches) this.refresh(w);
  }
}
