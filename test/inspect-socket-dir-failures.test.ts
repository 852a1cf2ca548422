/**
 * `inspect --socket-dir DIR` reports every per-device failure on that device's line (and on
 * stderr, exit 1; --json `{name, error: {code, message}}` with the text output's message) while
 * the other devices are described: a device that accepts and never answers (ETIMEDOUT after
 * QEMU's 5 s), a socket nobody listens on (ECONNREFUSED), a device that closes mid-describe.
 * The described device is a real server's, reached through a symlink in DIR.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCliInProcess } from './support/cli.ts';
import { GPU, type ServeProcess, startServe } from './support/serve-process.ts';

const SILENT = '0009:00:00.0';
const REFUSING = '0009:00:01.0';
const CLOSING = '0009:00:02.0';

let serve: ServeProcess;
let dir: string;
const servers: Server[] = [];
const peers: Socket[] = [];

function listen(path: string, onConnection: (s: Socket) => void): Promise<void> {
  const server = createServer((s) => {
    peers.push(s);
    onConnection(s);
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(path, resolve));
}

before(async () => {
  serve = await startServe();
  dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-inspect-fail-'));
  symlinkSync(serve.socket(GPU), join(dir, `${GPU}.sock`));
  await listen(join(dir, `${SILENT}.sock`), () => {}); // accepts, never answers
  await listen(join(dir, `${CLOSING}.sock`), (s) => s.once('data', () => s.destroy()));
  // A socket bound by a process that is gone: nobody listens there.
  const r = spawnSync('python3', [
    '-c',
    'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])',
    join(dir, `${REFUSING}.sock`),
  ]);
  assert.equal(r.status, 0, r.stderr.toString());
});
after(async () => {
  for (const p of peers) p.destroy();
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
  await serve.stop();
});

describe('inspect --socket-dir with failing devices', () => {
  it('puts each failure on its device line and stderr, describes the rest, exit 1', async () => {
    const r = await runCliInProcess(['inspect', '--socket-dir', dir]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, new RegExp(`^${GPU} {2}Tesla V100`, 'm'), r.stdout);
    for (const [name, code, says] of [
      [SILENT, 'ETIMEDOUT', 'no reply to VFIO_USER_VERSION \\(msg 0\\) within 5000 ms'],
      [REFUSING, 'ECONNREFUSED', 'connect ECONNREFUSED'],
      [CLOSING, 'E[A-Z]+', 'vfio-user connection closed'],
    ] as const) {
      assert.match(
        r.stdout,
        new RegExp(`^${name} {2}not described: \\S+${name}\\.sock: ${says}`, 'm'),
        r.stdout,
      );
      assert.match(
        r.stderr,
        new RegExp(`^vfio-nvlink2: inspect: ${code}: \\S+${name}\\.sock`, 'm'),
      );
    }
  });

  it('--json: {name, error: {code, message}} with the text output message, others described', async () => {
    const text = await runCliInProcess(['inspect', '--socket-dir', dir]);
    const r = await runCliInProcess(['inspect', '--socket-dir', dir, '--json']);
    assert.equal(r.status, 1, r.stderr);
    const entries = JSON.parse(r.stdout) as {
      name: string;
      error?: { code: string; message: string };
    }[];
    assert.deepEqual(
      entries.map((e) => e.name),
      [GPU, SILENT, REFUSING, CLOSING],
    );
    assert.equal(entries[0]?.error, undefined);
    for (const e of entries.slice(1)) {
      assert.ok(e.error !== undefined, e.name);
      // The same sentence as the text output's line for that device.
      assert.ok(
        text.stdout.includes(`${e.name}  not described: ${e.error.message}\n`),
        `${e.error.message}\n${text.stdout}`,
      );
    }
    assert.equal(entries[1]?.error?.code, 'ETIMEDOUT');
    assert.equal(entries[2]?.error?.code, 'ECONNREFUSED');
  });
});
