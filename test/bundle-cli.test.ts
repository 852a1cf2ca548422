/**
 * scripts/bundle-cli.mjs keeps the chunks of the build before it: a command that started from
 * that build (a test's CLI, a user's `serve`) loads its command's chunk only when it runs, so
 * deleting those chunks at a rebuild made it fail with ERR_MODULE_NOT_FOUND. Chunks two builds
 * old go.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { cliArgs } from './support/cli.ts';
import { ROOT } from './support/root.ts';

const OUT = join(ROOT, 'dist/src/cli');

test("a rebuild keeps the previous build's chunks and removes older ones", () => {
  cliArgs(); // dist/ built and current
  const previous = join(OUT, 'bundle-chunk-PREVIOUSBUILD.js');
  const older = join(OUT, 'bundle-chunk-OLDERBUILD.js');
  writeFileSync(previous, 'export {};\n');
  writeFileSync(older, 'export {};\n');
  // As if the build before this one had written `previous` (and `older` came before that).
  const list = join(OUT, '.bundle-chunks.json');
  const last = JSON.parse(readFileSync(list, 'utf8')) as string[];
  writeFileSync(list, JSON.stringify([...last, 'bundle-chunk-PREVIOUSBUILD.js']));
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/bundle-cli.mjs')], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(previous), 'the previous build’s chunk is kept');
  assert.ok(!existsSync(older), 'a chunk two builds old is removed');
  const now = JSON.parse(readFileSync(list, 'utf8')) as string[];
  for (const name of now) assert.ok(existsSync(join(OUT, name)), `${name} written`);
  const cli = spawnSync(process.execPath, cliArgs('dt', 'generate', '--dts'), { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  // The next build drops `previous` (two builds old by then).
  const again = spawnSync(process.execPath, [join(ROOT, 'scripts/bundle-cli.mjs')], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(again.status, 0, again.stderr);
  assert.ok(!existsSync(previous), 'removed once two builds old');
});
