/**
 * Out of fds (issue 7 item 6), against `serve` in a second process whose soft RLIMIT_NOFILE
 * is lowered (prlimit) to a few more than it has open: clients that take every fd make accept
 * fail with EMFILE. The server stops accepting, logs it once (not once per attempt), does not
 * spin (its CPU time over a second stays small: a resource bound, generous, not a
 * speed limit), keeps serving the session it already has, and accepts again once fds return.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, it } from 'node:test';
import { closeFd, connectUnix } from '../src/native/index.ts';
import type { VfioUserClient } from '../src/vfio-user/index.ts';
import {
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';

const OTHER_GPU = '0003:02:00.0';
const BAR0 = 0;
/** Clock ticks per second of /proc/PID/stat utime and stime (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

let serve: ServeProcess;
let session: VfioUserClient;
before(async () => {
  serve = await startServe();
  session = await connectWhenFree(serve, OTHER_GPU);
  // BAR0's memory (a memfd) exists before fds run out; page 0 holds registers, not memory
  await session.regionRead(BAR0, 0x1000n, 4);
});
after(async () => {
  session.close();
  await serve.stop();
});

/** utime + stime of the server in seconds (/proc/PID/stat fields 14 and 15). */
function serverCpuSeconds(): number {
  const stat = readFileSync(`/proc/${serve.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

const acceptLines = () =>
  serve
    .stderr()
    .split('\n')
    .filter((l) => l.includes('accept'));

it('at EMFILE the server pauses accepting, logs once, stays idle, and recovers when fds return', async (t) => {
  // A few fds to spare, then clients take them all; the rest wait in the listen backlog.
  execFileSync('prlimit', [`--pid=${serve.pid}`, `--nofile=${serve.fdCount() + 6}:`]);
  const clients: number[] = [];
  try {
    for (let i = 0; i < 40; i++) {
      try {
        clients.push(connectUnix(serve.socket(GPU)));
      } catch {
        break; // EAGAIN: the backlog is full
      }
    }
    await waitFor('accept to fail', () => acceptLines().length > 0);
    const cpu = serverCpuSeconds();
    await new Promise((r) => setTimeout(r, 1000));
    const used = serverCpuSeconds() - cpu;
    assert.ok(used < 0.3, `the server used ${used.toFixed(2)} s of CPU in 1 s while out of fds`);
    const lines = acceptLines();
    t.diagnostic(
      `out of fds for 1 s: ${used.toFixed(2)} s of server CPU, ${lines.length} log lines`,
    );
    assert.equal(lines.length, 1, lines.slice(0, 5).join('\n'));
    assert.match(lines[0]!, /0002:01:00\.0: accept on .* failed \(EMFILE\)/);
    // The session it already had is served all along.
    assert.equal((await session.regionRead(BAR0, 0x1000n, 4)).length, 4);
  } finally {
    for (const fd of clients) closeFd(fd);
  }
  // fds come back as the server sees those clients leave: it accepts again, logs that once,
  // and a new client is served.
  const next = await connectWhenFree(serve, GPU);
  assert.equal((await next.regionRead(BAR0, 0n, 4)).length, 4);
  next.close();
  await waitFor('the recovery line', () => acceptLines().length === 2);
  assert.match(acceptLines()[1]!, /0002:01:00\.0: accepting again on .* \(\d+ failed attempts/);
});
