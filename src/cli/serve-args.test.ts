import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliError } from './cli-error.ts';
import { defaultMemoryBudget, memAvailable, parseSize } from './memory-size.ts';
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

  it('takes --http PORT 0..65535 only, and no page by default', () => {
    const none = parseServeArgs([]);
    assert.ok(none !== 'help' && none.http === undefined);
    for (const [text, port] of [
      ['0', 0],
      ['8710', 8710],
      ['65535', 65535],
    ] as const) {
      const a = parseServeArgs(['--http', text]);
      assert.ok(a !== 'help' && a.http === port);
    }
    for (const bad of ['65536', '80.5', 'x', '', '123456'])
      assert.throws(
        () => parseServeArgs(['--http', bad]),
        (e: unknown) => usage(e) && (e as Error).message.includes(`not '${bad}'`),
      );
    assert.throws(() => parseServeArgs(['--http', '-1']), usage);
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

  it('takes --memory-budget in bytes or binary units, and refuses anything else', () => {
    const budget = (text: string) => {
      const a = parseServeArgs(['--memory-budget', text]);
      return a === 'help' ? undefined : a.memoryBudget;
    };
    assert.equal(budget('8G'), 8n << 30n);
    assert.equal(budget('512M'), 512n << 20n);
    assert.equal(budget('64KiB'), 64n << 10n);
    assert.equal(budget('2TB'), 2n << 40n);
    assert.equal(budget('1048576'), 1048576n);
    assert.equal(budget('4096B'), 4096n);
    const none = parseServeArgs([]);
    assert.ok(none !== 'help' && none.memoryBudget === undefined);
    for (const bad of ['0', '-1G', '1.5G', '8X', 'G', '', '8 GiBs'])
      assert.throws(() => parseServeArgs(['--memory-budget', bad]), usage, bad);
    assert.equal(parseSize(' 3 M '), 3n << 20n);
  });

  it('defaults the memory budget to half of MemAvailable', () => {
    const meminfo =
      'MemTotal:       24683620 kB\nMemFree:        22369712 kB\nMemAvailable:   24181800 kB\n';
    assert.equal(memAvailable(meminfo), 24181800n * 1024n);
    assert.deepEqual(
      defaultMemoryBudget(() => meminfo),
      {
        bytes: 12090900n * 1024n,
        available: 24181800n * 1024n,
        source: 'MemAvailable',
      },
    );
    const fallback = defaultMemoryBudget(() => {
      throw new Error('no /proc');
    });
    assert.equal(fallback.source, 'free memory');
    assert.equal(fallback.bytes, fallback.available / 2n);
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
