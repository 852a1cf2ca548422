/**
 * A `serve` a test started dies with the test process, also when that process is killed (the
 * runner ends a test file at its timeout with a signal; no `after` hook runs then): every CLI
 * process a test spawns through test/support/cli.ts asks the kernel for SIGKILL at its
 * parent's death (src/bench/die-with-parent.ts, prctl PR_SET_PDEATHSIG). So does a `serve`
 * the bench or the fuzzer started, when they are killed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { alive } from './support/proc.ts';
import { waitFor, within } from './support/wait.ts';

// Compiled (dist/, plain node) or from source (tsx), as this file runs.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const child = (name: string) =>
  fileURLToPath(new URL(`./support/${name}.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url));
/** Who starts the serve: a test (test/support/cli.ts), or the bench and the fuzzer (cliEntry). */
const STARTERS = [
  ['a test process', child('serve-in-child')],
  ['the bench or the fuzzer', child('entry-serve-in-child')],
] as const;

describe('a serve does not outlive the process that started it', () => {
  for (const [starter, path] of STARTERS)
    for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
      it(`${starter} killed by ${signal}: its serve dies too`, async () => {
        const parent = spawn(
          process.execPath,
          [...(FROM_SOURCE ? ['--import', 'tsx'] : []), path],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let out = '';
        parent.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        const exited = new Promise((resolve) => parent.once('exit', resolve));
        const line = await waitFor(`${starter} to start serve`, () => {
          if (parent.exitCode !== null) throw new Error(`${starter} exited ${parent.exitCode}`);
          return out.includes('\n') && out.slice(0, out.indexOf('\n'));
        });
        const { pid, dir } = JSON.parse(line) as { pid: number; dir: string };
        try {
          // Spawned is not yet exec'd: wait for serve's own command line.
          await waitFor(`pid ${pid} to run serve`, () =>
            /vfio-nvlink2\.cjs\0serve\0/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8')),
          );
          assert.ok(alive(pid), `serve (pid ${pid}) runs`);
          parent.kill(signal);
          await within(`${starter} to exit`, exited);
          await waitFor(`serve (pid ${pid}) to die with ${starter}`, () => !alive(pid));
        } finally {
          if (alive(pid)) process.kill(pid, 'SIGKILL');
          parent.kill('SIGKILL');
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
});
