/**
 * How to start another entry of this package in a child process the way this one runs:
 * compiled (`dist/src/.../x.js` under plain node) or from source (`src/.../x.ts` under tsx, as
 * the tests run). The benchmark spawns its peer and `serve` through this, so `npm run bench`
 * measures compiled code and the test exercises the same path from source.
 */
import { fileURLToPath } from 'node:url';

export interface NodeCommand {
  readonly file: string;
  readonly args: readonly string[];
}

/** Whether this module runs from TypeScript source (tsx) rather than from dist. */
export function runsFromSource(): boolean {
  return import.meta.url.endsWith('.ts');
}

/**
 * The node command line for `srcRelative` (a path under src/ without extension, e.g.
 * 'cli/main') with `args`.
 */
export function nodeEntry(srcRelative: string, args: readonly string[] = []): NodeCommand {
  const fromSource = runsFromSource();
  const file = fileURLToPath(
    new URL(`../${srcRelative}${fromSource ? '.ts' : '.js'}`, import.meta.url),
  );
  const pre = fromSource ? ['--import', 'tsx'] : [];
  return { file: process.execPath, args: [...pre, file, ...args] };
}
