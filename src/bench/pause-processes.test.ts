import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { waitFor } from '../../test/support/wait.ts';
import { pauseProcesses, stoppedOrGone } from './pause-processes.ts';

/** A child that sleeps until killed. */
function sleeper() {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  const pid = child.pid;
  if (pid === undefined) throw new Error('sleep did not start');
  return { child, pid };
}

describe('pausing the processes that stand for vCPUs', () => {
  it('a running process is not stopped; after pauseProcesses it is (state T)', () => {
    const { child, pid } = sleeper();
    try {
      assert.equal(stoppedOrGone(pid), false);
      pauseProcesses([pid]);
      assert.equal(stoppedOrGone(pid), true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('one killed while being paused counts as stopped: as a zombie and once reaped', async () => {
    // A grandchild its parent never reaps (the parent execs sleep): a zombie once killed.
    const parent = spawn('sh', ['-c', 'sleep 60 & echo $!; exec sleep 60'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const [line] = (await once(parent.stdout, 'data')) as [Buffer];
      const zombie = Number(line.toString().trim());
      process.kill(zombie, 'SIGKILL');
      const state = () => {
        const stat = readFileSync(`/proc/${zombie}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2).charAt(0);
      };
      await waitFor('the grandchild a zombie', () => state() === 'Z');
      assert.equal(stoppedOrGone(zombie), true);
    } finally {
      parent.kill('SIGKILL');
    }
    // Reaped: no /proc entry, as for a migration's paused destination killed meanwhile (this
    // threw ENOENT, which failed the migration with "--pause-pid: ENOENT" instead of its cause).
    const { child, pid } = sleeper();
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.equal(stoppedOrGone(pid), true);
  });
});
