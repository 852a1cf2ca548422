/**
 * Where the two processes of the wire measurements run. On this 2-vCPU VM a round trip between
 * processes on one CPU is two context switches (~11 µs); between processes on different CPUs
 * each hop also wakes an idle vCPU (~50 µs, with millisecond outliers), and the scheduler picks
 * either placement at random — so unpinned runs flip between two floors and two ratios. The
 * bench therefore pins the bench process and the peer to one CPU (the last) while it measures
 * them, which keeps the floor steady and leaves the server's own CPU cost in plain view; the
 * placement is recorded with the results. Uses taskset(1) (util-linux); without it, or with
 * `--no-pin`, nothing is pinned and the results say so.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** Where the bench's other process runs: pinned to a CPU, or not, and why not. */
export type Placement =
  | { readonly pinned: true; readonly cpu: number }
  | { readonly pinned: false; readonly reason: string };

/** The `taskset` prefix that starts a command on `placement`'s CPU (empty when unpinned). */
export function pinnedCommand(placement: Placement): string[] {
  return placement.pinned ? ['taskset', '-c', String(placement.cpu)] : [];
}

function allowedCpus(pid: number): string {
  const m = /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no Cpus_allowed_list in /proc/${pid}/status`);
  return m[1]!;
}

function setAffinity(pid: number, list: string): string | null {
  const r = spawnSync('taskset', ['-a', '-p', '-c', list, String(pid)], { encoding: 'utf8' });
  if (r.error) return `taskset unavailable (${r.error.message})`;
  if (r.status !== 0) return `taskset failed: ${r.stderr.trim()}`;
  return null;
}

/**
 * Pins every thread of this process to the last CPU and returns the placement and how to undo
 * it; `wanted` false (--no-pin) or a failing taskset leaves everything where it was.
 */
export function pinThisProcess(wanted: boolean): { placement: Placement; restore(): void } {
  const none = { restore() {} };
  if (!wanted) return { ...none, placement: { pinned: false, reason: '--no-pin' } };
  const cpu = cpus().length - 1;
  const before = allowedCpus(process.pid);
  const failed = setAffinity(process.pid, String(cpu));
  if (failed !== null) return { ...none, placement: { pinned: false, reason: failed } };
  return {
    placement: { pinned: true, cpu },
    restore() {
      setAffinity(process.pid, before);
    },
  };
}

/** One line for people: where the wire measurements ran. */
export function describePlacement(p: Placement): string {
  return p.pinned
    ? `bench and peer pinned to CPU ${p.cpu} for the wire figures (taskset)`
    : `bench and peer not pinned (${p.reason}): the scheduler chose their CPUs`;
}
