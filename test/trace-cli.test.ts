/**
 * `vfio-nvlink2 trace` against the real server in a second process, with a vfio-user client in
 * this one: the control socket serve creates beside the device sockets (a socket, mode 0600);
 * ftrace text lines in the kernel's layout with only the events asked for; Chrome trace-event
 * JSON whose nvlink2_lpid_map LPID is the one state.json gives the client's partition (read
 * through a second path); a bad request answered with one error line, serve serving on; clear
 * errors for an unknown event and a directory without serve.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closeFd } from '../src/native/index.ts';
import { cliArgs, runCli } from './support/cli.ts';
import {
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';

const GIB = 1n << 30n;

interface Tracing {
  child: ChildProcess;
  out(): string;
  err(): string;
  exited: Promise<number | null>;
}

function startTrace(...args: string[]): Tracing {
  const child = spawn(process.execPath, cliArgs('trace', ...args), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, out: () => out, err: () => err, exited };
}

/** A client session on the GPU: opens it (LPID map), writes GPU RAM, takes the mmap, closes. */
async function clientWork(serve: ServeProcess): Promise<number> {
  const client = await connectWhenFree(serve, GPU);
  try {
    await client.regionWrite(9, GIB, new Uint8Array(4096).fill(3));
    const info = await client.regionInfo(9);
    if (info.fd !== null) closeFd(info.fd);
    return await waitFor(
      'the partition in state.json',
      () => serve.state().partitions.find((p) => p.devices.includes(GPU))?.lpid,
    );
  } finally {
    client.close();
  }
}

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

describe('trace --socket-dir', () => {
  it('serve creates DIR/trace.ctl, a socket of mode 0600', () => {
    const st = lstatSync(join(serve.dir, 'trace.ctl'));
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
  });

  it('streams ftrace text lines of the events asked for only', async () => {
    const t = startTrace('--socket-dir', serve.dir, '--events', 'vfio_pci,nvlink2_lpid_map');
    try {
      await waitFor('the attach line', () => t.err().includes('trace: attached to serve pid'));
      const lpid = await clientWork(serve);
      await waitFor('the mmap line', () => t.out().includes('vfio_pci_nvgpu_mmap:'));
      const lines = t.out().trimEnd().split('\n');
      // trace_output.c: "%16s-%-7d [%03d] %5lu.%06lu: " then the event and its TP_printk.
      const layout = /^ {0,15}[^ ]+-\d+ {0,7} \[000\] +\d+\.\d{6}: (\w+): (.*)$/;
      for (const l of lines) assert.match(l, layout);
      const events = lines.map((l) => layout.exec(l)?.[1]);
      assert.ok(events.every((e) => e === 'nvlink2_lpid_map' || e?.startsWith('vfio_pci_')));
      const messages = lines.map((l) => layout.exec(l)?.[2]);
      assert.ok(messages.includes(`${GPU}: phb 0 bdf 100 lpid ${lpid} msr 4010 ret=0`));
      assert.ok(messages.includes(`${GPU}: 3e000000000 -> 0 size=2000000000 ret=0`));
      assert.ok(!t.out().includes('nvlink2_region_write'));
    } finally {
      t.child.kill('SIGINT');
    }
    assert.equal(await t.exited, 0);
    await waitFor('the detach log line', () => serve.stderr().includes('detached'));
  });

  it('--json writes Chrome trace-event JSON; the LPID mapped is the partition state.json shows', async () => {
    const t = startTrace('--socket-dir', serve.dir, '--json');
    let lpid = -1;
    try {
      await waitFor('the attach line', () => t.err().includes('trace: attached'));
      lpid = await clientWork(serve);
      await waitFor('the mmap event', () => t.out().includes('"vfio_pci_nvgpu_mmap"'));
    } finally {
      t.child.kill('SIGTERM');
    }
    assert.equal(await t.exited, 0);
    const events = JSON.parse(t.out()) as {
      name: string;
      ph: string;
      ts?: number;
      pid: number;
      args: Record<string, string | number>;
    }[];
    assert.deepEqual(events[0], {
      name: 'process_name',
      ph: 'M',
      pid: serve.pid,
      args: { name: 'vfio-nvlink2 serve' },
    });
    const map = events.find((e) => e.name === 'nvlink2_lpid_map');
    assert.ok(map, 'an nvlink2_lpid_map event');
    assert.equal(map.ph, 'i');
    assert.equal(map.pid, serve.pid);
    assert.equal(map.args.lpid, lpid);
    assert.equal(map.args.name, GPU);
    const write = events.find((e) => e.name === 'nvlink2_region_write');
    assert.equal(write?.args.offset, '0x40000000');
    assert.equal(write?.args.count, 4096);
    const ts = events.filter((e) => e.ph === 'i').map((e) => e.ts ?? -1);
    assert.deepEqual(
      ts,
      [...ts].sort((a, b) => a - b),
    );
  });

  it('a bad request gets one error line and serve goes on serving', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = createConnection(join(serve.dir, 'trace.ctl'));
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString();
      });
      s.on('close', () => resolve(got));
      s.on('error', reject);
      s.write('{"events": ["no_such_event"]}\n');
    });
    assert.match(reply, /^\{"error":"unknown event 'no_such_event' \(events: .*\)"\}\n$/);
    await clientWork(serve);
  });

  it('when serve exits, trace closes its JSON and exits 0', async () => {
    const own = await startServe();
    const t = startTrace('--socket-dir', own.dir, '--json');
    try {
      await waitFor('the attach line', () => t.err().includes('trace: attached'));
      assert.equal(await own.stop(), 0);
      assert.equal(await t.exited, 0);
      const events = JSON.parse(t.out()) as { name: string }[];
      assert.equal(events[0]?.name, 'process_name');
    } finally {
      t.child.kill('SIGKILL');
    }
  });

  it('an unknown --events name and a directory without serve are one clear line each', () => {
    const bad = runCli(['trace', '--socket-dir', serve.dir, '--events', 'nvlink2_x']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^vfio-nvlink2: trace: USAGE: --events: unknown event 'nvlink2_x'/);
    const empty = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-trace-'));
    try {
      const none = runCli(['trace', '--socket-dir', empty]);
      assert.equal(none.status, 1);
      assert.equal(
        none.stderr,
        `vfio-nvlink2: trace: SOCKET_PATH: cannot attach to serve at ${empty}/trace.ctl (ENOENT): is \`serve --socket-dir ${empty}\` running?\n`,
      );
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
