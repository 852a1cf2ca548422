/**
 * A progress bar hides the cursor and turns line wrap off (ESC[?25l ESC[?7l); ^C of the command
 * on a terminal puts both back (ESC[?25h ESC[?7h) before the process exits. Run under a real
 * pty (python3's pty module): `migrate` from a real server to a destination that accepts and
 * never answers, so the bar is up while migrate waits, and a long `fuzz`; ^C is typed into the
 * pty.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliArgs } from './support/cli.ts';
import { GPU, type ServeProcess, startServe } from './support/serve-process.ts';
import { within } from './support/wait.ts';

/** Runs argv on a pty; once `ready` shows, types ^C; prints {before, after, status} as hex. */
const PTY_RUN = String.raw`
import json, os, pty, select, sys, time
ready = sys.argv[1].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
def read_until(pred, seconds):
    out = b''
    deadline = time.time() + seconds
    while time.time() < deadline and not pred(out):
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
    return out, False
before, eof = read_until(lambda b: ready in b, 60)
os.write(fd, b'\x03')
after, eof = read_until(lambda b: False, 60)
_, status = os.waitpid(pid, 0)
print(json.dumps({'before': before.hex(), 'after': after.hex(), 'status': status}))
`;

let serve: ServeProcess;
let dir: string;
const peers: Socket[] = [];
const silent = createServer((s) => peers.push(s)); // accepts, never answers

before(async () => {
  serve = await startServe();
  dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-pty-'));
  await new Promise<void>((resolve) => silent.listen(join(dir, 'silent.sock'), resolve));
});
after(async () => {
  for (const p of peers) p.destroy();
  silent.close();
  rmSync(dir, { recursive: true, force: true });
  await serve.stop();
});

/** Runs `argv` on a pty, types ^C once `ready` shows: what it wrote before and after, its status. */
async function ctrlC(
  ready: string,
  argv: string[],
): Promise<{ before: string; after: string; status: number; err: string }> {
  const child = spawn('python3', ['-c', PTY_RUN, ready, process.execPath, ...argv]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  await within('the pty run', new Promise((resolve) => child.once('exit', resolve)));
  const r = JSON.parse(out) as { before: string; after: string; status: number };
  return {
    before: Buffer.from(r.before, 'hex').toString('latin1'),
    after: Buffer.from(r.after, 'hex').toString('latin1'),
    status: r.status,
    err,
  };
}

/** The bar hid the cursor before ^C; both the cursor and line wrap are back after it. */
function assertRestored(r: { before: string; after: string; err: string }): void {
  assert.ok(
    r.before.includes('\x1b[?25l'),
    `the bar hid the cursor: ${JSON.stringify(r.before)} ${r.err}`,
  );
  assert.ok(r.after.includes('\x1b[?25h'), `cursor shown after ^C: ${JSON.stringify(r.after)}`);
  assert.ok(r.after.includes('\x1b[?7h'), `line wrap back after ^C: ${JSON.stringify(r.after)}`);
}

describe('^C of a command with a progress bar on a terminal', () => {
  it('migrate: the bytes after ^C show the cursor and turn line wrap back on', async () => {
    const r = await ctrlC(
      'migrate [',
      cliArgs('migrate', '--from', serve.socket(GPU), '--to', join(dir, 'silent.sock')),
    );
    assertRestored(r);
    assert.match(r.after, /interrupted \(SIGINT\)/);
    // The restore comes before the interrupted line, so that line is not drawn over the bar.
    assert.ok(r.after.indexOf('\x1b[?25h') < r.after.indexOf('interrupted'));
  });

  it('fuzz: the bytes after ^C show the cursor and turn line wrap back on; exit 130', async () => {
    const r = await ctrlC('fuzz [', cliArgs('fuzz', '--messages', '100000000', '--seed', '1'));
    assertRestored(r);
    assert.equal(r.status >> 8, 130, `exit status ${r.status >> 8}`);
  });
});
