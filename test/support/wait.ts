/**
 * Bounded waits for tests: every wait ends, either with what it waited for or with an error
 * naming what never came. The bounds are generous (the machine is shared) and catch hangs;
 * they assert nothing about speed.
 */

/** Default bound of a wait (ms). */
export const WAIT_MS = 60_000;

/**
 * Polls `probe` (sync or async) every `intervalMs` until it returns something other than
 * undefined or false, and resolves with that.
 * @throws Error "timed out after N s waiting for WHAT" past `timeoutMs`; whatever `probe` throws.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = WAIT_MS,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * `promise`, or a rejection naming `what` once `timeoutMs` passed without it settling.
 * @throws Error "timed out after N s waiting for WHAT".
 */
export function within<T>(what: string, promise: Promise<T>, timeoutMs = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)),
      timeoutMs,
    );
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
