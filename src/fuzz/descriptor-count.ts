/**
 * A process's open descriptors as the fuzzer and the serve tests count them: a module of its
 * own (node:fs only), so that the many tests that count serve's descriptors do not load the
 * fuzzer.
 */
import { readdirSync, readlinkSync } from 'node:fs';

/**
 * The descriptors process `pid` holds (/proc/PID/fd), leaving out the ones `serve` opens for an
 * instant on its own timers: a `*.tmp` file it writes state.json or devices.json through, and a
 * /proc file it reads (its memory watch). A count taken while one of those is open would stand
 * one too high, and a test waiting for the count to come back to it would wait forever.
 */
export function descriptorCount(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (!/\.tmp$|^\/proc\//.test(target)) n++;
  }
  return n;
}
