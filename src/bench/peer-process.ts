/**
 * The bench's other process, seen from the bench: spawns the peer entry (peer.ts), waits for
 * the one JSON line announcing its sockets, and stops it. Both the floor and the server
 * measurements talk to this one child, so they cross the same pair of processes.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseJson } from '../text/index.ts';
import { type Placement, pinnedCommand } from './cpu-placement.ts';
import { nodeEntry, stopChild } from './node-entry.ts';

/** What the peer prints once both endpoints listen. */
export interface PeerAnnouncement {
  readonly pid: number;
  /** The raw echo responder's socket (the floor). */
  readonly echo: string;
  /** The vfio-user socket of the served GPU. */
  readonly device: string;
  /** The GPU's PCI address. */
  readonly address: string;
  /** The vfio-user socket of a Grace Hopper GPU (nvgrace-gpu), for the usemem mapping. */
  readonly grace: string;
}

/** The bench's other process, running: its announcement, and `stop`. */
export interface PeerProcess extends PeerAnnouncement {
  stop(): Promise<void>;
}

function isAnnouncement(v: unknown): v is PeerAnnouncement {
  const a = v as Partial<PeerAnnouncement> | null;
  return (
    typeof a?.pid === 'number' &&
    typeof a.echo === 'string' &&
    typeof a.device === 'string' &&
    typeof a.address === 'string' &&
    typeof a.grace === 'string'
  );
}

/**
 * Starts the peer (on `placement`'s CPU) and resolves once it listens.
 * @throws Error when it exits or stays silent for `timeoutMs`, with its stderr.
 */
export function startPeer(placement: Placement, timeoutMs = 30_000): Promise<PeerProcess> {
  const cmd = nodeEntry('bench/peer');
  const [file, ...args] = [...pinnedCommand(placement), cmd.file, ...cmd.args];
  const child = spawn(file!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      void stopChild(child);
      reject(new Error(`bench peer ${why}${stderr ? `:\n${stderr}` : ''}`));
    };
    const timer = setTimeout(() => fail(`did not start within ${timeoutMs} ms`), timeoutMs);
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before listening`));
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      let parsed: unknown;
      try {
        parsed = parseJson(line);
      } catch {
        parsed = null;
      }
      if (!isAnnouncement(parsed)) {
        fail(`printed an unexpected line: ${line}`);
        return;
      }
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({ ...parsed, stop: () => stopChild(child) });
    });
  });
}
