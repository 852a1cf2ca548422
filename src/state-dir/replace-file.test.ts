/**
 * replaceFile, the one write-then-rename (state files, serve's socket directory, `-o FILE`):
 * nothing planted beside the file is written through, the mode is what was asked whatever the
 * umask, and a failed write leaves the old file and no temporary file. Read back through
 * lstat/readFile, a second path.
 */
import assert from 'node:assert/strict';
import {
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { replaceFile } from './replace-file.ts';
import { readStateFile, writeStateFile } from './state-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'replace-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('replaceFile', () => {
  it('a state file is not written through a hard link planted at <path>.tmp', () => {
    // The old writeStateFile opened `${path}.tmp` O_TRUNC: a link planted there was truncated
    // and written, and the file it names became the state file.
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'not yours\n');
    const path = join(dir, 'machine.state');
    linkSync(victim, `${path}.tmp`);
    writeStateFile(path, 'machine', { lpids: [1] }, true);
    assert.equal(readFileSync(victim, 'utf8'), 'not yours\n');
    assert.deepEqual(readStateFile(path, 'machine'), { lpids: [1] });
    assert.notEqual(lstatSync(path).ino, lstatSync(victim).ino);
  });

  it('gives the mode asked for whatever the umask, and the identity of what it wrote', () => {
    const path = join(dir, 'devices.json');
    const old = process.umask(0o077);
    try {
      const written = replaceFile(path, '[]\n', { mode: 0o644 });
      const st = lstatSync(path);
      assert.equal(st.mode & 0o777, 0o644);
      assert.deepEqual(written, { dev: st.dev, ino: st.ino });
    } finally {
      process.umask(old);
    }
  });

  it('a failed rename leaves the old file and no temporary file', () => {
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    const path = join(sub, 'out');
    mkdirSync(path); // rename(2) of a file over a directory: EISDIR
    assert.throws(() => replaceFile(path, 'x'), { code: 'EISDIR' });
    assert.ok(lstatSync(path).isDirectory());
    assert.deepEqual(readdirSync(sub), ['out']);
  });
});
