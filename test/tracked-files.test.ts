/**
 * What git tracks holds no runtime output of `serve`: a serve run in the checkout with a
 * relative `--socket-dir`/`--state-dir` leaves devices.json, state.json, platform.dtb, sockets,
 * trace.ctl, machine.state, device .state files and the state dir's lock, and one commit once
 * took a whole such directory in (a/sockets, a/state/lock with a dead server's pid).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from './support/root.ts';

const RUNTIME =
  /(^|\/)(lock|devices\.json|state\.json|platform\.dtb|trace\.ctl|machine\.state|[^/]+\.state|[^/]+\.sock|[^/]+\.tmp)$/;

describe('tracked files', () => {
  const checkout = existsSync(join(ROOT, '.git'));
  it('no runtime output of serve is tracked', { skip: !checkout && 'not a git checkout' }, () => {
    const r = spawnSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const files = r.stdout.split('\0').filter((f) => f !== '');
    assert.ok(files.includes('package.json'), `git ls-files in ${ROOT} lists no package.json`);
    assert.deepEqual(
      files.filter((f) => RUNTIME.test(f)),
      [],
    );
  });
});
