/**
 * One error vocabulary (issue 12.7): every error class of src/ is a CodedError (errno name or
 * stable code), README.md "Errors" lists exactly `STABLE_CODES`, and every command prints a
 * failure as one line `vfio-nvlink2: <command>: <code>: <message>` with the right exit status.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  CodedError,
  errorCode,
  isErrnoName,
  messageWithoutCode,
  STABLE_CODES,
} from '../src/errors/index.ts';
import { FdtError } from '../src/fdt/index.ts';
import { HostError } from '../src/platform/index.ts';
import { VfioError } from '../src/vfio/index.ts';
import { DeviceSocketError } from '../src/vfio-user/index.ts';
import { ROOT, runCli } from './support/cli.ts';
import { tsFiles } from './support/source-tokens.ts';

/**
 * Error classes that may stay outside CodedError, and why. A leaf cannot import the errors
 * leaf (test/layering.test.ts); its errors are bugs, which the CLI prints as INTERNAL.
 */
const OUTSIDE: Readonly<Record<string, string>> = {
  PrintfError: 'trace is a leaf; an unsupported format is a bug (INTERNAL)',
};

/** `class X extends Y` of every non-test module of src/ whose name ends in Error. */
function errorClasses(): Map<string, { base: string; where: string }> {
  const out = new Map<string, { base: string; where: string }>();
  for (const file of tsFiles(join(ROOT, 'src'))) {
    if (file.endsWith('.test.ts')) continue;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/class (\w+Error)\b[^{]*?\bextends (\w+)/g)) {
      const line = text.slice(0, m.index).split('\n').length;
      out.set(m[1] as string, {
        base: m[2] as string,
        where: `${file.slice(ROOT.length)}:${line}`,
      });
    }
  }
  return out;
}

describe('one error vocabulary', () => {
  it('every error class of src/ is a CodedError', () => {
    const classes = errorClasses();
    assert.ok(classes.size >= 10, `only ${classes.size} error classes found`);
    const coded = (name: string, seen = new Set<string>()): boolean => {
      if (name === 'CodedError') return true;
      const c = classes.get(name);
      if (!c || seen.has(name)) return false;
      seen.add(name);
      return coded(c.base, seen);
    };
    const bad = [...classes]
      .filter(([name]) => !(name in OUTSIDE) && name !== 'CodedError' && !coded(name))
      .map(([name, c]) => `${c.where}: ${name} extends ${c.base}, not CodedError`);
    assert.deepEqual(bad, [], bad.join('\n'));
  });

  it("README.md's Errors table is STABLE_CODES", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('| code | meaning |');
    assert.ok(start > 0, 'README.md has no "| code | meaning |" table');
    const rows = readme.slice(start, readme.indexOf('\n\n', start)).split('\n').slice(2);
    const shown = rows.map((row) => {
      const [code = '', meaning = ''] = row.split('|').slice(1, 3);
      return [code.trim().replace(/`/g, ''), meaning.trim()];
    });
    assert.deepEqual(shown, Object.entries(STABLE_CODES));
  });

  it('errorCode and messageWithoutCode read every kind of error', () => {
    const vfio = new VfioError('EINVAL', 'region 9 offset 0x10 is past its end');
    assert.equal(errorCode(vfio), 'EINVAL');
    assert.equal(vfio.errno, 22);
    assert.equal(messageWithoutCode(vfio), 'region 9 offset 0x10 is past its end');
    const fdt = new FdtError('BAD_MAGIC', 0, 'magic', 'x.dtb');
    assert.equal(errorCode(fdt), 'DT_PARSE');
    assert.equal(messageWithoutCode(fdt), 'x.dtb: offset 0x0: BAD_MAGIC: expected magic');
    assert.equal(errorCode(new HostError('/pciex@1', 'reg', 'short')), 'PLATFORM');
    const atSocket = new DeviceSocketError('/s/gpu.sock', new VfioError('ETIMEDOUT', 'no reply'));
    assert.equal(errorCode(atSocket), 'ETIMEDOUT');
    assert.equal(atSocket.message, '/s/gpu.sock: ETIMEDOUT: no reply');
    assert.equal(messageWithoutCode(atSocket), '/s/gpu.sock: no reply');
    const sys = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' });
    assert.equal(errorCode(sys), 'EADDRINUSE');
    assert.equal(errorCode(new Error('plain')), undefined);
    assert.equal(errorCode(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG' })), undefined);
    assert.equal(errorCode('a string'), undefined);
    assert.ok(new CodedError('USAGE', 'x') instanceof Error);
    for (const code of Object.keys(STABLE_CODES)) {
      assert.match(code, /^[A-Z][A-Z_]+$/);
      assert.ok(!isErrnoName(code) && !code.startsWith('E'), `${code} reads as an errno`);
    }
  });
});

describe('the CLI prints `vfio-nvlink2: <command>: <code>: <message>`', () => {
  const junk = join(ROOT, 'test/error-codes.test.ts'); // not a DTB, and not DTS either
  const cases: readonly [args: string[], status: number, line: RegExp][] = [
    [['dt', 'frobnicate'], 2, /^dt: USAGE: unknown subcommand 'frobnicate'/],
    [
      ['dt', 'show', '/nonexistent.dtb'],
      1,
      /^dt show: DT_PARSE: \/nonexistent\.dtb: cannot read \(ENOENT\)$/,
    ],
    [['dt', 'show', '--node', '/nope'], 1, /^dt show: NOT_FOUND: --node \/nope: no such node in /],
    [['dt', 'doctor', junk], 1, /^dt doctor: DT_PARSE: .*error-codes\.test\.ts: /],
    [['dt', 'generate', '--gpus', '5', '--dts'], 2, /^dt generate: DT_OPTION: --gpus: /],
    [['inspect', '--dt', '0009:00:00.0'], 1, /^inspect: NOT_FOUND: no PCI function 0009:00:00\.0 /],
    [['serve', '--lpid', '0'], 2, /^serve: USAGE: --lpid must be an integer from 1 to 4094/],
    [
      ['serve', '--device', '0009:00:00.0', '--socket-path', '/nonexistent/x.sock'],
      1,
      /^serve: ENODEV: the platform has no PCI function 0009:00:00\.0$/,
    ],
    [
      ['serve', '--socket-dir', '/proc/no-such-dir/sockets'],
      1,
      /^serve: SOCKET_DIR: cannot create \/proc\/no-such-dir\/sockets \(ENOENT\); choose a --socket-dir whose parent you can write to$/,
    ],
    [
      ['inspect', '/nonexistent/0000:00:00.0.sock'],
      1,
      /^inspect: ENOENT: \/nonexistent\/0000:00:00\.0\.sock: /,
    ],
    [
      ['guest', '--phb', '31', 'x.sock'],
      2,
      /^guest: USAGE: --phb wants an integer 0\.\.30, not '31'$/,
    ],
  ];
  it('an unknown command: its USAGE line, then the usage', () => {
    const r = runCli(['frobnicate']);
    assert.equal(r.status, 2, r.stderr);
    const [first, blank, usage] = r.stderr.split('\n');
    assert.equal(first, "vfio-nvlink2: frobnicate: USAGE: unknown command 'frobnicate'");
    assert.equal(blank, '');
    assert.match(usage ?? '', /^usage: vfio-nvlink2 <command>/);
  });
  for (const [args, status, line] of cases) {
    it(args.join(' '), () => {
      const r = runCli(args);
      assert.equal(r.status, status, r.stderr);
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
      const [prefix, rest] = [lines[0]!.slice(0, 14), lines[0]!.slice(14)];
      assert.equal(prefix, 'vfio-nvlink2: ');
      assert.match(rest, line);
    });
  }
});
