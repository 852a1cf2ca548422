/**
 * One vocabulary for a tree file that cannot be read: every command that reads one (`dt show`,
 * `dt doctor`, `dt diff`, `inspect --dt`, `topology --dt`, `serve --dt`) prints the same
 * `DT_PARSE: FILE: cannot read (ENOENT)` line. Exit 1, except `dt diff`, whose 1 means "the
 * trees differ": its trouble is 2, as diff(1)'s.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './support/cli.ts';

let dir: string;
let missing: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vn-missing-tree-'));
  missing = join(dir, 'no-such.dtb');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('a tree file that does not exist', () => {
  const cases: [string, (f: string) => string[], number][] = [
    ['dt show', (f) => ['dt', 'show', f, '/'], 1],
    ['dt doctor', (f) => ['dt', 'doctor', f], 1],
    ['dt diff', (f) => ['dt', 'diff', f, f], 2],
    ['inspect', (f) => ['inspect', '--dt', f], 1],
    ['topology', (f) => ['topology', '--dt', f, '--dot'], 1],
    ['serve', (f) => ['serve', '--dt', f, '--socket-dir', join(dir, 'sockets')], 1],
  ];
  for (const [command, args, exit] of cases) {
    it(`${command}: DT_PARSE, exit ${exit}`, () => {
      const r = runCli(args(missing));
      assert.equal(
        r.stderr,
        `vfio-nvlink2: ${command}: DT_PARSE: ${missing}: cannot read (ENOENT)\n`,
      );
      assert.equal(r.status, exit);
    });
  }
});
