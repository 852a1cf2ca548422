/**
 * Test helpers for the native addon: a python3 peer process on a UNIX socket and promise
 * wrappers over FdWatcher. Used only by *.test.ts in this folder.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FdEvent, FdWatcher } from '../../../src/native/fd-watcher.ts';
import {
  acceptConnection,
  closeFd,
  errnoName,
  listenUnix,
  receiveMessage,
} from '../../../src/native/index.ts';
import { PYTHON } from './python.ts';

/**
 * Resolves when `fd` is readable.
 * @throws Error naming the fd when it is not readable within `timeoutMs` (a hang guard), or
 *   when polling fails.
 */
export function whenReadable(fd: number, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.close();
      reject(new Error(`fd ${fd} was not readable within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const w = new FdWatcher(fd, FdEvent.READABLE, (status) => {
      w.close();
      clearTimeout(timer);
      if (status < 0) reject(new Error(`poll failed on fd ${fd}: ${errnoName(-status)}`));
      else resolve();
    });
  });
}

/** Receives one chunk, waiting for readability first. */
export async function receiveOne(
  fd: number,
  maxBytes: number,
  maxFds: number,
): Promise<{ bytes: Buffer; fds: number[]; truncatedControl: boolean }> {
  for (;;) {
    const r = receiveMessage(fd, maxBytes, maxFds);
    if (r !== null) return r;
    await whenReadable(fd);
  }
}

/** Receives until `n` bytes arrived (collecting fds); throws at end of stream. */
export async function receiveExactly(
  fd: number,
  n: number,
): Promise<{ bytes: Buffer; fds: number[] }> {
  const parts: Buffer[] = [];
  const fds: number[] = [];
  let got = 0;
  while (got < n) {
    const r = await receiveOne(fd, n - got, 16);
    if (r.bytes.length === 0) throw new Error('end of stream');
    parts.push(r.bytes);
    fds.push(...r.fds);
    got += r.bytes.length;
  }
  return { bytes: Buffer.concat(parts), fds };
}

export interface PythonPeer {
  child: ChildProcess;
  /** Our end of the connection (non-blocking, close-on-exec). */
  fd: number;
  /** Resolves with the child's exit code and its stdout. */
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  cleanup(): void;
}

/**
 * Spawns python3 running `script` with `sock` (a connected socket.socket) and `os`/`socket`
 * imported, and accepts its connection on a fresh listening socket.
 */
export async function spawnPythonPeer(script: string): Promise<PythonPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-native-'));
  const path = join(dir, 'peer.sock');
  const listenFd = listenUnix(path);
  const prologue = [
    'import os, socket, sys, mmap, struct',
    'sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
    `sock.connect(${JSON.stringify(path)})`,
  ].join('\n');
  const child = spawn(PYTHON, ['-c', `${prologue}\n${script}`], {
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
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      // A hang guard: a peer still running after 60 s is killed and the wait fails.
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`python peer still running after 60 s; stderr: ${stderr}`));
      }, 60_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    },
  );
  let fd: number | null = null;
  while (fd === null) {
    await whenReadable(listenFd);
    fd = acceptConnection(listenFd);
  }
  closeFd(listenFd);
  return {
    child,
    fd,
    done,
    cleanup() {
      closeFd(fd);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The fds this process has open, by number, with what they point to. */
export function openFds(): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      out.set(Number(name), readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      // the fd readdir itself used, gone by now
    }
  }
  return out;
}
