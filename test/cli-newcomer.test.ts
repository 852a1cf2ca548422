/**
 * The CLI as a newcomer meets it (issue 13, items 3-6), across real processes: output that fails
 * (stdout to /dev/full, a closed pipe, a `serve --trace -` reader that exits, SIGHUP) ends with
 * one line or quietly and leaves no socket or JSON file behind and the user's files untouched;
 * bad input (a tree with nothing to serve, DTS by content, malformed addresses, negative and
 * huge numbers, unreachable sockets) is one line saying what must change; `--version`,
 * `help COMMAND`, and every command's `--help` lists each of its options; serve's log has
 * timestamped connect/disconnect lines, no warning for a VMM's region 8 probe, and --quiet /
 * --verbose. Every wait is bounded.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { GRACE_FLAG_SPEC, WITHERSPOON_FLAG_SPEC } from '../src/platform/index.ts';
import { VfioUserClient } from '../src/vfio-user/index.ts';
import { cliArgs, HANG_GUARD_MS, ROOT, runCli } from './support/cli.ts';
import { GPU, startServe } from './support/serve-process.ts';
import { waitFor, within } from './support/wait.ts';

const hasDtc = spawnSync('dtc', ['--version']).status === 0;
const NO_DTC = 'dtc (Debian: device-tree-compiler) is not installed';
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-newcomer-'));
  dirs.push(d);
  return d;
}

/** `vfio-nvlink2 ...args` with stdout on `fd`; its status and stderr. */
function runWithStdout(args: string[], fd: number): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, cliArgs(...args), {
    cwd: ROOT,
    stdio: ['ignore', fd, 'pipe'],
    timeout: HANG_GUARD_MS,
    killSignal: 'SIGKILL',
  });
  return { status: r.status, stderr: r.stderr.toString() };
}

/** Spawns `vfio-nvlink2 ...args` with pipes; resolves the exit status and stderr at exit. */
function spawnCli(args: string[], stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe']) {
  const child = spawn(process.execPath, cliArgs(...args), { cwd: ROOT, stdio });
  let stderr = '';
  let stdout = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, exited, stderr: () => stderr, stdout: () => stdout };
}

async function exitOf(what: string, child: ChildProcess, exited: Promise<number | null>) {
  return within(what, exited).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
}

const ENOSPC_LINE = (command: string) =>
  `vfio-nvlink2: ${command}: ENOSPC: cannot write to stdout: no space left on device`;

describe('output that fails: one line or a quiet exit, nothing left behind', () => {
  const commands: [args: string[], command: string][] = [
    [['dt', 'show'], 'dt show'],
    [['dt', 'doctor'], 'dt doctor'],
    [['dt', 'generate', '--dts'], 'dt generate'],
    [['inspect', '--dt'], 'inspect'],
    [['--help'], 'help'],
    [['--version'], 'version'],
    [['serve', '--help'], 'serve'],
  ];
  for (const [args, command] of commands) {
    it(`${args.join(' ')} > /dev/full: one ENOSPC line, exit 1, no stack`, () => {
      const fd = openSync('/dev/full', 'w');
      try {
        const r = runWithStdout(args, fd);
        assert.equal(r.status, 1, r.stderr);
        assert.equal(r.stderr, `${ENOSPC_LINE(command)}\n`);
      } finally {
        closeSync(fd);
      }
    });
    it(`${args.join(' ')} | (a reader that exited): quiet, status 141`, async () => {
      const run = spawnCli(args);
      run.child.stdout?.destroy(); // the read end is closed before the command writes
      const status = await exitOf(args.join(' '), run.child, run.exited);
      assert.equal(status, 141, run.stderr());
      assert.equal(run.stderr(), '');
    });
  }

  it('serve > /dev/full: one ENOSPC line, exit 1, the directory as it was', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'notes.txt'), 'mine\n');
    const fd = openSync('/dev/full', 'w');
    try {
      const r = runWithStdout(['serve', '--socket-dir', dir, '--quiet'], fd);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr, `${ENOSPC_LINE('serve')}\n`);
    } finally {
      closeSync(fd);
    }
    assert.deepEqual(readdirSync(dir), ['notes.txt']);
    assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine\n');
  });

  it('serve with its stdout reader gone: quiet, 141, no socket or JSON file left', async () => {
    const dir = tempDir();
    const run = spawnCli(['serve', '--socket-dir', dir, '--quiet']);
    run.child.stdout?.destroy();
    const status = await exitOf('serve', run.child, run.exited);
    assert.equal(status, 141, run.stderr());
    assert.equal(run.stderr(), '');
    assert.deepEqual(readdirSync(dir), []);
  });

  it('serve --trace - whose reader exits: serve stops, 141, the user file kept', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'notes.txt'), 'mine\n');
    const run = spawnCli(['serve', '--socket-dir', dir, '--trace', '-']);
    await waitFor('serve ready', () => {
      if (run.child.exitCode !== null) throw new Error(`serve exited: ${run.stderr()}`);
      return run.stdout().includes('ready:');
    });
    run.child.stderr?.destroy(); // the trace reader exits
    // A client: its connect line and tracepoints go to the closed stderr.
    const client = await VfioUserClient.connect(join(dir, `${GPU}.sock`)).catch(() => undefined);
    const status = await exitOf('serve', run.child, run.exited);
    client?.close();
    assert.equal(status, 141);
    assert.deepEqual(readdirSync(dir), ['notes.txt']);
    assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine\n');
  });

  it('SIGHUP: serve closes, removes its sockets and files, exits 0; guest output failures', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'notes.txt'), 'mine\n');
    const serve = await startServe([], { dir });
    let stopped = false;
    try {
      // guest against it: stdout full, then a closed pipe.
      const fd = openSync('/dev/full', 'w');
      try {
        const r = runWithStdout(['guest', '--socket-dir', dir], fd);
        assert.equal(r.status, 1, r.stderr);
        assert.equal(r.stderr, `${ENOSPC_LINE('guest')}\n`);
      } finally {
        closeSync(fd);
      }
      const run = spawnCli(['guest', '--socket-dir', dir]);
      run.child.stdout?.destroy();
      assert.equal(await exitOf('guest', run.child, run.exited), 141, run.stderr());
      assert.equal(run.stderr(), '');
      stopped = true;
      assert.equal(await serve.stop('SIGHUP'), 0, serve.stderr());
    } finally {
      if (!stopped) await serve.stop(); // a failed assertion leaves no serve behind
    }
    assert.match(serve.stderr(), /SIGHUP: closing 18 sockets/);
    assert.deepEqual(readdirSync(dir), ['notes.txt']);
  });

  it('guest -o FILE that cannot be written: one FILE line; the file there is kept', async () => {
    const dir = tempDir();
    const serve = await startServe([], { dir: join(dir, 's') });
    try {
      const out = join(dir, 'nope', 'guest.dtb');
      const r = runCli(['guest', '--socket-dir', join(dir, 's'), '-o', out]);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(
        r.stderr
          .split('\n')
          .filter((l) => l.startsWith('vfio-nvlink2: '))
          .join('\n'),
        `vfio-nvlink2: guest: FILE: cannot write ${out} (ENOENT)`,
      );
    } finally {
      await serve.stop();
    }
  });
});

/** A root and a memory node: a valid tree with no PCI host bridge. */
const EMPTY_DTS = `/dts-v1/;
/ {
\t#address-cells = <2>;
\t#size-cells = <2>;
\tmemory@0 {
\t\tdevice_type = "memory";
\t\treg = <0x0 0x0 0x0 0x10000000>;
\t};
};
`;

describe("serve's files: what a killed serve left is replaced, a file of the user's never", () => {
  it('a devices.json, state.json or platform.dtb serve did not write stops serve before it listens', () => {
    const user: [string, string][] = [
      ['devices.json', '{"mine": 1}\n'],
      ['state.json', '[1, 2, 3]\n'],
      ['platform.dtb', 'my notes\n'],
    ];
    for (const [name, text] of user) {
      const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-own-'));
      try {
        writeFileSync(join(dir, name), text);
        const r = runCli(['serve', '--socket-dir', dir]);
        assert.equal(r.status, 1, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(
            `^vfio-nvlink2: serve: SOCKET_DIR: ${dir}/${name.replace('.', '\\.')} is there and is not a file serve wrote \\(.+\\); move it away or choose another --socket-dir\n$`,
          ),
        );
        assert.equal(readFileSync(join(dir, name), 'utf8'), text, `${name} untouched`);
        assert.deepEqual(readdirSync(dir), [name], 'no socket made');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('after kill -9, a new serve on the same directory replaces what the first one left', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-own-'));
    try {
      const first = await startServe([], { dir });
      const left = readFileSync(join(dir, 'devices.json'), 'utf8');
      await first.stop('SIGKILL');
      assert.ok(readdirSync(dir).includes('devices.json'), 'a killed serve leaves its files');
      const second = await startServe([], { dir });
      try {
        assert.equal(readFileSync(join(dir, 'devices.json'), 'utf8'), left);
        assert.notEqual(second.state().pid, first.pid);
      } finally {
        await second.stop();
      }
      assert.ok(!readdirSync(dir).includes('devices.json'), 'removed at a clean exit');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the temporaries a serve killed mid-write left are removed, each with a line; look-alikes kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-own-'));
    try {
      const left = ['devices.json', 'state.json', 'platform.dtb'].map((n, i) =>
        join(dir, `${n}.${String(i).repeat(16)}.tmp`),
      );
      for (const path of left) writeFileSync(path, 'half');
      const kept = ['devices.json.tmp', 'state.json.0123.tmp', 'notes.0123456789abcdef.tmp'];
      for (const name of kept) writeFileSync(join(dir, name), 'mine');
      const serve = await startServe([], { dir });
      try {
        for (const path of left) {
          assert.ok(!existsSync(path), `${path} removed`);
          assert.ok(
            serve.stderr().includes(`${path}: removed (a temporary a killed serve left)`),
            serve.stderr(),
          );
        }
        for (const name of kept) assert.equal(readFileSync(join(dir, name), 'utf8'), 'mine');
      } finally {
        await serve.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bad input is never accepted silently', () => {
  const nothing =
    /: no PCI host bridge \(no node of device_type "pciex" or "pci"\): nothing to serve$/;

  it('a tree with no PCI host bridge (DTS without .dts): dt doctor, inspect --dt, serve --dt say nothing to serve', {
    skip: !hasDtc && NO_DTC,
  }, () => {
    const dir = tempDir();
    const tree = join(dir, 'tree.txt'); // DTS by content, not by name
    writeFileSync(tree, EMPTY_DTS);
    for (const [args, command] of [
      [['dt', 'doctor', tree], 'dt doctor'],
      [['inspect', '--dt', tree], 'inspect'],
      [['serve', '--dt', tree, '--socket-dir', join(dir, 'sockets')], 'serve'],
    ] as const) {
      const r = runCli(args);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stdout, '', `${command}: nothing on stdout`);
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0]?.startsWith(`vfio-nvlink2: ${command}: PLATFORM: ${tree}`), lines[0]);
      assert.match(lines[0] ?? '', nothing);
    }
  });

  it('a host bridge with no function, or with only an Ethernet function: the same PLATFORM line from all three', {
    skip: !hasDtc && NO_DTC,
  }, () => {
    const dir = tempDir();
    const phb = (inner: string) =>
      `/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>; pciex@600c3c0000000 { compatible = "ibm,power9-pciex", "ibm,ioda3-phb"; device_type = "pciex"; reg = <0x600c3 0xc0000000 0x0 0x100000>; #address-cells = <3>; #size-cells = <2>; ibm,phb-index = <0>; ibm,chip-id = <0>; bus-range = <0 0xff>; ${inner} }; };\n`;
    const trees: [string, string, number][] = [
      ['empty-phb.dts', phb(''), 0],
      [
        'eth.dts',
        phb(
          'eth@0 { reg = <0x10000 0 0 0 0>; vendor-id = <0x14e4>; device-id = <0x1657>; class-code = <0x20000>; };',
        ),
        1,
      ],
    ];
    for (const [name, text, count] of trees) {
      const tree = join(dir, name);
      writeFileSync(tree, text);
      for (const [args, command] of [
        [['dt', 'doctor', tree], 'dt doctor'],
        [['inspect', '--dt', tree], 'inspect'],
        [['serve', '--dt', tree, '--socket-dir', join(dir, 'sockets')], 'serve'],
      ] as const) {
        const r = runCli(args);
        assert.equal(r.status, 1, `${command} ${name}: ${r.stderr}`);
        assert.equal(
          r.stderr
            .split('\n')
            .filter((l) => l !== '' && !l.includes('warning'))
            .at(-1),
          `vfio-nvlink2: ${command}: PLATFORM: ${tree}: no GPU or NVLink bridge among its ${count} PCI functions: nothing to serve`,
        );
      }
    }
  });

  it('inspect of a regular file (a tree given without --dt): not a socket, and what to run', () => {
    const dir = tempDir();
    const file = join(dir, 'w4.dts');
    writeFileSync(file, EMPTY_DTS);
    const r = runCli(['inspect', file]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(
      r.stderr,
      `vfio-nvlink2: inspect: ENOTSOCK: ${file}: a regular file, not a socket: for a device tree use \`inspect --dt ${file}\`\n`,
    );
  });

  it("help of an unknown command is help's usage error", () => {
    const r = runCli(['help', 'nosuch']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^vfio-nvlink2: help: USAGE: unknown command 'nosuch'/);
  });

  it('the same tree as a DTB on stdin (-)', { skip: !hasDtc && NO_DTC }, () => {
    const dtb = spawnSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb', '-'], { input: EMPTY_DTS });
    const r = runCli(['dt', 'doctor', '-'], { input: dtb.stdout });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr.trim(), nothing);
  });

  it('DTS on stdin is compiled (recognised by content)', { skip: !hasDtc && NO_DTC }, () => {
    const r = runCli(['dt', 'show', '-', '--node', '/memory@0'], { input: EMPTY_DTS });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /memory@0 \{\n\s+device_type = "memory";/);
  });

  it('a malformed PCI address is a malformed address (USAGE), not a missing file', () => {
    for (const [args, command, address] of [
      [['inspect', '--dt', '0002:01:00.9'], 'inspect', '0002:01:00.9'],
      [['inspect', '--dt', '02:1:00.0'], 'inspect', '02:1:00.0'],
      [['serve', '--device', '2:01:00.0', '--socket-path', '/tmp/x.sock'], 'serve', '2:01:00.0'],
    ] as const) {
      const r = runCli(args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(
        r.stderr.split('\n')[0] ?? '',
        new RegExp(
          `^vfio-nvlink2: ${command}: USAGE: malformed PCI address '${address.replace(/\./g, '\\.')}'.*: expected DDDD:BB:DD\\.F`,
        ),
      );
    }
  });

  it('negative and huge numbers get "must be …", never "ambiguous"', () => {
    const cases: [string[], RegExp][] = [
      [['serve', '--lpid', '-1'], /--lpid must be an integer from 1 to 4094 .*not '-1'/],
      [['serve', '--lpid', '99999999999999999999'], /--lpid must be an integer from 1 to 4094/],
      [['serve', '--memory-budget', '-1G'], /--memory-budget must be a positive size .*not '-1G'/],
      [['serve', '--ready-fd', '-3'], /--ready-fd must be a file descriptor from 3 to 1023/],
      [['serve', '--idle-timeout', '-5'], /--idle-timeout takes seconds from 0 to 86400, not '-5'/],
      [['dt', 'generate', '--dts', '--gpus', '-4'], /--gpus: must be 4 or 6, not '-4'/],
      [
        ['dt', 'generate', '--dts', '--atsd-entries', '99999999999999999999'],
        /--atsd-entries: must be 0\.\.8/,
      ],
      [
        ['dt', 'generate', '--dts', '--machine', 'grace-hopper', '--gpu-mem', '-1G'],
        /--gpu-mem: must be a size from 0 to 1P .*not '-1G'/,
      ],
      [
        ['dt', 'generate', '--dts', '--machine', 'grace-hopper', '--gpu-mem', '99999999999P'],
        /--gpu-mem: must be a size from 0 to 1P/,
      ],
      [['guest', '--phb', '-1', 'x.sock'], /--phb wants an integer 0\.\.30, not '-1'/],
    ];
    for (const [args, line] of cases) {
      const r = runCli(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /ambiguous/, args.join(' '));
      assert.match(r.stderr, line, args.join(' '));
    }
  });

  it('connect errors name the socket and say what to do', () => {
    const socket = join(tempDir(), `${GPU}.sock`);
    for (const command of ['inspect', 'guest']) {
      const r = runCli([command, socket]);
      assert.equal(r.status, 1, r.stderr);
      const line = r.stderr.trim();
      assert.ok(line.includes(socket), line);
      assert.match(
        line,
        /ENOENT.*; no socket there: start `vfio-nvlink2 serve --socket-dir DIR` first/,
      );
    }
  });
});

describe('help agrees with the code', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

  it('--version prints the package version', () => {
    const r = runCli(['--version']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `vfio-nvlink2 ${pkg.version}\n`);
  });

  it('help COMMAND is COMMAND --help; a bare command line is usage on stderr, exit 2', () => {
    for (const args of [['serve'], ['dt', 'generate'], ['dt', 'show'], ['guest']]) {
      const help = runCli(['help', ...args]);
      const own = runCli([...args, '--help']);
      assert.equal(help.status, 0, help.stderr);
      assert.equal(help.stdout, own.stdout);
      assert.match(help.stdout, new RegExp(`^usage: vfio-nvlink2 ${args.join(' ')}`));
    }
    const bare = runCli([]);
    assert.equal(bare.status, 2);
    assert.equal(bare.stdout, '');
    assert.match(bare.stderr, /^usage: vfio-nvlink2 <command>/);
  });

  /** Long options a command's parser takes (the `name: { type: … }` entries of its module). */
  function optionsIn(file: string, from = 0, to = Number.POSITIVE_INFINITY): string[] {
    const text = readFileSync(join(ROOT, file), 'utf8').slice(from, to);
    return [...text.matchAll(/[\s{]'?([a-z][a-z0-9-]*)'?: \{ type: '(?:string|boolean)'/g)]
      .map((m) => m[1] as string)
      .filter((o) => o !== 'help');
  }
  const commands: [args: string[], options: string[]][] = [
    [['serve'], optionsIn('src/cli/serve-args.ts')],
    [['inspect'], [...optionsIn('src/cli/inspect.ts'), ...optionsIn('src/cli/inspect-remote.ts')]],
    [['guest'], optionsIn('src/cli/guest.ts')],
    [
      ['dt', 'generate'],
      [
        ...Object.keys(WITHERSPOON_FLAG_SPEC),
        ...Object.keys(GRACE_FLAG_SPEC),
        ...optionsIn('src/cli/dt.ts'),
      ],
    ],
    [['dt', 'show'], optionsIn('src/cli/dt-show.ts')],
    [['dt', 'doctor'], optionsIn('src/cli/dt-doctor.ts')],
    [['dt', 'diff'], optionsIn('src/cli/dt-diff.ts')],
    [['topology'], optionsIn('src/cli/topology.ts')],
    [['trace'], optionsIn('src/cli/trace.ts')],
    [['fuzz'], optionsIn('src/cli/fuzz.ts')],
    [['migrate'], optionsIn('src/cli/migrate.ts')],
  ];
  for (const [args, options] of commands) {
    it(`${args.join(' ')} --help lists every option (${options.length})`, () => {
      assert.ok(options.length > 0, 'options found in the source');
      const r = runCli([...args, '--help']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^usage: vfio-nvlink2 ${args.join(' ')}`));
      const missing = options.filter((o) => !r.stdout.includes(`--${o}`));
      assert.deepEqual(
        missing,
        [],
        `${args.join(' ')} --help does not list: ${missing.join(', ')}`,
      );
    });
  }
});

describe("serve's log", () => {
  const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z vfio-nvlink2 serve: /;

  async function probeRegion8(verbosity: string[]) {
    const serve = await startServe(verbosity);
    try {
      const client = await VfioUserClient.connect(serve.socket(GPU));
      await assert.rejects(client.regionInfo(8), /EINVAL/);
      client.close();
      // The release rewrites state.json; the disconnect line (when logged) comes before it. A
      // state.json read before the open's own rewrite shows no partition either: with a line to
      // wait for, wait for the line.
      if (verbosity.includes('--quiet'))
        await waitFor('the release', () => serve.state().partitions.length === 0);
      else await waitFor('the disconnect line', () => serve.stderr().includes(': disconnected: '));
      return serve.stderr();
    } finally {
      await serve.stop();
    }
  }

  it('connect and disconnect: timestamped, with pid, partition, LPID, device; no warning for region 8', async () => {
    const log = await probeRegion8([]);
    const lines = log.split('\n').filter((l) => l !== '');
    for (const l of lines) assert.match(l, stamp);
    const pid = process.pid;
    assert.ok(
      lines.some((l) =>
        l.endsWith(`serve: ${GPU}: connected: pid ${pid}, partition of pid ${pid}, LPID 1`),
      ),
      log,
    );
    assert.ok(
      lines.some((l) =>
        l.includes(`serve: ${GPU}: disconnected: pid ${pid}, partition of pid ${pid}, LPID 1 (`),
      ),
      log,
    );
    assert.doesNotMatch(log, /region 8|EINVAL|error/i);
  });

  it('--verbose shows the region 8 probe; --quiet neither it nor connects', async () => {
    const verbose = await probeRegion8(['--verbose']);
    assert.match(verbose, /DEVICE_GET_REGION_INFO \(msg \d+\): EINVAL: region 8 \(VGA\)/);
    const quiet = await probeRegion8(['--quiet']);
    assert.doesNotMatch(quiet, /connected|region 8|memory budget/);
  });

  it('--ready-fd N: READY=1 arrives once every socket accepts', async () => {
    const dir = tempDir();
    const run = spawnCli(
      ['serve', '--socket-dir', dir, '--ready-fd', '3', '--quiet'],
      ['ignore', 'pipe', 'pipe', 'pipe'],
    );
    const fd3 = run.child.stdio[3] as NodeJS.ReadableStream;
    let ready = '';
    fd3.on('data', (d: Buffer) => {
      ready += d.toString();
    });
    const closed = new Promise<void>((resolve) => fd3.once('end', () => resolve()));
    try {
      await within('READY=1 on fd 3', closed);
      assert.equal(ready, 'READY=1\n');
      const sockets = readdirSync(dir).filter((f) => f.endsWith('.sock'));
      assert.equal(sockets.length, 18);
      for (const s of sockets) {
        const client = await VfioUserClient.connect(join(dir, s));
        client.close();
      }
    } finally {
      run.child.kill('SIGTERM');
      assert.equal(await exitOf('serve', run.child, run.exited), 0, run.stderr());
    }
  });

  it("--ready-fd of an fd not given to serve (closed, or Node's own): one USAGE line, no socket", () => {
    const dir = tempDir();
    for (const fd of ['5', '9', '1000']) {
      const r = runCli(['serve', '--socket-dir', join(dir, 's'), '--ready-fd', fd]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `^vfio-nvlink2: serve: USAGE: --ready-fd ${fd}: not an open file descriptor( given to serve)? \\(EBADF\\); open it for writing`,
        ),
      );
      assert.deepEqual(readdirSync(dir), []);
    }
  });
});
