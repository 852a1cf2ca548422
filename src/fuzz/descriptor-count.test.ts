/**
 * descriptorCount leaves out what serve holds for an instant (a *.tmp file it writes JSON
 * through, a /proc file it reads) and counts everything else, in a real second process: a
 * count taken while serve rewrote state.json stood one too high, and serve-irq-fds then waited
 * forever for the count to come back to it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { waitFor } from '../../test/support/wait.ts';
import { descriptorCount } from './descriptor-count.ts';

it('leaves out *.tmp and /proc files, counts the rest', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-fdcount-'));
  const script = `
    const fs = require('node:fs');
    fs.openSync(${JSON.stringify(join(dir, 'state.json.1234.tmp'))}, 'w');
    fs.openSync('/proc/meminfo', 'r');
    fs.openSync(${JSON.stringify(join(dir, 'kept.dat'))}, 'w');
    process.stdout.write('open\\n');
    setInterval(() => {}, 60000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor('the child to open its files', () => out.includes('open'));
    const pid = child.pid as number;
    const all = readdirSync(`/proc/${pid}/fd`).length;
    assert.equal(descriptorCount(pid), all - 2);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
