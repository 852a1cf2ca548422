/**
 * `serve` on a machine shared with other users, as a real process: sockets 0600 and
 * devices.json 0644 / state.json 0600 whatever the umask; a socket dir that another user could
 * write, that is a symlink or that is not ours is refused in one line; symlinks planted at the
 * JSON files' names or at their (formerly predictable) temporary names are never written
 * through; a stale socket of another uid, or a symlink, at --socket-path is left alone; a
 * client of another uid is refused (SO_PEERCRED) unless --allow-uid names it. The other-uid
 * cases switch a python child to uid 65534 and so need root (CI runs as root).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { closeFd, listenUnix } from '../src/native/index.ts';
import { VfioUserClient } from '../src/vfio-user/index.ts';
import { cliArgs, ROOT, runCli } from './support/cli.ts';
import { PYTHON } from './support/native/python.ts';
import { GPU, waitFor } from './support/serve-process.ts';
import { within } from './support/wait.ts';

const NOBODY = 65534;
const notRoot = process.getuid?.() !== 0 ? 'needs root to give a file or a child uid 65534' : false;

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-shared-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const mode = (path: string) => lstatSync(path).mode & 0o7777;

interface Running {
  readonly child: ChildProcess;
  stderr(): string;
  stop(): Promise<number | null>;
}

/**
 * `sh -c 'PRELUDE; exec node … serve ARGS'`: the prelude sets the umask or plants files, and
 * may use $$, which is the server's own pid after exec. Resolves once it prints "ready".
 */
async function startServeAfter(prelude: string, args: string[]): Promise<Running> {
  const child = spawn(
    'sh',
    ['-c', `${prelude}\nexec "$@"`, 'sh', process.execPath, ...cliArgs('serve', ...args)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  await waitFor('serve readiness', () => {
    if (dead) throw new Error(`serve exited early: ${err}`);
    return out.includes('ready');
  });
  return {
    child,
    stderr: () => err,
    async stop() {
      if (!dead) child.kill('SIGTERM');
      return within('serve to exit on SIGTERM', exited);
    },
  };
}

/** A serve that must refuse to start: its exit status and its stderr lines. */
function serveRefusal(args: string[]) {
  const r = runCli(['serve', ...args]);
  return { status: r.status, lines: r.stderr.trim().split('\n') };
}

describe('modes whatever the umask', () => {
  it('under umask 000: sockets 0600, devices.json 0644, state.json 0600 (also once rewritten)', async () => {
    const dir = join(tempDir(), 'sockets');
    const serve = await startServeAfter('umask 000', ['--socket-dir', dir]);
    try {
      const sockets = readdirSync(dir).filter((n) => n.endsWith('.sock'));
      assert.equal(sockets.length, 18);
      for (const name of sockets) {
        assert.ok(lstatSync(join(dir, name)).isSocket());
        assert.equal(mode(join(dir, name)).toString(8), '600', name);
      }
      assert.equal(mode(dir).toString(8), '700');
      assert.equal(mode(join(dir, 'devices.json')).toString(8), '644');
      assert.equal(mode(join(dir, 'state.json')).toString(8), '600');
      assert.deepEqual(
        readdirSync(dir).filter((n) => n.endsWith('.tmp')),
        [],
        'no temp file left',
      );
      const c = await VfioUserClient.connect(join(dir, `${GPU}.sock`));
      await waitFor('state.json to list the partition', () => {
        const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
        return state.partitions.length === 1;
      });
      assert.equal(mode(join(dir, 'state.json')).toString(8), '600');
      c.close();
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });

  it('under umask 000: the --socket-path socket is 0600', async () => {
    const path = join(tempDir(), 'gpu.sock');
    const serve = await startServeAfter('umask 000', ['--device', GPU, '--socket-path', path]);
    try {
      assert.equal(mode(path).toString(8), '600');
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });

  it('under umask 277 (owner bits masked too): sockets are still exactly 0600', async () => {
    const path = join(tempDir(), 'gpu.sock');
    const serve = await startServeAfter('umask 277', ['--device', GPU, '--socket-path', path]);
    try {
      assert.equal(mode(path).toString(8), '600');
      const c = await VfioUserClient.connect(path);
      c.close();
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });
});

describe('the socket dir', () => {
  for (const [name, dirMode] of [
    ['world-writable', 0o777],
    ['group-writable', 0o770],
    ['world-writable even with the sticky bit', 0o1777],
  ] as const) {
    it(`${name}: one-line error naming it, exit 1, nothing created`, () => {
      const dir = join(tempDir(), 'sockets');
      mkdirSync(dir);
      chmodSync(dir, dirMode);
      const r = serveRefusal(['--socket-dir', dir]);
      assert.equal(r.status, 1, r.lines.join('\n'));
      assert.equal(r.lines.length, 1, r.lines.join('\n'));
      assert.ok(r.lines[0]?.includes(`socket dir ${dir} is writable by group or others`));
      assert.ok(r.lines[0]?.includes(`mode 0${dirMode.toString(8)}`));
      assert.deepEqual(readdirSync(dir), []);
    });
  }

  it('a symlink to a directory of ours is refused and nothing is created behind it', () => {
    const base = tempDir();
    const real = join(base, 'real');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, join(base, 'link'));
    const r = serveRefusal(['--socket-dir', join(base, 'link')]);
    assert.equal(r.status, 1, r.lines.join('\n'));
    assert.equal(r.lines.length, 1);
    assert.match(r.lines[0] ?? '', /socket dir .*\/link is a symbolic link; /);
    assert.deepEqual(readdirSync(real), []);
  });

  it('a directory another user created (as in /tmp before us) is refused', {
    skip: notRoot,
  }, () => {
    const dir = join(tempDir(), 'sockets');
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, NOBODY, NOBODY);
    const r = serveRefusal(['--socket-dir', dir]);
    assert.equal(r.status, 1, r.lines.join('\n'));
    assert.equal(r.lines.length, 1);
    assert.ok(r.lines[0]?.includes(`socket dir ${dir} is owned by uid ${NOBODY}, not by us`));
    assert.deepEqual(readdirSync(dir), []);
  });

  it('a dir in a parent others can write (not sticky) is refused', () => {
    const parent = join(tempDir(), 'open');
    mkdirSync(parent);
    chmodSync(parent, 0o777);
    const dir = join(parent, 'sockets');
    mkdirSync(dir, { mode: 0o700 });
    const r = serveRefusal(['--socket-dir', dir]);
    assert.equal(r.status, 1, r.lines.join('\n'));
    assert.equal(r.lines.length, 1);
    assert.ok(r.lines[0]?.includes(`socket dir ${dir} is in ${parent}, which is writable`));
  });

  it('a dir under an ancestor of another uid is refused, naming that ancestor (socket dir and socket path)', {
    skip: notRoot,
  }, () => {
    // The reviewer's reproduction: g is theirs (0755), mine is ours (0700) inside it; they could
    // rename mine away and plant their own listener in a new one.
    const base = tempDir();
    const g = join(base, 'g');
    mkdirSync(g, { mode: 0o755 });
    chownSync(g, NOBODY, NOBODY);
    const mine = join(g, 'mine');
    mkdirSync(mine, { mode: 0o700 });
    const dir = join(mine, 'sock');
    const r = serveRefusal(['--socket-dir', dir]);
    assert.equal(r.status, 1, r.lines.join('\n'));
    assert.deepEqual(r.lines, [
      `vfio-nvlink2: serve: SOCKET_DIR: socket dir ${dir} is under ${g}, which is owned by uid ${NOBODY}, not by us (uid 0); another user could rename it away: choose a --socket-dir elsewhere`,
    ]);
    const m = serveRefusal(['--socket-dir', mine]);
    assert.equal(m.status, 1, m.lines.join('\n'));
    assert.match(
      m.lines[0] ?? '',
      new RegExp(`socket dir ${mine} is in ${g}, which is owned by uid ${NOBODY}`),
    );
    const path = join(mine, 'gpu.sock');
    const p = serveRefusal(['--device', GPU, '--socket-path', path]);
    assert.equal(p.status, 1, p.lines.join('\n'));
    assert.equal(p.lines.length, 1, p.lines.join('\n'));
    assert.ok(
      p.lines[0]?.includes(
        `${path}: its directory ${mine} is under ${g}, which is owned by uid ${NOBODY}`,
      ),
      p.lines[0],
    );
    assert.equal(existsSync(path), false);
  });

  it('a dir two levels under a directory others can write (not sticky) is refused, naming it', () => {
    const open = join(tempDir(), 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const dir = join(open, 'ours', 'sockets');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const r = serveRefusal(['--socket-dir', dir]);
    assert.equal(r.status, 1, r.lines.join('\n'));
    assert.equal(r.lines.length, 1, r.lines.join('\n'));
    assert.ok(
      r.lines[0]?.includes(
        `socket dir ${dir} is under ${open}, which is writable by group or others and not sticky (mode 0777)`,
      ),
      r.lines[0],
    );
    assert.deepEqual(readdirSync(dir), []);
  });

  it('a symlink on the way to a dir under an unsafe ancestor does not hide it', () => {
    const base = tempDir();
    const open = join(base, 'open');
    mkdirSync(join(open, 'ours'), { recursive: true, mode: 0o700 });
    chmodSync(open, 0o777);
    symlinkSync(join(open, 'ours'), join(base, 'link'));
    const r = serveRefusal(['--socket-dir', join(base, 'link', 'sockets')]);
    assert.equal(r.status, 1, r.lines.join('\n'));
    assert.equal(r.lines.length, 1, r.lines.join('\n'));
    assert.ok(
      r.lines[0]?.includes(`under ${open}, which is writable by group or others`),
      r.lines[0],
    );
  });

  it('--socket-path in a directory others can write (not sticky) is refused', () => {
    const dir = tempDir();
    chmodSync(dir, 0o777);
    const path = join(dir, 'gpu.sock');
    const r = serveRefusal(['--device', GPU, '--socket-path', path]);
    assert.equal(r.status, 1, r.lines.join('\n'));
    assert.equal(r.lines.length, 1);
    assert.ok(r.lines[0]?.includes(`${path}: its directory ${dir} is writable by group or others`));
    assert.equal(existsSync(path), false);
  });
});

describe('nothing is written, replaced or unlinked through a link or for another uid', () => {
  it('symlinks at devices.json or state.json: serve refuses to start, the links and their targets untouched', () => {
    for (const name of ['devices.json', 'state.json']) {
      const base = tempDir();
      const dir = join(base, 'sockets');
      mkdirSync(dir, { mode: 0o700 });
      const target = join(base, 'victim');
      writeFileSync(target, 'victim\n');
      symlinkSync(target, join(dir, name));
      const r = runCli(['serve', '--socket-dir', dir]);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(
        r.stderr,
        `vfio-nvlink2: serve: SOCKET_DIR: ${dir}/${name} is there and is not a file serve wrote (is a symbolic link; not following it); move it away or choose another --socket-dir\n`,
      );
      assert.ok(lstatSync(join(dir, name)).isSymbolicLink(), 'the link left as it was');
      assert.equal(readFileSync(target, 'utf8'), 'victim\n');
    }
  });

  it('symlinks at the old temp names of devices.json and state.json are left alone', async () => {
    const base = tempDir();
    const dir = join(base, 'sockets');
    mkdirSync(dir, { mode: 0o700 });
    const targets = ['a', 'b'].map((n) => join(base, `victim-${n}`));
    for (const t of targets) writeFileSync(t, `victim ${t}\n`);
    const [a, b] = targets as [string, string];
    // The temp names the server used to write through: <name>.<pid>.tmp ($$ is its pid).
    const prelude = `ln -s ${a} ${dir}/devices.json.$$.tmp && ln -s ${b} ${dir}/state.json.$$.tmp`;
    const serve = await startServeAfter(prelude, ['--socket-dir', dir]);
    const pid = serve.child.pid;
    try {
      for (const t of targets) assert.equal(readFileSync(t, 'utf8'), `victim ${t}\n`, t);
      assert.ok(lstatSync(join(dir, 'devices.json')).isFile());
      assert.equal(JSON.parse(readFileSync(join(dir, 'devices.json'), 'utf8')).length, 24);
      assert.ok(lstatSync(join(dir, 'state.json')).isFile());
      assert.ok(lstatSync(join(dir, `devices.json.${pid}.tmp`)).isSymbolicLink(), 'left alone');
      assert.ok(lstatSync(join(dir, `state.json.${pid}.tmp`)).isSymbolicLink(), 'left alone');
    } finally {
      assert.equal(await serve.stop(), 0);
    }
    for (const t of targets) assert.equal(readFileSync(t, 'utf8'), `victim ${t}\n`, t);
  });

  it('at exit, a socket or JSON file put in place of ours is left alone (st_dev/st_ino)', async () => {
    const dir = join(tempDir(), 'sockets');
    const serve = await startServeAfter('', ['--socket-dir', dir]);
    const gpu = join(dir, `${GPU}.sock`);
    const planted = join(dir, 'planted');
    let theirs = -1;
    try {
      // As someone who could write the directory would: move ours away, put theirs there.
      renameSync(gpu, `${gpu}.moved`);
      theirs = listenUnix(gpu);
      for (const name of ['devices.json', 'state.json']) {
        writeFileSync(planted, `theirs ${name}\n`);
        renameSync(planted, join(dir, name));
      }
    } finally {
      assert.equal(await serve.stop(), 0);
    }
    try {
      assert.ok(lstatSync(gpu).isSocket(), 'the planted socket is still there');
      for (const name of ['devices.json', 'state.json'])
        assert.equal(readFileSync(join(dir, name), 'utf8'), `theirs ${name}\n`, name);
      const left = readdirSync(dir).filter((n) => n.endsWith('.sock'));
      assert.deepEqual(left, [`${GPU}.sock`], 'every other socket of ours was removed');
      for (const what of [gpu, join(dir, 'devices.json'), join(dir, 'state.json')]) {
        await waitFor(`the log line for ${what}`, () =>
          [`${what}: not removing it`, `not removing ${what}:`].some((l) =>
            serve.stderr().includes(l),
          ),
        );
      }
    } finally {
      closeFd(theirs);
    }
  });

  it('a symlink at --socket-path is refused and its target (a stale socket) kept', () => {
    const dir = tempDir();
    const target = join(dir, 'stale.sock');
    closeFd(listenUnix(target));
    const path = join(dir, 'gpu.sock');
    symlinkSync(target, path);
    const r = serveRefusal(['--device', GPU, '--socket-path', path]);
    assert.equal(r.status, 1, r.lines.join('\n'));
    assert.deepEqual(r.lines, [
      `vfio-nvlink2: serve: SOCKET_PATH: ${path} is a symbolic link; not following or replacing it: remove the link, or choose another socket path`,
    ]);
    assert.ok(lstatSync(path).isSymbolicLink());
    assert.ok(lstatSync(target).isSocket());
  });

  it('a stale socket of another uid at --socket-path is not unlinked', { skip: notRoot }, () => {
    const path = join(tempDir(), 'gpu.sock');
    closeFd(listenUnix(path)); // bound, nobody listens: stale
    lchownSync(path, NOBODY, NOBODY);
    const r = serveRefusal(['--device', GPU, '--socket-path', path]);
    assert.equal(r.status, 1, r.lines.join('\n'));
    assert.equal(r.lines.length, 1);
    assert.ok(r.lines[0]?.includes(`${path} is a socket of uid ${NOBODY}, not ours`));
    assert.equal(lstatSync(path).uid, NOBODY, 'still theirs');
  });
});

/**
 * Connects to `path` as uid 65534 and sends VERSION: 'reply' when served, 'closed' when the
 * server hung up, 'connect <errno>' when the file modes kept it out.
 */
async function versionAsNobody(path: string): Promise<string> {
  const script = `
import os, socket, struct, sys
os.setgroups([]); os.setgid(${NOBODY}); os.setuid(${NOBODY})
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(120)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print('connect', e.errno); sys.exit(0)
body = struct.pack('<HH', 0, 0) + b'{"capabilities":{"max_msg_fds":16}}\\0'
try:
    s.sendall(struct.pack('<HHIII', 1, 1, 16 + len(body), 0, 0) + body)
    head = s.recv(16)
except ConnectionError:
    head = b''
print('reply' if head else 'closed')
`;
  const child = spawn(PYTHON, ['-c', script, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const code = await within(
    'the python client of another uid to exit',
    new Promise<number | null>((resolve) => child.once('exit', resolve)),
  ).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
  assert.equal(code, 0, err);
  return out.trim();
}

describe('peers of another uid (SO_PEERCRED)', { skip: notRoot }, () => {
  it('cannot even connect by default: the socket is 0600 in a 0700 directory', async () => {
    const dir = join(tempDir(), 'sockets');
    const serve = await startServeAfter('', ['--socket-dir', dir]);
    try {
      assert.equal(await versionAsNobody(join(dir, `${GPU}.sock`)), 'connect 13');
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });

  it('are refused, logged with the socket path and uid, when the modes let them connect', async () => {
    const base = tempDir();
    chmodSync(base, 0o711);
    const dir = join(base, 'sockets');
    const serve = await startServeAfter('', ['--socket-dir', dir]);
    const socket = join(dir, `${GPU}.sock`);
    try {
      chmodSync(dir, 0o711); // an operator loosening the modes: the uid check still holds
      chmodSync(socket, 0o666);
      assert.equal(await versionAsNobody(socket), 'closed');
      const line = await waitFor('the refusal in the log', () =>
        serve
          .stderr()
          .split('\n')
          .find((l) => l.includes('refusing')),
      );
      assert.ok(line.includes(`${socket}: refusing pid `), line);
      assert.ok(line.includes(`of uid ${NOBODY}: not our uid 0`), line);
      const c = await VfioUserClient.connect(socket); // ours still served
      c.close();
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });

  it('--allow-uid lets the listed uid in (sockets 0666, dir 0711) and still refuses others', async () => {
    const base = tempDir();
    chmodSync(base, 0o711);
    const listed = join(base, 'listed');
    const serve = await startServeAfter('', [
      '--socket-dir',
      listed,
      '--allow-uid',
      `1234,${NOBODY}`,
    ]);
    try {
      assert.equal(mode(listed).toString(8), '711');
      assert.equal(mode(join(listed, `${GPU}.sock`)).toString(8), '666');
      assert.equal(await versionAsNobody(join(listed, `${GPU}.sock`)), 'reply');
    } finally {
      assert.equal(await serve.stop(), 0);
    }
    const other = join(base, 'other');
    const refusing = await startServeAfter('', ['--socket-dir', other, '--allow-uid', '1234']);
    try {
      assert.equal(await versionAsNobody(join(other, `${GPU}.sock`)), 'closed');
      // The log line reaches our end of the stderr pipe after the close: wait for it.
      await waitFor('the refusal in the log', () =>
        new RegExp(`refusing pid \\d+ of uid ${NOBODY}`).test(refusing.stderr()),
      );
    } finally {
      assert.equal(await refusing.stop(), 0);
    }
  });
});
