/**
 * dist/ counts as stale after a `tsc -p tsconfig.test.json --noEmit` that saw changed sources:
 * that run writes the build info (newer than the sources) without the JavaScript, and lists the
 * files it did not emit. Build info files written here, in the shape TypeScript 5 writes them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pendingEmit } from '../scripts/dist.mjs';

const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-dist-stale-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function info(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
}

describe('pendingEmit (scripts/dist.mjs)', () => {
  it('a build info listing files pending emit (a --noEmit run) is stale', () => {
    const path = info('noemit', JSON.stringify({ affectedFilesPendingEmit: [[665, 19]] }));
    assert.equal(pendingEmit(path), true);
  });
  it('one that lists none is not', () => {
    assert.equal(pendingEmit(info('emitted', JSON.stringify({ version: '5.9.3' }))), false);
    assert.equal(
      pendingEmit(info('empty', JSON.stringify({ affectedFilesPendingEmit: [] }))),
      false,
    );
  });
  it('a missing or damaged one is stale', () => {
    assert.equal(pendingEmit(join(dir, 'none')), true);
    assert.equal(pendingEmit(info('damaged', '{"affectedFiles')), true);
  });
});
