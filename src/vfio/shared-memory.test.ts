/**
 * The descriptor a SharedMemory hands to peers: the same sealed memfd, close-on-exec, but an
 * open file description of its own (status flags set on it do not reach ours; read through
 * /proc/self/fdinfo, a second path).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { it } from 'node:test';
import {
  fdFlags,
  fileSeals,
  MEMFD_SIZE_SEALS,
  O_NONBLOCK,
  setNonBlocking,
} from '../native/index.ts';
import { createMemfdMemory } from './shared-memory.ts';

/** fdinfo `flags:` (octal) of `fd` in this process. */
function fdinfoFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return Number.parseInt(m?.[1] ?? 'x', 8);
}

it('peers get their own description of the sealed memfd, close-on-exec', () => {
  const m = createMemfdMemory('peer-description-test', 1n << 20n);
  try {
    const ours = readdirSync('/proc/self/fd')
      .map(Number)
      .filter((fd) => fd !== m.fd)
      .filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === readlinkSync(`/proc/self/fd/${m.fd}`);
        } catch {
          return false;
        }
      });
    assert.equal(ours.length, 1, 'one descriptor of our own');
    const own = ours[0] as number;
    assert.equal(fdFlags(m.fd).cloexec, true);
    assert.equal(fileSeals(m.fd), MEMFD_SIZE_SEALS);
    setNonBlocking(m.fd, true); // what a peer may do to its descriptor
    assert.ok(fdinfoFlags(m.fd) & O_NONBLOCK);
    assert.equal(fdinfoFlags(own) & O_NONBLOCK, 0, 'ours is untouched');
    m.write(0n, Uint8Array.of(1, 2));
    const back = new Uint8Array(2);
    m.read(0n, back);
    assert.deepEqual(back, Uint8Array.of(1, 2));
  } finally {
    m.close();
  }
});
