/**
 * `serve` start-up and resident memory on the built-in 6-GPU platform. The clock starts just
 * before spawning `vfio-nvlink2 serve --socket-dir <fresh dir>` (so node's own start-up is
 * included, as a user or a VMM launcher sees it) and stops when every socket listed in the
 * dir's devices.json accepts a connect(2). Each connection is closed at once without a single
 * message, so nothing in the server is touched; the server's VmRSS (/proc/<pid>/status) is then
 * read after a short settle, with every GPU RAM aperture and ATSD page present and untouched.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeFd, connectUnix } from '../native/index.ts';
import { servedDevices } from '../serve-dir/index.ts';
import { cliEntry, stopChild } from './node-entry.ts';
import { nowNs } from './stats.ts';

/**
 * One start of `serve`: milliseconds to every socket accepting, sockets, and VmRSS after the settle
 * (MB).
 */
export interface StartupRun {
  /** Spawn to every socket accepting, in milliseconds. */
  readonly ms: number;
  readonly sockets: number;
  /** VmRSS after the settle, in MB (10^6 bytes). */
  readonly rssMb: number;
  /** A bare node's spawn to exit, measured just before this run. */
  readonly bareNodeMs: number;
}

/**
 * How `serve`'s start is measured: runs, settle before reading VmRSS (ms), and a per-run timeout
 * (ms).
 */
export interface StartupPlan {
  readonly runs: number;
  /** Wait between the last accept and reading VmRSS. */
  readonly settleMs: number;
  /** Give up on one run after this long. */
  readonly timeoutMs: number;
}

const POLL_MS = 2;

/**
 * Socket paths listed in `dir`/devices.json, or null while it does not exist yet.
 * @throws VfioError EINVAL for a list that is not serve's (serve-dir/devices-list.ts).
 */
function listedSockets(dir: string): string[] | null {
  if (!existsSync(join(dir, 'devices.json'))) return null;
  return servedDevices(dir).map((d) => d.socket);
}

function accepts(path: string): boolean {
  try {
    closeFd(connectUnix(path));
    return true;
  } catch {
    return false;
  }
}

/** VmRSS of `pid` in MB (10^6 bytes). @throws Error when /proc has no such line. */
export function residentMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return (Number(m[1]) * 1024) / 1e6;
}

/**
 * Waits until every socket `dir`/devices.json lists accepts a connect(2), polling every 2 ms.
 * @returns milliseconds from `t0` (nowNs) and the number of sockets
 * @throws Error when `child` exits first or `timeoutMs` passes (with `output()`).
 */
export async function untilAccepting(
  dir: string,
  child: ChildProcess,
  t0: number,
  timeoutMs: number,
  output: () => string,
): Promise<{ ms: number; sockets: number }> {
  const ready = new Set<string>();
  for (;;) {
    const sockets = listedSockets(dir);
    if (sockets !== null && sockets.length > 0) {
      for (const s of sockets) if (!ready.has(s) && accepts(s)) ready.add(s);
      if (ready.size === sockets.length) return { ms: (nowNs() - t0) / 1e6, sockets: ready.size };
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `serve exited (${child.exitCode ?? child.signalCode}) before listening:\n${output()}`,
      );
    }
    if ((nowNs() - t0) / 1e6 > timeoutMs) {
      throw new Error(`serve: not every socket accepted within ${timeoutMs} ms:\n${output()}`);
    }
    await sleep(POLL_MS);
  }
}

async function oneRun(plan: StartupPlan): Promise<StartupRun> {
  const bare = await bareNodeMs();
  const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-bench-'));
  // Timed: started as a user starts it (no die-with-parent preload; stopped after each run).
  const cmd = cliEntry(['serve', '--socket-dir', dir], { dieWithParent: false });
  let output = '';
  const t0 = nowNs();
  const child = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  try {
    const { ms, sockets } = await untilAccepting(dir, child, t0, plan.timeoutMs, () => output);
    await sleep(plan.settleMs);
    const pid = child.pid;
    if (pid === undefined) throw new Error('serve has no pid');
    return { ms, sockets, rssMb: residentMb(pid), bareNodeMs: bare };
  } finally {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Spawn to exit (ms) of a node running an empty ES module: the part of every start-up that no code
 * of ours can shorten, measured next to each `serve` run as context.
 */
export async function bareNodeMs(): Promise<number> {
  const t0 = nowNs();
  const child = spawn(process.execPath, ['--input-type=module', '-e', ''], { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => resolve());
  });
  return (nowNs() - t0) / 1e6;
}

/** `plan.runs` fresh `serve` processes, one after the other, each after a bare node. */
export async function measureServeStartup(
  plan: StartupPlan,
  progress: (done: number) => void,
): Promise<StartupRun[]> {
  const runs: StartupRun[] = [];
  for (let i = 0; i < plan.runs; i++) {
    runs.push(await oneRun(plan));
    progress(i + 1);
  }
  return runs;
}
