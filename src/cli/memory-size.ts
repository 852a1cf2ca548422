/**
 * Sizes on the command line (`serve --memory-budget 8G`) and the default memory budget: half of
 * what the host can still give (MemAvailable of /proc/meminfo, the kernel's estimate of memory
 * available without swapping; os.freemem() where there is no /proc), so that the guest's own RAM
 * and the host keep the other half.
 */
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';

const UNIT_SHIFT: Readonly<Record<string, bigint>> = { '': 0n, K: 10n, M: 20n, G: 30n, T: 40n };

/**
 * Bytes of "8G", "512M", "64KiB", "1048576": binary units K, M, G, T (optionally followed by
 * "iB" or "B"), else bytes. Undefined for anything else.
 */
export function parseSize(text: string): bigint | undefined {
  const m = /^(\d+)\s*(?:([KMGT])(?:i?B)?|B)?$/i.exec(text.trim());
  if (!m) return undefined;
  return BigInt(m[1] as string) << (UNIT_SHIFT[(m[2] ?? '').toUpperCase()] ?? 0n);
}

/**
 * serve's default memory budget: half of the host's available memory (bytes), and where that figure
 * came from.
 */
export interface DefaultBudget {
  readonly bytes: bigint;
  /** What it is half of. */
  readonly available: bigint;
  readonly source: 'MemAvailable' | 'free memory';
}

/** MemAvailable of a /proc/meminfo text, in bytes. */
export function memAvailable(meminfo: string): bigint | undefined {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(meminfo);
  return m ? BigInt(m[1] as string) * 1024n : undefined;
}

/** Half of MemAvailable (or of free memory without /proc/meminfo). */
export function defaultMemoryBudget(
  readMeminfo: () => string = () => readFileSync('/proc/meminfo', 'utf8'),
): DefaultBudget {
  let available: bigint | undefined;
  try {
    available = memAvailable(readMeminfo());
  } catch {
    available = undefined;
  }
  if (available !== undefined) return { bytes: available / 2n, available, source: 'MemAvailable' };
  const free = BigInt(freemem());
  return { bytes: free / 2n, available: free, source: 'free memory' };
}
