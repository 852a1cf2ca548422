/** Processes as /proc shows them, for tests that watch a child or grandchild end. */
import { readFileSync } from 'node:fs';

/** Whether `pid` runs (not gone, not a zombie waiting for its reaper). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
