/**
 * Kernel ranges. The doctor replays the kernels whose NVLink2 behaviour differs
 * (kernel-version.ts): each representative stands for a range of releases (5.2 for 5.2–5.6,
 * 5.7 for 5.7–5.11), and a set of representatives prints as the ranges it covers.
 */
import { KERNEL_VERSIONS, type KernelVersion } from '../kernel-version.ts';

/** The releases each representative stands for: [first, last]. */
const RANGES: Record<KernelVersion, readonly [string, string]> = {
  '5.0': ['5.0', '5.0'],
  '5.1': ['5.1', '5.1'],
  '5.2': ['5.2', '5.6'],
  '5.7': ['5.7', '5.11'],
  '5.12': ['5.12', '5.12'],
};

/** Every release the subdriver existed in. */
export const ALL_KERNELS = '5.0–5.12';

/** "5.0–5.1, 5.7–5.12" for a set of representatives ("" for none). */
export function formatKernelRanges(versions: Iterable<KernelVersion>): string {
  const set = new Set(versions);
  const out: string[] = [];
  let start: string | undefined;
  let end: string | undefined;
  for (const v of KERNEL_VERSIONS) {
    if (set.has(v)) {
      start ??= RANGES[v][0];
      end = RANGES[v][1];
      continue;
    }
    if (start !== undefined) out.push(start === end ? start : `${start}–${end}`);
    start = undefined;
  }
  if (start !== undefined) out.push(start === end ? start : `${start}–${end}`);
  return out.join(', ');
}
