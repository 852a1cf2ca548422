/**
 * The files of a socket directory are input from whoever can write there: `guest` and `inspect`
 * (real processes, against a real serve) read devices.json and state.json only as regular files
 * of bounded size. A FIFO (which would block open or read without end), a symlink to /dev/zero
 * (bytes without end) or a directory is refused in one line naming the file; exit 1.
 * `inspect --socket-dir` of a directory without sockets is one line too.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readUntrustedFile } from '../src/serve-dir/index.ts';
import { VfioError } from '../src/vfio/index.ts';
import { runCli } from './support/cli.ts';
import { GPU, type ServeProcess, startServe } from './support/serve-process.ts';

/** Hang guard of each CLI run: a reader blocked on a FIFO is killed and the test fails. */
const GUARD_MS = 60_000;

let serve: ServeProcess;
let root: string;
before(async () => {
  serve = await startServe();
  root = mkdtempSync(join(tmpdir(), 'socket-dir-files-'));
});
after(async () => {
  await serve.stop();
  rmSync(root, { recursive: true, force: true });
});

/** A directory holding a link to serve's GPU socket (named as serve names it) and `plant`. */
function dirWith(name: string, file: string, plant: (path: string) => void): string {
  const dir = join(root, name);
  mkdirSync(dir);
  symlinkSync(serve.socket(GPU), join(dir, `${GPU}.sock`));
  plant(join(dir, file));
  return dir;
}

function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', [path]);
  assert.equal(r.status, 0, `mkfifo ${path}: ${r.stderr}`);
}

const plants: [string, (path: string) => void, RegExp][] = [
  ['a FIFO', mkfifo, /is a FIFO, not a regular file/],
  ['a symlink to /dev/zero', (p) => symlinkSync('/dev/zero', p), /is a symbolic link/],
  ['a directory', (p) => mkdirSync(p), /is a directory, not a regular file/],
];

/** Exactly one line on stderr, matching `what` and naming `path`; exit 1. */
function assertOneLine(r: { status: number | null; stderr: string }, path: string, what: RegExp) {
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.ok(lines[0]?.includes(path), r.stderr);
  assert.match(lines[0] ?? '', what);
}

describe('files of a socket directory', () => {
  for (const [kind, plant, what] of plants) {
    it(`guest --socket-dir: devices.json ${kind} is one line, exit 1`, () => {
      const dir = dirWith(`guest-${kind.replace(/\W+/g, '-')}`, 'devices.json', plant);
      const r = runCli(['guest', '--socket-dir', dir], { guardMs: GUARD_MS });
      assertOneLine(r, join(dir, 'devices.json'), what);
    });

    it(`inspect --socket-dir: state.json ${kind} is one line, exit 1`, () => {
      const dir = dirWith(`inspect-${kind.replace(/\W+/g, '-')}`, 'state.json', plant);
      const r = runCli(['inspect', '--socket-dir', dir], { guardMs: GUARD_MS });
      assertOneLine(r, join(dir, 'state.json'), what);
    });
  }

  it('inspect SOCKET: a devices.json FIFO beside a socket of another name is one line', () => {
    const dir = join(root, 'named');
    mkdirSync(dir);
    symlinkSync(serve.socket(GPU), join(dir, 'gpu.sock'));
    mkfifo(join(dir, 'devices.json'));
    const r = runCli(['inspect', join(dir, 'gpu.sock')], { guardMs: GUARD_MS });
    assertOneLine(r, join(dir, 'devices.json'), /is a FIFO/);
  });

  it('inspect --socket-dir of a directory without sockets: one line, exit 1', () => {
    const dir = join(root, 'empty');
    mkdirSync(dir);
    const r = runCli(['inspect', '--socket-dir', dir], { guardMs: GUARD_MS });
    assertOneLine(r, dir, /no device sockets \(\*\.sock\) in/);
    assert.equal(r.stdout, '');
  });

  it('a file growing past the bound is refused; one within it reads whole', () => {
    const path = join(root, 'grown.json');
    writeFileSync(path, 'x'.repeat(100));
    assert.equal(readUntrustedFile(path, 100), 'x'.repeat(100));
    assert.throws(
      () => readUntrustedFile(path, 99),
      (e: unknown) => e instanceof VfioError && /grown\.json: 100 bytes, at most 99/.test(e.reason),
    );
  });
});
