/** Runs map-child.ts in a second process with `fd` as its fd 3 (test support). */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// Compiled (dist/, plain node) or from source (tsx), as this module runs.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const CHILD = fileURLToPath(new URL(`./map-child.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url));

/** @returns the child's stdout. @throws Error with its stderr when it fails. */
export function inSecondProcess(fd: number, args: readonly string[]): string {
  const r = spawnSync(
    process.execPath,
    [...(FROM_SOURCE ? ['--import', 'tsx'] : []), CHILD, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe', fd],
      encoding: 'utf8',
    },
  );
  if (r.status !== 0)
    throw new Error(`map-child ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
