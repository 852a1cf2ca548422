/**
 * Log lines a client can cause, rate-limited: every error reply logs a line, and one client
 * sending 50,000 bad requests wrote 6.3 MB of stderr. As the kernel's printk_ratelimit()
 * (lib/ratelimit.c ___ratelimit; DEFAULT_RATELIMIT_INTERVAL 5 * HZ, DEFAULT_RATELIMIT_BURST 10
 * in include/linux/ratelimit_types.h): at most `burst` lines per `intervalMs`, then one line
 * saying how many were suppressed ("%s: %d callbacks suppressed"), written when the interval
 * ends (a timer) or the limiter is flushed, so the count is never lost with a quiet client.
 */

/** Lines at most per interval (the kernel's DEFAULT_RATELIMIT_BURST). */
export const LOG_RATE_BURST = 10;
/**
 * Lines at most per interval from all connections of one socket together: a client that
 * reconnects gets a fresh burst per connection, but not past this.
 */
export const LOG_RATE_SOCKET_BURST = 10 * LOG_RATE_BURST;
/** The interval (the kernel's DEFAULT_RATELIMIT_INTERVAL, 5 s). */
export const LOG_RATE_INTERVAL_MS = 5000;

/**
 * One rate-limited log (per connection, optionally under a per-socket parent): lines past the
 * burst within an interval are counted and reported as one 'suppressed K similar log lines' line.
 */
export class RateLimitedLog {
  readonly #sink: (line: string) => void;
  readonly #who: string;
  readonly #burst: number;
  readonly #intervalMs: number;
  #begin = Number.NEGATIVE_INFINITY;
  #printed = 0;
  #missed = 0;
  #timer: NodeJS.Timeout | undefined;

  /**
   * @param sink where lines go.
   * @param who names the source in the summary line (a device and socket).
   */
  constructor(
    sink: (line: string) => void,
    who: string,
    burst = LOG_RATE_BURST,
    intervalMs = LOG_RATE_INTERVAL_MS,
  ) {
    this.#sink = sink;
    this.#who = who;
    this.#burst = burst;
    this.#intervalMs = intervalMs;
  }

  /** Writes `line`, or counts it as suppressed when the interval's burst is spent. */
  line(line: string): void {
    const now = performance.now();
    if (now - this.#begin >= this.#intervalMs) {
      this.flush();
      this.#begin = now;
      this.#printed = 0;
    }
    if (this.#printed < this.#burst) {
      this.#printed++;
      this.#sink(line);
      return;
    }
    this.#missed++;
    if (this.#timer === undefined) {
      this.#timer = setTimeout(
        () => {
          this.#timer = undefined;
          this.flush();
        },
        Math.max(0, this.#begin + this.#intervalMs - now),
      );
      this.#timer.unref();
    }
  }

  /** Writes the summary of lines suppressed so far, if any. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#missed === 0) return;
    const n = this.#missed;
    this.#missed = 0;
    this.#sink(
      `${this.#who}: suppressed ${n} similar log line${n === 1 ? '' : 's'} (at most ${this.#burst} per ${this.#intervalMs / 1000} s, as the kernel's printk_ratelimit)`,
    );
  }
}
