/**
 * `vfio-nvlink2 serve` as a process: devices.json in doctor's vocabulary with a socket for
 * every GPU and bridge, SIGTERM/SIGINT closing clients and removing sockets and JSON files
 * with exit status 0, stale sockets replaced, a live socket refused, and the backend
 * convention --device ADDRESS --socket-path[=]PATH.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { closeFd, listenUnix } from '../src/native/index.ts';
import { ReplyError, VfioUserClient } from '../src/vfio-user/index.ts';
import { cliArgs, runCli, runCliInProcess } from './support/cli.ts';
import { BRIDGE, GPU, startServe, waitFor } from './support/serve-process.ts';
import { within } from './support/wait.ts';

describe('serve', () => {
  it('lists every PCI function in devices.json; GPUs and bridges have sockets', async () => {
    const serve = await startServe();
    try {
      const devices = serve.devices();
      assert.equal(devices.length, 24);
      const gpu = devices.find((d) => d.address === GPU);
      assert.deepEqual(gpu, {
        address: GPU,
        vendor: '0x10de',
        device: '0x1db1',
        role: 'gpu',
        // chip 0's NPU compound group, as Linux 5.12 numbered it (src/platform/host.test.ts)
        iommuGroup: 6,
        socket: serve.socket(GPU),
        result: 'nvlink2',
        errno: null,
        reason: null,
      });
      const other = devices.find((d) => d.role === 'other');
      assert.equal(other?.socket, undefined);
      assert.equal(other?.iommuGroup, null); // a root port: no group
      assert.equal(other?.result, 'plain');
      assert.equal(other?.errno, 'ENODEV');
      assert.match(other?.reason ?? '', /ibm,gpu/);
      const served = devices.filter((d) => d.socket !== undefined);
      assert.equal(served.length, 18);
      assert.ok(served.every((d) => d.role === 'gpu' || d.role === 'bridge'));
      assert.ok(served.every((d) => existsSync(d.socket ?? '')));
      assert.match(serve.stdout(), /^ADDRESS\s+ID\s+ROLE\s+GROUP\s+RESULT\s+SOCKET/m);
    } finally {
      await serve.stop();
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} closes clients, removes sockets and JSON files, exits 0`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-sig-'));
      const serve = await startServe([], { dir });
      const client = await VfioUserClient.connect(serve.socket(GPU));
      const code = await serve.stop(signal);
      assert.equal(code, 0);
      const reason = await client.channel.closed;
      assert.notEqual(reason.kind, 'local', 'the server closed the client');
      assert.deepEqual(readdirSync(dir), []);
      rmSync(dir, { recursive: true });
    });
  }

  it('a SIGTERM as soon as the first socket exists (before the table) still closes all, exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-sig-early-'));
    const child = spawn(process.execPath, cliArgs('serve', '--socket-dir', dir), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('exit', (code, signal) => resolve([code, signal])),
    );
    // inotify reports the first bind(2) at once: serve is then still listening on the others.
    const watcher = watch(dir, (_event, name) => {
      if (name?.endsWith('.sock')) {
        watcher.close();
        child.kill('SIGTERM');
      }
    });
    try {
      const [code, signal] = await within('serve to exit on the early SIGTERM', exited);
      assert.deepEqual([code, signal], [0, null], `stdout so far: ${out.slice(-200)}`);
      assert.deepEqual(readdirSync(dir), [], 'every socket and JSON file removed');
    } finally {
      watcher.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replaces a stale socket and refuses a live one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-stale-'));
    closeFd(listenUnix(join(dir, `${GPU}.sock`))); // bound, nobody listens any more
    const serve = await startServe([], { dir });
    try {
      const c = await VfioUserClient.connect(serve.socket(GPU));
      c.close();
      const second = runCli(['serve', '--socket-dir', dir]);
      assert.notEqual(second.status, 0);
      assert.match(second.stderr, /is in use by another running server/);
      assert.ok(existsSync(serve.socket(BRIDGE)), "the first server's sockets are untouched");
    } finally {
      await serve.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const form of ['--socket-path PATH', '--socket-path=PATH']) {
    it(`serves one device with --device ADDRESS ${form}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-one-'));
      const path = join(dir, 'gpu.sock');
      const args = form.includes('=')
        ? ['--device', GPU, `--socket-path=${path}`]
        : ['--device', GPU, '--socket-path', path];
      const serve = await startServe(args, { dir, readyFile: path });
      try {
        const c = await VfioUserClient.connect(path);
        assert.deepEqual(await c.regionRead(7, 0n, 2), new Uint8Array([0xde, 0x10]));
        c.close();
        assert.deepEqual(readdirSync(dir), ['gpu.sock'], 'one socket, no devices.json');
        assert.match(serve.stdout(), /\nready: 1 socket\n$/);
      } finally {
        assert.equal(await serve.stop(), 0);
      }
      assert.deepEqual(readdirSync(dir), []);
      rmSync(dir, { recursive: true });
    });
  }

  it('rejects bad usage with exit status 2', async () => {
    // The first spawned (the exit status as the process sets it), the others in process: a
    // usage error ends serve before it starts anything.
    const cases = [['--lpid', '0'], ['--lpid', '4095'], ['--device', GPU], ['extra']];
    for (const [i, args] of cases.entries()) {
      const r = i === 0 ? runCli(['serve', ...args]) : await runCliInProcess(['serve', ...args]);
      assert.equal(r.status, 2, args.join(' '));
    }
  });

  it('fails at once, naming the directory, when the socket dir cannot be created', () => {
    const r = runCli(['serve', '--socket-dir', '/proc/no-such-dir/sockets']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /cannot create \/proc\/no-such-dir\/sockets \(ENOENT\)/);
  });
});

describe('serve --trace', () => {
  it('writes the GPU RAM mmap and the pages a client faults in as ftrace lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-trace-'));
    const trace = join(dir, 'trace.txt');
    const serve = await startServe(['--trace', trace]);
    try {
      const c = await VfioUserClient.connect(serve.socket(GPU));
      const m = await c.mapRegion(9);
      m.areas[0]?.mapping.write(0x20000n, new Uint8Array([1]));
      const text = await waitFor('the fault tracepoint', () => {
        const t = existsSync(trace) ? readFileSync(trace, 'utf8') : '';
        return t.includes('vfio_pci_nvgpu_mmap_fault') ? t : undefined;
      });
      assert.match(text, /vfio_pci_nvgpu_mmap: 0002:01:00\.0: /);
      assert.match(text, /vfio_pci_nvgpu_mmap_fault: 0002:01:00\.0: \w+ -> \w+ ret=256/);
      m.unmap();
      c.close();
    } finally {
      await serve.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('serve a faulty tree', () => {
  it('lists the failing bridge as an error and fails its VERSION with the hook errno', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-faulty-'));
    const dtb = join(dir, 'faulty.dtb');
    const gen = await runCliInProcess([
      'dt',
      'generate',
      '--omit',
      `ibm,nvlink-speed@${BRIDGE}`,
      '-o',
      dtb,
    ]);
    assert.equal(gen.status, 0, gen.stderr);
    const serve = await startServe(['--dt', dtb]);
    try {
      const entry = serve.devices().find((d) => d.address === BRIDGE);
      assert.equal(entry?.result, 'error');
      assert.equal(entry?.errno, 'EFAULT');
      assert.equal(entry?.reason, `bridge ${BRIDGE} has no ibm,nvlink-speed`);
      await assert.rejects(
        VfioUserClient.connect(serve.socket(BRIDGE)),
        (e: unknown) => e instanceof ReplyError && e.remoteErrno === 14,
      );
      assert.deepEqual(serve.state().partitions, [], 'the failed open left no partition behind');
      const gpu = await VfioUserClient.connect(serve.socket(GPU));
      assert.equal((await gpu.getDeviceInfo()).numRegions, 10, 'the GPU itself still works');
      gpu.close();
    } finally {
      await serve.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
