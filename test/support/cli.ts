/**
 * The `vfio-nvlink2` command as tests run it: the command as it ships (`dist/src/cli/vfio-nvlink2.js`,
 * the esbuild bundle of the compiled CLI) under plain node, which starts in a third of the time of the TypeScript source under tsx. dist/ is
 * rebuilt first if a source is newer (scripts/dist.mjs; scripts/run-tests.mjs has done it
 * already, so inside the runner this is a few stat calls). Every run is bounded by a hang
 * guard: a run still going after it is killed and the test fails saying so (a guard against a
 * hang, not a timing assertion).
 */
import {
  type SpawnSyncOptionsWithBufferEncoding,
  type SpawnSyncOptionsWithStringEncoding,
  spawnSync,
} from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureDist } from '../../scripts/dist.mjs';
import { ROOT } from './root.ts';

export { ROOT };
/** The bundled entry point, the package's bin. */
export const CLI = join(ROOT, 'dist/src/cli/vfio-nvlink2.js');
/** How long a CLI run may take before it is killed as hung (generous: the machine is shared). */
export const HANG_GUARD_MS = 180_000;

/**
 * The preload that kills a CLI process when the test process that started it exits
 * (src/bench/die-with-parent.ts, compiled: the CLI runs under plain node).
 */
const DIE_WITH_PARENT = pathToFileURL(join(ROOT, 'dist/src/bench/die-with-parent.js')).href;

let fresh = false;

/**
 * The node arguments that run `vfio-nvlink2 ...args` (for spawn/spawnSync with
 * `process.execPath`, or a shell that execs it: the process dies with this one), after making
 * sure dist/ is built and current.
 * @throws Error when dist/ cannot be built.
 */
export function cliArgs(...args: string[]): string[] {
  if (!fresh) {
    ensureDist('pipe');
    fresh = true;
  }
  return ['--import', `${DIE_WITH_PARENT}?parent=${process.pid}`, CLI, ...args];
}

export interface CliResult<T> {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: T;
  stderr: string;
}

interface Guard {
  /** Hang guard for this run (ms); HANG_GUARD_MS unless given. */
  guardMs?: number;
}
type TextOptions = Omit<SpawnSyncOptionsWithStringEncoding, 'encoding' | 'timeout'> & Guard;
type ByteOptions = Omit<SpawnSyncOptionsWithBufferEncoding, 'encoding' | 'timeout'> & Guard;

function run(args: readonly string[], options: ByteOptions): CliResult<Buffer> {
  const { guardMs = HANG_GUARD_MS, ...spawnOptions } = options;
  const r = spawnSync(process.execPath, cliArgs(...args), {
    cwd: ROOT,
    maxBuffer: 256 * 1024 * 1024,
    ...spawnOptions,
    timeout: guardMs,
    killSignal: 'SIGKILL',
  });
  if (r.error !== undefined) {
    const why = (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? 'killed as hung' : '';
    throw new Error(`vfio-nvlink2 ${args.join(' ')}: ${r.error.message} ${why}`.trimEnd());
  }
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr.toString() };
}

/**
 * Runs `vfio-nvlink2 ...args` to completion; stdout and stderr as UTF-8 text.
 * @throws Error when the process cannot start or outlives HANG_GUARD_MS (it is then killed).
 */
export function runCli(args: readonly string[], options: TextOptions = {}): CliResult<string> {
  const r = run(args, options);
  return { ...r, stdout: r.stdout.toString() };
}

/** As `runCli`, with stdout as bytes (a DTB, say). */
export function runCliBytes(args: readonly string[], options: ByteOptions = {}): CliResult<Buffer> {
  return run(args, options);
}
