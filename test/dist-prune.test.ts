/**
 * scripts/dist.mjs pruneDist: tsc never removes the output of a source that was moved or
 * deleted, so it would stay importable from dist/ and be shipped by `npm pack` (the test helpers
 * that left src/**\/testing/ for test/support/ did, in every dist/ built before the move). Only
 * tsc's outputs without a source go: a linked file, a file of another kind and the CLI bundle stay.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pruneDist } from '../scripts/dist.mjs';
import { CLI, cliArgs } from './support/cli.ts';
import { ROOT } from './support/root.ts';

describe('scripts/dist.mjs pruneDist', () => {
  // Inside dist/test/support/, where no source exists: nothing of the build is at stake.
  const dir = join(ROOT, 'dist', 'test', 'support', `prune-${process.pid}`);
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("removes tsc's outputs whose source is gone, and nothing else", () => {
    mkdirSync(join(dir, 'testing'), { recursive: true });
    const gone = ['gone.js', 'gone.js.map', 'gone.d.ts', 'gone.d.ts.map', 'testing/deep.js'].map(
      (name) => join(dir, name),
    );
    for (const path of gone) writeFileSync(path, '// output of a source that was moved\n');
    const kept = [join(dir, 'notes.txt'), join(dir, 'linked.js'), join(dir, 'gone.js.1.tmp')];
    writeFileSync(kept[0] as string, 'not an output of tsc\n');
    symlinkSync(join(ROOT, 'scripts', 'dist.mjs'), kept[1] as string);
    writeFileSync(kept[2] as string, 'a file being written\n');

    assert.deepEqual(pruneDist([dir]).sort(), [...gone].sort());
    for (const path of gone) assert.equal(existsSync(path), false, `${path} is still there`);
    assert.deepEqual(readdirSync(dir).sort(), [
      'gone.js.1.tmp',
      'linked.js',
      'notes.txt',
      'testing',
    ]);
  });

  it('keeps the CLI bundle (no source of its own) and every output of a source', () => {
    cliArgs(); // dist/ built and current
    const cli = join(ROOT, 'dist', 'src', 'cli');
    const chunks = readdirSync(cli).filter((n) => /^bundle-.*\.js$/.test(n));
    assert.ok(chunks.length > 0, 'no bundle chunk in dist/src/cli');
    assert.deepEqual(pruneDist([cli]), []);
    for (const name of [
      CLI,
      join(cli, 'vfio-nvlink2-esm.js'),
      join(cli, 'vfio-nvlink2-serve.cjs'),
      join(cli, 'main.js'),
      join(cli, 'main.d.ts'),
      ...chunks.map((n) => join(cli, n)),
    ])
      assert.ok(existsSync(name), `${name} was removed`);
  });
});
