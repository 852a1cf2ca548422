/**
 * The `vfio-nvlink2` command as tests run it: the command as it ships (`dist/src/cli/vfio-nvlink2.cjs`,
 * the esbuild bundle of the compiled CLI) under plain node, which starts in a third of the time of the TypeScript source under tsx. dist/ is
 * rebuilt first if a source is newer (scripts/dist.mjs; scripts/run-tests.mjs has done it
 * already, so inside the runner this is a few stat calls). Every run is bounded by a hang
 * guard: a run still going after it is killed and the test fails saying so (a guard against a
 * hang, not a timing assertion).
 *
 * `runCliInProcess` runs the same command line (cli-main.ts, which the bin runs) in the test's
 * own process on captured output: for commands that compute and print (dt, inspect, guest,
 * usage errors), where a spawned process adds only its start-up (~0.25 s of CPU each) and the
 * test keeps every assertion. Each command keeps a spawned test or two for the real process
 * path (the bundle, the exit status through process.exitCode, signals, stdio).
 */
import {
  type SpawnSyncOptionsWithBufferEncoding,
  type SpawnSyncOptionsWithStringEncoding,
  spawnSync,
} from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureDist } from '../../scripts/dist.mjs';
import type { OutputStream } from '../../src/cli/output.ts';
import { ROOT } from './root.ts';
import { within } from './wait.ts';

export { ROOT };
/** The bundled entry point, the package's bin. */
export const CLI = join(ROOT, 'dist/src/cli/vfio-nvlink2.cjs');
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

/** A captured stream: what a command wrote, in order. */
function capture(): OutputStream & { bytes(): Buffer } {
  const chunks: Buffer[] = [];
  return {
    isTTY: false,
    write(data, callback) {
      chunks.push(Buffer.from(data));
      process.nextTick(callback);
      return true;
    },
    bytes: () => Buffer.concat(chunks),
  };
}

/** The in-process runs, one at a time (the output streams are the process's). */
let inProcessQueue: Promise<unknown> = Promise.resolve();

/**
 * As `runCliBytes`, in this process: `vfio-nvlink2 ...args` through runCommandLine with stdout
 * and stderr captured; `status` is the exit status the bin would set, `signal` always null.
 * Runs one at a time; for commands that do not chdir, exit, or take signals (not serve, trace,
 * migrate, fuzz, bench runs).
 * @throws Error when the command has not returned within HANG_GUARD_MS.
 */
export function runCliBytesInProcess(
  args: readonly string[],
  guardMs = HANG_GUARD_MS,
): Promise<CliResult<Buffer>> {
  const run = async (): Promise<CliResult<Buffer>> => {
    // Loaded on first use: the many files that only spawn the CLI do not load the command line.
    const [{ runCommandLine }, { setOutputStreams }] = await Promise.all([
      import('../../src/cli/cli-main.ts'),
      import('../../src/cli/output.ts'),
    ]);
    const stdout = capture();
    const stderr = capture();
    setOutputStreams({ stdout, stderr });
    try {
      const status = await within(
        `vfio-nvlink2 ${args.join(' ')} (in process)`,
        runCommandLine([...args]),
        guardMs,
      );
      return { status, signal: null, stdout: stdout.bytes(), stderr: stderr.bytes().toString() };
    } finally {
      setOutputStreams(null);
    }
  };
  const result = inProcessQueue.then(run, run);
  inProcessQueue = result.catch(() => {});
  return result;
}

/** As `runCli`, in this process (runCliBytesInProcess); stdout as UTF-8 text. */
export async function runCliInProcess(
  args: readonly string[],
  guardMs = HANG_GUARD_MS,
): Promise<CliResult<string>> {
  const r = await runCliBytesInProcess(args, guardMs);
  return { ...r, stdout: r.stdout.toString() };
}
