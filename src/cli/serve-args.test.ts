import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliError } from './cli-error.ts';
import { defaultSocketDir, parseServeArgs } from './serve-args.ts';

const usage = (e: unknown) => e instanceof CliError && e.exitCode === 2;

describe('serve arguments', () => {
  it('defaults the socket directory to $XDG_RUNTIME_DIR/vfio-nvlink2, else /tmp/vfio-nvlink2-<uid>', () => {
    assert.equal(defaultSocketDir({ XDG_RUNTIME_DIR: '/run/user/7' }), '/run/user/7/vfio-nvlink2');
    assert.equal(defaultSocketDir({}), `/tmp/vfio-nvlink2-${process.getuid?.() ?? 0}`);
  });

  it('takes the backend convention in both spellings', () => {
    for (const argv of [
      ['--device', '0002:01:00.0', '--socket-path', '/tmp/x.sock'],
      ['--device', '0002:01:00.0', '--socket-path=/tmp/x.sock'],
    ]) {
      const a = parseServeArgs(argv);
      assert.ok(a !== 'help');
      assert.equal(a.socketPath, '/tmp/x.sock');
      assert.equal(a.device, '0002:01:00.0');
    }
  });

  it('accepts --lpid 1..4094 only', () => {
    const a = parseServeArgs(['--lpid', '4094']);
    assert.ok(a !== 'help' && a.lpid === 4094);
    for (const bad of ['0', '4095', '-1', '1.5', 'x'])
      assert.throws(() => parseServeArgs(['--lpid', bad]), usage);
  });

  it('takes --allow-uid as a comma list, repeatable; uids 0..4294967294 only', () => {
    const none = parseServeArgs([]);
    assert.ok(none !== 'help');
    assert.deepEqual(none.allowUids, []);
    const a = parseServeArgs([
      '--allow-uid',
      '107,65534',
      '--allow-uid=0',
      '--allow-uid',
      '4294967294',
    ]);
    assert.ok(a !== 'help');
    assert.deepEqual(a.allowUids, [107, 65534, 0, 4294967294]);
    for (const bad of ['', '-1', '4294967295', '1.5', 'qemu', '1,', ',1', '1,,2', '0x10', ' 1'])
      assert.throws(() => parseServeArgs(['--allow-uid', bad]), usage, bad);
  });

  it('refuses --device without --socket-path, unknown flags and positionals', () => {
    assert.throws(() => parseServeArgs(['--device', '0002:01:00.0']), usage);
    assert.throws(() => parseServeArgs(['--frobnicate']), usage);
    assert.throws(() => parseServeArgs(['extra']), usage);
    assert.equal(parseServeArgs(['--help']), 'help');
  });
});
