/**
 * The bench's C references (issue 14), each its own process on the peer's CPU: the C echo
 * floor (native/echo-floor.c, built by binding.gyp next to the addon; the same shapes as the
 * Node echo of echo-server.ts) and, when `LVU_GPIO` names one, a built libvfio-user
 * `gpio-pci-idio-16` sample (samples/gpio-pci-idio-16.c: a C vfio-user device server), which
 * the bench reaches with the same vfio-user client as ours. Neither is needed by the tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PACKAGE_ROOT } from '../native/index.ts';
import { type Placement, pinnedCommand } from './cpu-placement.ts';
import { stopChild } from './node-entry.ts';

/** The executable binding.gyp builds from native/echo-floor.c. */
export const ECHO_FLOOR_FILE = join('build', 'Release', 'vfio_nvlink2_echo_floor');

/** A C process listening on `path` until stopped. */
export interface FloorProcess {
  readonly path: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * The C echo floor's executable, built by node-gyp at install beside the addon.
 * @throws Error when it was not built (run `npm install`).
 */
export function echoFloorExecutable(): string {
  const file = join(PACKAGE_ROOT, ECHO_FLOOR_FILE);
  if (!existsSync(file)) {
    throw new Error(`bench: the C echo floor is missing at ${file}; run \`npm install\``);
  }
  return file;
}

function started(child: ChildProcess, path: string, dir: string): FloorProcess {
  return {
    path,
    pid: child.pid ?? -1,
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function launch(
  what: string,
  command: readonly string[],
  placement: Placement,
): { child: ChildProcess; stderr: () => string } {
  const [file, ...args] = [...pinnedCommand(placement), ...command];
  const child = spawn(file!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.once('error', (e) => (stderr += `${what}: ${e.message}\n`));
  return { child, stderr: () => stderr };
}

/**
 * Starts the C echo floor on `placement`'s CPU; resolves once it printed "listening".
 * @throws Error when it is missing, exits, or stays silent for `timeoutMs`, with its stderr.
 */
export function startEchoFloor(placement: Placement, timeoutMs = 10_000): Promise<FloorProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-bench-c-'));
  const path = join(dir, 'echo.sock');
  const { child, stderr } = launch('C echo floor', [echoFloorExecutable(), path], placement);
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      void stopChild(child).then(() => rmSync(dir, { recursive: true, force: true }));
      reject(new Error(`bench: C echo floor ${why}${stderr() ? `:\n${stderr()}` : ''}`));
    };
    const timer = setTimeout(() => fail(`did not listen within ${timeoutMs} ms`), timeoutMs);
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before listening`));
    createInterface({ input: child.stdout! }).once('line', (line) => {
      if (line !== 'listening') {
        fail(`printed an unexpected line: ${line}`);
        return;
      }
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve(started(child, path, dir));
    });
  });
}

/**
 * Starts libvfio-user's gpio-pci-idio-16 sample `binary` (`-M`: no migration region) on
 * `placement`'s CPU; resolves once its socket exists (it prints nothing), polling every 20 ms.
 * @throws Error when it exits first or no socket appears within `timeoutMs`, with its stderr.
 */
export function startLvuGpio(
  binary: string,
  placement: Placement,
  timeoutMs = 10_000,
): Promise<FloorProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-bench-lvu-'));
  const path = join(dir, 'gpio.sock');
  const { child, stderr } = launch('LVU_GPIO', [binary, '-M', path], placement);
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const fail = (why: string) => {
      clearInterval(poll);
      void stopChild(child).then(() => rmSync(dir, { recursive: true, force: true }));
      reject(new Error(`bench: LVU_GPIO ${binary} ${why}${stderr() ? `:\n${stderr()}` : ''}`));
    };
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before listening`));
    const poll = setInterval(() => {
      if (existsSync(path)) {
        clearInterval(poll);
        child.removeAllListeners('exit');
        resolve(started(child, path, dir));
      } else if (Date.now() > deadline) {
        fail(`made no socket at ${path} within ${timeoutMs} ms`);
      }
    }, 20);
  });
}
