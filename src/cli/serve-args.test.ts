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

  it('takes --idle-timeout and --stall-timeout in seconds (decimals, 0 = never)', () => {
    const a = parseServeArgs(['--idle-timeout', '0.25', '--stall-timeout=0']);
    assert.ok(a !== 'help');
    assert.equal(a.idleTimeoutMs, 250);
    assert.equal(a.stallTimeoutMs, 0);
    const d = parseServeArgs([]);
    assert.ok(d !== 'help' && d.idleTimeoutMs === undefined && d.stallTimeoutMs === undefined);
    for (const bad of ['-1', 'x', '', '1e9'])
      assert.throws(() => parseServeArgs(['--idle-timeout', bad]), usage);
  });

  it('refuses --device without --socket-path, unknown flags and positionals', () => {
    assert.throws(() => parseServeArgs(['--device', '0002:01:00.0']), usage);
    assert.throws(() => parseServeArgs(['--frobnicate']), usage);
    assert.throws(() => parseServeArgs(['extra']), usage);
    assert.equal(parseServeArgs(['--help']), 'help');
  });
});
