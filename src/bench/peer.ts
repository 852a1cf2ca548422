/**
 * The bench's child process (`node dist/src/bench/peer.js`): builds the machine of the built-in
 * platform, serves its first GPU over vfio-user with the real server module, and next to it
 * runs the raw echo responder on the same native socket primitives. It prints one JSON line
 * {pid, echo, device, address} once both listen, and exits when its stdin closes or on SIGTERM.
 * Hosting both endpoints in one process is what makes the floor a fair one: the bench reaches
 * the server and the echo across the very same pair of processes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EchoServer, startEchoServer } from './echo-server.ts';
import { type ServedGpu, serveFirstGpu, serveGraceGpu } from './peer-device.ts';

function main(): void {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-bench-peer-'));
  let echo: EchoServer | null = null;
  let device: ServedGpu | null = null;
  let grace: ServedGpu;
  try {
    echo = startEchoServer(join(dir, 'echo.sock'));
    device = serveFirstGpu(join(dir, 'gpu.sock'));
    grace = serveGraceGpu(join(dir, 'grace.sock'));
  } catch (e) {
    echo?.close();
    device?.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  let stopped = false;
  const shutdown = () => {
    if (stopped) return;
    stopped = true;
    echo.close();
    device.close();
    grace.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.stdin.on('end', shutdown);
  process.stdin.resume();
  const announcement = {
    pid: process.pid,
    echo: echo.path,
    device: device.path,
    address: device.address,
    grace: grace.path,
  };
  process.stdout.write(`${JSON.stringify(announcement)}\n`);
}

main();
