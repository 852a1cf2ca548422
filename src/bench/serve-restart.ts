/**
 * `serve --state-dir` restarted after kill -9, and the cost of `--sync`. A first server on a
 * fresh state directory gets state worth restoring (a GPU's GPU RAM written through
 * REGION_WRITE, its config space), then is killed with SIGKILL while its client is connected.
 * Each run then spawns `serve --socket-dir D --state-dir S` again, clock started just before the
 * spawn (node's own start-up included, as in serve-startup.ts), stopped when every socket listed
 * in the devices.json it writes accepts (the dead server's is removed first), and kills it with
 * SIGKILL for the next run. Last, 4 KiB REGION_WRITEs
 * to GPU RAM are timed on a restarted server without and with `--sync` (fdatasync per write).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VfioUserClient } from '../vfio-user/index.ts';
import { cliEntry } from './node-entry.ts';
import { bareNodeMs, type StartupPlan, untilAccepting } from './serve-startup.ts';
import { nowNs } from './stats.ts';

/** A GPU of the built-in platform the first server's client writes. */
const GPU = '0002:01:00.0';
const GPU_RAM_REGION = 9;
const CONFIG_REGION = 7;
/** Written into GPU RAM before the kill: state the restart must bring back (bytes). */
const POPULATED_BYTES = 16 * 1024 * 1024;
const WRITE_BYTES = 4096;

/** The restart runs (ms, spawn to every socket accepting) and the --sync write timings (µs). */
export interface RestartResult {
  readonly restartMs: number[];
  /** A bare node's spawn to exit, measured before each run. */
  readonly bareNodeMs: number[];
  readonly sockets: number;
  /** 4 KiB REGION_WRITE to GPU RAM, round trip, without --sync (µs each). */
  readonly writeUs: number[];
  /** The same with --sync. */
  readonly syncWriteUs: number[];
}

interface Started {
  readonly child: ChildProcess;
  readonly ms: number;
  readonly sockets: number;
}

async function startServe(
  socketDir: string,
  stateDir: string,
  extra: readonly string[],
  timeoutMs: number,
): Promise<Started> {
  // Timed: started as a user starts it (no die-with-parent preload; stopped after each run).
  const cmd = cliEntry(['serve', '--socket-dir', socketDir, '--state-dir', stateDir, ...extra], {
    dieWithParent: false,
  });
  let output = '';
  const t0 = nowNs();
  const child = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  try {
    const { ms, sockets } = await untilAccepting(socketDir, child, t0, timeoutMs, () => output);
    return { child, ms, sockets };
  } catch (e) {
    await kill9(child);
    throw e;
  }
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

/** `count` 4 KiB REGION_WRITEs to GPU RAM, each timed (µs). */
async function timeWrites(socket: string, count: number): Promise<number[]> {
  const client = await VfioUserClient.connect(socket);
  try {
    const data = new Uint8Array(WRITE_BYTES).fill(0x5a);
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const t0 = nowNs();
      await client.regionWrite(GPU_RAM_REGION, BigInt(i % 256) * BigInt(WRITE_BYTES), data);
      out.push((nowNs() - t0) / 1e3);
    }
    return out;
  } finally {
    client.close();
  }
}

/**
 * The restart figures' measurements (see the module header): `plan.runs` restarts, then
 * `writes` timed writes without and with --sync.
 * @throws Error when a server does not come up or a client request fails.
 */
export async function measureServeRestart(
  plan: StartupPlan,
  writes: number,
  progress: (message: string) => void,
): Promise<RestartResult> {
  const root = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-bench-state-'));
  const socketDir = join(root, 'sockets');
  const stateDir = join(root, 'state');
  try {
    const first = await startServe(socketDir, stateDir, [], plan.timeoutMs);
    const client = await VfioUserClient.connect(join(socketDir, `${GPU}.sock`));
    const chunk = new Uint8Array(1024 * 1024).fill(0xa5);
    for (let at = 0; at < POPULATED_BYTES; at += chunk.length)
      await client.regionWrite(GPU_RAM_REGION, BigInt(at), chunk);
    await client.regionWrite(CONFIG_REGION, 4n, new Uint8Array([0x06, 0x00]));
    await kill9(first.child);
    client.close();
    const restartMs: number[] = [];
    const bare: number[] = [];
    let sockets = 0;
    for (let i = 0; i < plan.runs; i++) {
      bare.push(await bareNodeMs());
      // The killed server's list: without it the clock stops on this server's, as in start-up
      // (polling 18 dead sockets every 2 ms meanwhile would take CPU from the server starting).
      rmSync(join(socketDir, 'devices.json'), { force: true });
      const s = await startServe(socketDir, stateDir, [], plan.timeoutMs);
      restartMs.push(s.ms);
      sockets = s.sockets;
      await kill9(s.child);
      progress(`serve restart run ${i + 1}/${plan.runs} done`);
    }
    const timed = async (extra: string[]) => {
      const s = await startServe(socketDir, stateDir, extra, plan.timeoutMs);
      try {
        return await timeWrites(join(socketDir, `${GPU}.sock`), writes);
      } finally {
        await kill9(s.child);
      }
    };
    const writeUs = await timed([]);
    const syncWriteUs = await timed(['--sync']);
    return { restartMs, bareNodeMs: bare, sockets, writeUs, syncWriteUs };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
