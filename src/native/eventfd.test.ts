/**
 * eventfdSignal (fs/eventfd.c eventfd_signal from user space): adds to a client's eventfd and
 * never waits, whatever the client did to the file description it shares with us. The checks
 * run in a child process, so that a call that waits (the fault) ends the child at the bound
 * instead of hanging the test; a second process (python3) clears O_NONBLOCK on the shared
 * description, as a client may.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { PYTHON } from '../../test/support/native/python.ts';

// Compiled (dist/, plain node) or from source (tsx), as this file runs.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const INDEX = new URL(`./index.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url).pathname;

const CHILD = `
import { spawnSync } from 'node:child_process';
const n = await import(${JSON.stringify(INDEX)});
const FULL = 0xffff_ffff_ffff_fffen;
const out = {};
const efd = n.eventfdCreate(0, { nonBlocking: true });
// The client's side of the same description makes it blocking.
const py = spawnSync(${JSON.stringify(PYTHON)}, ['-c', 'import os; os.set_blocking(3, True)'], {
  stdio: ['ignore', 'inherit', 'inherit', efd],
});
out.python = py.status;
out.nonBlockingAfter = n.fdFlags(efd).nonBlocking;
out.added = n.eventfdSignal(efd, 1n);
out.read = String(n.eventfdRead(efd));
n.eventfdWrite(efd, FULL);
out.addedToFull = n.eventfdSignal(efd, 1n);
out.readFull = String(n.eventfdRead(efd));
// Room for 1 (so poll says writable) but not for the value: write(2) waits, and is cut short.
n.eventfdWrite(efd, 5n);
out.addedTooMuch = n.eventfdSignal(efd, FULL - 3n);
out.readFive = String(n.eventfdRead(efd));
out.readEmpty = n.eventfdRead(efd);
n.closeFd(efd);
try {
  n.eventfdSignal(efd, 1n);
} catch (e) {
  out.closed = e.code;
}
console.log(JSON.stringify(out));
`;

test('eventfdSignal saturates a full counter and never waits, on a description the client made blocking', () => {
  const r = spawnSync(
    process.execPath,
    [...(FROM_SOURCE ? ['--import', 'tsx'] : []), '--input-type=module', '-e', CHILD],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(r.signal, null, `the child was still waiting at the bound: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    python: 0,
    nonBlockingAfter: false,
    added: true,
    read: '1',
    addedToFull: false,
    readFull: String(0xffff_ffff_ffff_fffen),
    addedTooMuch: false,
    readFive: '5',
    readEmpty: null,
    closed: 'EBADF',
  });
});
