/**
 * A `serve` a test started dies with the test process, also when that process is killed (the
 * runner ends a test file at its timeout with a signal; no `after` hook runs then): every CLI
 * process a test spawns through test/support/cli.ts asks the kernel for SIGKILL at its
 * parent's death (test/support/die-with-parent.ts, prctl PR_SET_PDEATHSIG).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor, within } from './support/wait.ts';

// Compiled (dist/, plain node) or from source (tsx), as this file runs.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const CHILD = fileURLToPath(
  new URL(`./support/serve-in-child.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url),
);

/** Whether `pid` runs (not gone, not a zombie waiting for its reaper). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('a serve started by a test process does not outlive it', () => {
  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    it(`the test process killed by ${signal}: its serve dies too`, async () => {
      const child = spawn(process.execPath, [...(FROM_SOURCE ? ['--import', 'tsx'] : []), CHILD], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const line = await waitFor('the test process to start serve', () => {
        if (child.exitCode !== null) throw new Error(`the test process exited ${child.exitCode}`);
        return out.includes('\n') && out.slice(0, out.indexOf('\n'));
      });
      const { pid, dir } = JSON.parse(line) as { pid: number; dir: string };
      try {
        assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /vfio-nvlink2\.js\0serve\0/);
        assert.ok(alive(pid), `serve (pid ${pid}) runs`);
        child.kill(signal);
        await within('the test process to exit', exited);
        await waitFor(`serve (pid ${pid}) to die with the test process`, () => !alive(pid));
      } finally {
        if (alive(pid)) process.kill(pid, 'SIGKILL');
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
