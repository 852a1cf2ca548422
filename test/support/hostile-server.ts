/**
 * The hostile vfio-user server (hostile_server.py) in a second process, and the CLI in a third:
 * one socket per scenario in a fresh directory, and per connection the number of requests the
 * client sent and the peak VmHWM of the client process, as the server saw them. Waits are
 * bounded and only for readiness or for a process to finish; no test asserts a duration.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliArgs, ROOT } from './cli.ts';
import { PYTHON } from './native/python.ts';
import { waitFor, within } from './wait.ts';

const SCRIPT = join(ROOT, 'test/support/hostile_server.py');

/** What the server saw of one connection. */
export interface ConnectionStats {
  readonly scenario: string;
  readonly requests: number;
  /** The client's VmHWM (KiB) at its last request. */
  readonly peakKb: number;
}

export interface HostileServer {
  readonly dir: string;
  socket(scenario: string): string;
  /** Stats of connections to `scenario` so far. */
  connections(scenario: string): ConnectionStats[];
  /** Waits for the `n`th connection to `scenario` to end and returns its stats. */
  connectionEnded(scenario: string, n: number): Promise<ConnectionStats>;
  stop(): Promise<void>;
}

/** Starts hostile_server.py with one socket per scenario. */
export async function startHostile(scenarios: readonly string[]): Promise<HostileServer> {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-hostile-'));
  const child = spawn(PYTHON, [SCRIPT, dir, ...scenarios], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  await waitFor('hostile server readiness', () => {
    if (exited) throw new Error(`hostile server exited: ${err}`);
    return out.startsWith('ready\n');
  });
  const stats = (): ConnectionStats[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as ConnectionStats);
  const connections = (s: string) => stats().filter((c) => c.scenario === s);
  return {
    dir,
    socket: (s) => join(dir, `${s}.sock`),
    connections,
    connectionEnded: (s, n) =>
      waitFor(`connection ${n} to ${s} to end`, () => connections(s)[n - 1]),
    async stop() {
      await stopChild(child, exited);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function stopChild(child: ChildProcess, exited: boolean): Promise<void> {
  if (exited) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await within('hostile_server.py to exit on SIGTERM', gone).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
}

export interface CliRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `vfio-nvlink2 ...args` as its own process. A run still going after `guardMs` is killed
 * (a hang guard for the old code, not a timing assertion: the result then says so).
 */
export function runCli(args: readonly string[], guardMs = 120_000): Promise<CliRun> {
  const child = spawn(process.execPath, cliArgs(...args), {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => {
    const guard = setTimeout(() => {
      stderr += `\n[killed after ${guardMs} ms]`;
      child.kill('SIGKILL');
    }, guardMs);
    child.once('close', (status) => {
      clearTimeout(guard);
      resolve({ status, stdout, stderr });
    });
  });
}
