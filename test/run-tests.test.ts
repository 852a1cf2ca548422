/**
 * scripts/run-tests.mjs itself: its output reaches a reader slower than the tests in full
 * (summary lines last), its exit code is the runner's, a run of no test fails, and a test that
 * hangs is stopped at the per-test bound and named. Through a real shell pipeline, as
 * `npm test | (sleep 5; cat) | tail` would run it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { alive } from './support/proc.ts';
import { ROOT } from './support/root.ts';
import { waitFor, within } from './support/wait.ts';

const RUNNER = join(ROOT, 'scripts/run-tests.mjs');
const MANY = join(ROOT, 'test/support/many-tests.fixture.ts');
const NONE = join(ROOT, 'test/support/no-tests.fixture.ts');
const WAITS = join(ROOT, 'test/support/waits.fixture.ts');
const HANGS = join(ROOT, 'test/support/hangs.fixture.ts');

// As from a terminal: without the variable that tells a runner it runs under another one.
const { NODE_TEST_CONTEXT: _, ...outside } = process.env;

/**
 * Runs the runner on `file` (after `args`) into `| (sleep 2; cat)`; the runner's exit code
 * comes on stderr.
 */
function throughSlowReader(file: string, env: Record<string, string> = {}, args: string[] = []) {
  const script = `{ "$0" "$@"; echo "runner exit $?" >&2; } | (sleep 2; cat)`;
  const argv = [process.execPath, RUNNER, '--no-build', ...args, file];
  const r = spawnSync('/bin/sh', ['-c', script, ...argv], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...outside, ...env },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 240_000,
  });
  assert.equal(r.error, undefined, `the pipeline did not finish: ${r.error}`);
  const exit = /runner exit (\d+)/.exec(r.stderr);
  assert.ok(exit, `no exit status on stderr:\n${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr, exit: Number(exit[1]) };
}

describe('scripts/run-tests.mjs', () => {
  test('piped into a slow reader: every line arrives and the summary comes last', () => {
    const r = throughSlowReader(MANY);
    assert.ok(r.stdout.length > 256 * 1024, `only ${r.stdout.length} bytes arrived`);
    for (const i of ['0000', '0500', '0999']) {
      assert.match(r.stdout, new RegExp(`output line ${i} of many`));
    }
    const tail = r.stdout.slice(r.stdout.lastIndexOf('# summary'));
    assert.match(tail, /^# tests 1000$/m);
    assert.match(tail, /^# pass 1000$/m);
    assert.match(tail, /^# fail 0$/m);
    assert.equal(r.exit, 0);
  });

  test('a failing test: counted in the summary, and the exit code is not 0', () => {
    const r = throughSlowReader(MANY, { RUN_TESTS_FIXTURE_FAIL: '1' });
    const tail = r.stdout.slice(r.stdout.lastIndexOf('# summary'));
    assert.match(tail, /^# pass 999$/m);
    assert.match(tail, /^# fail 1$/m);
    assert.notEqual(r.exit, 0);
  });

  test('a file that declares no test fails the run and is named', () => {
    const r = throughSlowReader(NONE);
    assert.match(r.stderr, /run-tests: test\/support\/no-tests.fixture.ts declares no test/);
    assert.equal(r.exit, 1);
  });

  test('a test that outlives the per-test bound stops its file, named with the file and the bound', () => {
    // The file bound is an hour: only the per-test bound can end the file before its hanging
    // test ends by itself (2 minutes), and before this pipeline's own bound (4 minutes).
    const bound = 4000;
    const r = throughSlowReader(HANGS, { RUN_TESTS_FIXTURE_BOUND_MS: String(bound) }, [
      '--timeout',
      String(bound),
      '--file-timeout',
      '3600000',
    ]);
    const line =
      'run-tests: test "concurrent > hangs" in test/support/hangs.fixture.ts did not end within 4 s (per-test timeout); stopping this file';
    const named = r.stderr.split('\n').filter((l) => l.startsWith('run-tests: test '));
    assert.deepEqual(named, [line], `stderr:\n${r.stderr}`);
    assert.match(r.stdout, /✔ passes before the hang/);
    assert.match(r.stdout, /✔ step 8 of 8/);
    assert.doesNotMatch(r.stdout, /never reached/);
    assert.equal(r.exit, 1);
  });

  test('SIGKILLed, it takes its test files with it (no orphaned suite)', async () => {
    const runner = spawn(process.execPath, [RUNNER, WAITS], {
      cwd: ROOT,
      env: outside,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    runner.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise((resolve) => runner.once('exit', resolve));
    const pid = await waitFor('the test file to start', () => {
      const m = /waiting pid (\d+)/.exec(out);
      return m ? Number(m[1]) : false;
    });
    try {
      runner.kill('SIGKILL');
      await within('the runner to exit', exited);
      await waitFor(`the test file (pid ${pid}) to end with the runner`, () => !alive(pid));
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
});
