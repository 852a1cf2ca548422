/**
 * `vfio-nvlink2 migrate` between two real `serve` processes while a third process keeps
 * writing the source GPU's RAM through its own mapping (src/bench/mapping-writer.ts, paused by
 * --pause-pid when the source stops, as a VMM pauses its vCPUs): the destination's GPU RAM,
 * config space, BARs and (after migrating the GPU's NVLink bridge) ATSD page equal the
 * source's byte for byte (SHA-256 of each, read back over each server's socket), and pre-copy
 * converged before its round limit.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeEntry } from '../src/bench/index.ts';
import { formatMigrateReport } from '../src/cli/migrate.ts';
import type { MigrateReport, VfioUserClient } from '../src/vfio-user/index.ts';
import { cliArgs, runCli } from './support/cli.ts';
import {
  BRIDGE,
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';
import { within } from './support/wait.ts';

const MiB = 1024 * 1024;
/** What each device's regions are compared over: [region, bytes from offset 0]. */
const GPU_REGIONS: [number, number][] = [
  [0, 16 * MiB],
  [1, 16 * MiB],
  [3, 32 * MiB],
  [7, 4096],
  [9, 16 * MiB],
];
const BRIDGE_REGIONS: [number, number][] = [
  [7, 256],
  [9, 0x10000],
];

let source: ServeProcess;
let destination: ServeProcess;
let writer: ChildProcess | undefined;

before(async () => {
  [source, destination] = await Promise.all([startServe(), startServe()]);
});
after(async () => {
  writer?.kill('SIGKILL');
  await Promise.all([source.stop(), destination.stop()]);
});

/** SHA-256 of [0, bytes) of each region, read 1 MiB at a time over the socket. */
async function digests(c: VfioUserClient, regions: [number, number][]): Promise<string[]> {
  const out: string[] = [];
  for (const [region, bytes] of regions) {
    const h = createHash('sha256');
    for (let at = 0; at < bytes; at += MiB)
      h.update(await c.regionRead(region, BigInt(at), Math.min(MiB, bytes - at)));
    out.push(`region ${region}: ${h.digest('hex')}`);
  }
  return out;
}

async function deviceDigests(serve: ServeProcess, address: string, regions: [number, number][]) {
  const c = await connectWhenFree(serve, address);
  try {
    return await digests(c, regions);
  } finally {
    c.close();
  }
}

/** Writes a few recognisable bytes into config space and BAR memory over REGION_WRITE. */
async function seed(serve: ServeProcess, address: string, writes: [number, number][]) {
  const c = await connectWhenFree(serve, address);
  try {
    for (const [region, offset] of writes) {
      const data = createHash('sha256').update(`${region}:${offset}`).digest();
      await c.regionWrite(region, BigInt(offset), region === 7 ? data.subarray(0, 2) : data);
    }
  } finally {
    c.close();
  }
}

function startWriter(socket: string, populate: number, hotPages: number): Promise<ChildProcess> {
  const cmd = nodeEntry('bench/mapping-writer', [socket, String(populate), String(hotPages)]);
  const child = spawn(cmd.file, [...cmd.args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return waitFor('the mapping writer', () => {
    if (child.exitCode !== null) throw new Error(`mapping writer exited: ${err}`);
    return out.includes('"ready":true') ? child : undefined;
  });
}

/** The state letter of /proc/PID/stat (T: stopped). */
function procState(pid: number): string | undefined {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2)[0];
}

describe('migrate', () => {
  it('moves a GPU whose RAM another process keeps writing, byte for byte', async () => {
    await seed(source, GPU, [
      [7, 0x04],
      [0, 0x200000],
      [1, 0x1000],
      [3, 0x10000],
      [9, 10 * MiB],
    ]);
    writer = await startWriter(source.socket(GPU), 8 * MiB, 16);
    const r = runCli([
      'migrate',
      '--from',
      source.socket(GPU),
      '--to',
      destination.socket(GPU),
      '--pause-pid',
      String(writer.pid),
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as MigrateReport;
    assert.ok(report.precopyRounds >= 2, `pre-copy rounds ${report.precopyRounds}`);
    assert.ok(report.precopyRounds < 8, `pre-copy did not converge: ${report.roundBytes}`);
    assert.ok((report.roundBytes[0] ?? 0) >= 8 * MiB, 'the first round sends the populated RAM');
    const [want, got] = await Promise.all([
      deviceDigests(source, GPU, GPU_REGIONS),
      deviceDigests(destination, GPU, GPU_REGIONS),
    ]);
    assert.deepEqual(got, want);
    writer.kill('SIGKILL');
  });

  it("moves the GPU's NVLink bridge: config space and ATSD page", async () => {
    await seed(source, BRIDGE, [
      [7, 0x04],
      [9, 0x08],
    ]);
    const r = runCli([
      'migrate',
      '--from',
      source.socket(BRIDGE),
      '--to',
      destination.socket(BRIDGE),
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^migrated .* → .*\nround +bytes\n/);
    assert.match(r.stdout, /downtime [\d.]+ ms/);
    const [want, got] = await Promise.all([
      deviceDigests(source, BRIDGE, BRIDGE_REGIONS),
      deviceDigests(destination, BRIDGE, BRIDGE_REGIONS),
    ]);
    assert.deepEqual(got, want);
  });

  it('refuses bad usage and a socket nobody serves with one line', () => {
    const same = runCli(['migrate', '--from', 'x.sock', '--to', 'x.sock']);
    assert.equal(same.status, 2);
    assert.match(same.stderr, /^vfio-nvlink2: migrate: USAGE: --from and --to are the same socket/);
    const none = runCli(['migrate', '--from', `${source.dir}/none.sock`, '--to', 'y.sock']);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /^vfio-nvlink2: migrate: ENOENT: source .*none\.sock: /);
  });

  it('refuses a negative --precopy-rounds or --pause-pid with what it must be, exit 2', () => {
    const sockets = ['--from', source.socket(GPU), '--to', destination.socket(GPU)];
    for (const [flag, value, must] of [
      ['--precopy-rounds', '-1', 'a whole number from 0 to 9999'],
      ['--pause-pid', '-3', 'a process id (a whole number from 1)'],
      ['--pause-pid', 'x', 'a process id (a whole number from 1)'],
    ] as const) {
      const r = runCli(['migrate', ...sockets, flag, value]);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(
        r.stderr,
        `vfio-nvlink2: migrate: USAGE: ${flag} must be ${must}, not '${value}'\n`,
      );
    }
  });

  it('a GPU stream into a bridge: one line naming the destination, its memory intact, paused pids resumed', async () => {
    await seed(destination, BRIDGE, [[9, 0x10]]);
    const before = await deviceDigests(destination, BRIDGE, BRIDGE_REGIONS);
    const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      const to = destination.socket(BRIDGE);
      const r = runCli([
        'migrate',
        '--from',
        source.socket(GPU),
        '--to',
        to,
        '--precopy-rounds',
        '0',
        '--pause-pid',
        String(sleeper.pid),
      ]);
      assert.equal(r.status, 1, r.stderr);
      // One line: no stack trace of the other in-flight MIG_DATA_WRITEs' rejections.
      assert.equal(
        r.stderr,
        `vfio-nvlink2: migrate: EINVAL: destination ${to} refused the stream (EINVAL): a device of another kind? see its log\n`,
      );
      // The sleeper was stopped when the source stopped, and runs again (SIGCONT).
      const stat = readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8');
      assert.equal(stat.slice(stat.lastIndexOf(')') + 2)[0], 'S', stat);
      // The destination's log names both IDs as every message does: four hex digits each.
      await waitFor('the refusal in the log', () =>
        destination.stderr().includes('saved from a 10de:1db1, this is 1014:04ea'),
      );
      // Refused at its HEADER: the bridge's ATSD page and config space are as they were.
      assert.deepEqual(await deviceDigests(destination, BRIDGE, BRIDGE_REGIONS), before);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('refuses --to the same socket by another path, and a --to that is not a socket', () => {
    const from = source.socket(GPU);
    const link = join(mkdtempSync(join(tmpdir(), 'vfio-nvlink2-mig-')), 'link');
    symlinkSync(dirname(from), link);
    for (const to of [`${dirname(from)}/./${basename(from)}`, `${link}/${basename(from)}`]) {
      const r = runCli(['migrate', '--from', from, '--to', to]);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(
        r.stderr,
        `vfio-nvlink2: migrate: USAGE: --from and --to are the same socket ${from} (${to} is another path to it)\n`,
      );
    }
    const file = join(dirname(link), 'file');
    writeFileSync(file, '');
    for (const [to, kind] of [
      [dirname(from), 'directory'],
      [file, 'file'],
    ] as const) {
      const r = runCli(['migrate', '--from', from, '--to', to]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `^vfio-nvlink2: migrate: USAGE: --to ${to} is not a socket but a ${kind}; give a device's socket [^\n]*\n$`,
        ),
      );
    }
    rmSync(dirname(link), { recursive: true, force: true });
  });

  for (const [signal, status] of [
    ['SIGINT', 130],
    ['SIGHUP', 129],
  ] as const)
    it(`interrupted (${signal}) after pausing: the paused pids run again, one line, exit ${status}`, async () => {
      // The paused pid is the destination server itself: the stop-copy writes then wait for
      // replies that never come, so the migration is certainly under way when SIGINT arrives.
      const state = (pid: number) => {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2)[0];
      };
      const args = ['migrate', '--from', source.socket(GPU), '--to', destination.socket(GPU)];
      const child = spawn(
        process.execPath,
        cliArgs(...args, '--precopy-rounds', '0', '--pause-pid', String(destination.pid)),
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      try {
        await waitFor('the destination server paused', () => state(destination.pid) === 'T');
        child.kill(signal);
        assert.equal(await within('migrate to exit', exited), status, err);
        assert.equal(err, `vfio-nvlink2: migrate: interrupted (${signal}); paused pids resumed\n`);
        assert.notEqual(state(destination.pid), 'T');
      } finally {
        child.kill('SIGKILL');
        process.kill(destination.pid, 'SIGCONT');
      }
    });

  it('a source that stops answering: one line naming it after one reply timeout, paused pids resumed', async () => {
    // The paused pid is the source server itself: stopped before STOP_COPY, it never answers.
    const from = source.socket(GPU);
    const args = ['migrate', '--from', from, '--to', destination.socket(GPU)];
    const child = spawn(
      process.execPath,
      cliArgs(...args, '--precopy-rounds', '0', '--pause-pid', String(source.pid)),
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    try {
      assert.equal(await within('migrate to exit', exited), 1, err);
      assert.match(
        err,
        new RegExp(
          `^vfio-nvlink2: migrate: ETIMEDOUT: source ${from} did not answer within 5000 ms \\(no reply to [A-Z_]+\\)\n$`,
        ),
      );
      assert.notEqual(procState(source.pid), 'T', 'the source server runs again');
    } finally {
      child.kill('SIGKILL');
      process.kill(source.pid, 'SIGCONT');
    }
  });

  it('a destination that goes away mid-migration: one line saying it closed, not that it refused', async () => {
    const other = await startServe();
    const to = other.socket(GPU);
    const args = ['migrate', '--from', source.socket(GPU), '--to', to];
    // Paused (stopped) when the source stops, then killed: its socket closes mid-stream.
    const child = spawn(
      process.execPath,
      cliArgs(...args, '--precopy-rounds', '0', '--pause-pid', String(other.pid)),
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    try {
      await waitFor('the destination server paused', () => procState(other.pid) === 'T');
      process.kill(other.pid, 'SIGKILL');
      assert.equal(await within('migrate to exit', exited), 1, err);
      assert.equal(
        err,
        `vfio-nvlink2: migrate: EIO: destination ${to} closed the connection mid-migration (its server exited? see its log)\n`,
      );
    } finally {
      child.kill('SIGKILL');
      await other.stop().catch(() => {});
    }
  });
});

describe('migrate report', () => {
  it('gives a small stop-copy a rate that is not 0', () => {
    const text = formatMigrateReport({
      roundBytes: [300],
      precopyRounds: 0,
      stopCopyBytes: 300,
      totalBytes: 300,
      downtimeMs: 1.5,
      stopCopyMs: 1,
      totalMs: 2,
    });
    assert.match(text, /stop-copy 300 bytes in 1\.0 ms, 292\.97 KiB\/s\)/);
  });
});
