/**
 * How the bench starts and stops its child processes. Starting: another entry of this package
 * run the way this one runs:
 * compiled (`dist/src/.../x.js` under plain node) or from source (`src/.../x.ts` under tsx, as
 * the tests run). The benchmark spawns its peer and `serve` through this, so `npm run bench`
 * measures compiled code and the test exercises the same path from source.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A node command line: the entry file and its arguments. */
export interface NodeCommand {
  readonly file: string;
  readonly args: readonly string[];
}

/** Whether this module runs from TypeScript source (tsx) rather than from dist. */
export function runsFromSource(): boolean {
  return import.meta.url.endsWith('.ts');
}

/** Options of `nodeEntry` and `cliEntry`. */
export interface EntryOptions {
  /**
   * Whether the child dies with this process (./die-with-parent.ts preloaded; default true).
   * False for a start the bench times: the preload loads the addon before the child's first
   * line, which a user's `serve` never pays.
   */
  readonly dieWithParent?: boolean;
}

/**
 * The node command line for `srcRelative` (a path under src/ without extension, e.g.
 * 'cli/main') with `args`; the child dies with this process unless `options` say not.
 */
export function nodeEntry(
  srcRelative: string,
  args: readonly string[] = [],
  options: EntryOptions = {},
): NodeCommand {
  return entryCommand(srcRelative, runsFromSource() ? '.ts' : '.js', args, options);
}

function entryCommand(
  srcRelative: string,
  extension: string,
  args: readonly string[],
  options: EntryOptions,
): NodeCommand {
  const fromSource = runsFromSource();
  const file = fileURLToPath(new URL(`../${srcRelative}${extension}`, import.meta.url));
  const pre = fromSource ? ['--import', 'tsx'] : [];
  if (options.dieWithParent !== false) {
    // `../bench/` (not `./`): this code also runs from the CLI bundle in dist/src/cli/.
    const preload = new URL(
      `../bench/die-with-parent.${fromSource ? 'ts' : 'js'}`,
      import.meta.url,
    );
    pre.push('--import', `${preload.href}?parent=${process.pid}`);
  }
  return { file: process.execPath, args: [...pre, file, ...args] };
}

/**
 * The node command line of `vfio-nvlink2 ...args` as this package runs: the bundled bin
 * (`dist/src/cli/vfio-nvlink2.cjs`, scripts/bundle-cli.mjs) when compiled, so that the bench times
 * the command users start; `src/cli/main.ts` under tsx from source.
 */
export function cliEntry(args: readonly string[] = [], options: EntryOptions = {}): NodeCommand {
  return runsFromSource()
    ? nodeEntry('cli/main', args, options)
    : entryCommand('cli/vfio-nvlink2', '.cjs', args, options);
}

/** SIGTERM (stdin closed first), SIGKILL after 5 s; resolves once `child` has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
