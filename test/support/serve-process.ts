/**
 * The real `vfio-nvlink2 serve` in a second process, for integration tests: started on a fresh
 * socket directory, ready once devices.json exists (written after every socket listens), with
 * helpers to read its state.json, count its open fds and stop it with a signal. Waits are
 * generous and only for readiness or for the server to catch up; no test asserts a duration.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The module, not the folder's index.ts: the fuzzer behind it costs each test file ~0.3 s to load.
import { descriptorCount } from '../../src/fuzz/descriptor-count.ts';
import { type DevicesListEntry, parseDevicesList } from '../../src/serve-dir/index.ts';
import { cliArgs, ROOT } from './cli.ts';
import { waitFor, within } from './wait.ts';

export interface ServeProcess {
  readonly dir: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** stderr so far (server log lines). */
  stderr(): string;
  stdout(): string;
  socket(address: string): string;
  /** devices.json as written (extra members kept), checked by the readers' validator. */
  devices(): DevicesListEntry[];
  state(): ServerState;
  /** Open descriptors of the server process (/proc/<pid>/fd), less the ones it holds for an instant (descriptorCount). */
  fdCount(): number;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ServerState {
  pid: number;
  partitions: { pid: number; lpid: number; devices: string[] }[];
  lpidsInUse: number[];
  firmware: {
    phbId: string;
    bdfMap: { index: number; bdf: string; lpid: number; valid: boolean }[];
    pidMap: { index: number; refs: number }[];
    atsd: { index: number; lpid: number }[];
  }[];
  /** Device memory populated (bytes) against the budget. */
  memory: {
    budget: number | null;
    touched: number;
    refused: number;
    gpus: { address: string; gpuRam: number; bars: number }[];
  };
}

export { waitFor } from './wait.ts';

/**
 * Spawns `vfio-nvlink2 serve ...args` (the compiled build, see ./cli.ts) and waits for readiness; with
 * `nofile`, under that RLIMIT_NOFILE (soft and hard, through the shell's `ulimit -n` and exec,
 * so the pid is the server's); with `uid` (root only), as that user (`dir` must be its own).
 */
export async function startServe(
  args: string[] = [],
  options: { dir?: string; readyFile?: string; nofile?: number; uid?: number } = {},
): Promise<ServeProcess> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'vfio-nvlink2-serve-'));
  const argv = [process.execPath, ...cliArgs('serve', '--socket-dir', dir, ...args)];
  const [command, ...rest] =
    options.nofile === undefined
      ? argv
      : ['/bin/sh', '-c', 'ulimit -n "$0" && exec "$@"', String(options.nofile), ...argv];
  const child = spawn(command as string, rest, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // As another user (root only): its uid and gid, no supplementary groups.
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
  });
  let err = '';
  let out = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  await waitFor('serve readiness', () => {
    if (dead) throw new Error(`serve exited early: ${err}`);
    return existsSync(options.readyFile ?? join(dir, 'devices.json')) && out.includes('ready');
  });
  const pid = child.pid ?? -1;
  return {
    dir,
    child,
    pid,
    stderr: () => err,
    stdout: () => out,
    socket: (address) => join(dir, `${address}.sock`),
    devices: () => {
      const path = join(dir, 'devices.json');
      const text = readFileSync(path, 'utf8');
      parseDevicesList(path, text);
      return JSON.parse(text) as DevicesListEntry[];
    },
    state: () => JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as ServerState,
    fdCount: () => descriptorCount(pid),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (!dead) child.kill(signal);
      const code = await within(`serve (pid ${pid}) to exit on ${signal}`, exited).catch((e) => {
        child.kill('SIGKILL');
        throw e;
      });
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/** The first GPU and the first bridge of the built-in platform. */
export const GPU = '0002:01:00.0';
export const BRIDGE = '0000:00:00.0';

/**
 * Connects to `address` of `serve`, retrying while the server still finishes an earlier
 * session of ours there (it refuses a second client with EBUSY until the first is released).
 */
export async function connectWhenFree(
  serve: ServeProcess,
  address: string,
): Promise<import('../../src/vfio-user/index.ts').VfioUserClient> {
  const { VfioUserClient } = await import('../../src/vfio-user/index.ts');
  for (let attempt = 0; ; attempt++) {
    try {
      return await VfioUserClient.connect(serve.socket(address));
    } catch (e) {
      if (attempt > 1000) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
