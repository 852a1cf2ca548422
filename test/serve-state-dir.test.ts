/**
 * `serve --state-dir DIR` across a real kill -9: a client writes GPU RAM, BAR memory, a BAR
 * register page, config space and the ATSD page (through REGION_WRITE and through its
 * mapping); the server is killed with SIGKILL and started again on DIR; a new client reads every
 * byte back through REGION_READ and through a new mapping, and finds what the dead client held
 * released (no partition, LPIDs free, the GPU mapped back to the host in the NPU tables). Then
 * what must be refused is: a second server on DIR (named with the holder's pid), a state file of
 * another format, with a changed byte, cut short, a memory file cut short; each one line naming
 * the file. Also: GPU RAM files stay sparse, and a client cutting its memory file with
 * ftruncate(2) does not take the server down.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closeFd } from '../src/native/index.ts';
import { decodeStateFile, encodeStateFile, memoryFileName } from '../src/state-dir/index.ts';
import { VfioUserClient } from '../src/vfio-user/index.ts';
import { runCli } from './support/cli.ts';
import { BRIDGE, GPU, type ServeProcess, startServe, waitFor } from './support/serve-process.ts';

const GPU_RAM = 9;
const ATSD = 9;
const CONFIG = 7;
const BAR0 = 0;

const root = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-state-'));
const stateDir = join(root, 'state');

function pattern(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Where each thing was written, and with what. */
const writes = {
  ramByRegion: { offset: 0x1000n, data: pattern(1, 6000) },
  ramHighByRegion: { offset: 8n << 30n, data: pattern(2, 40_000) },
  ramByMapping: { offset: 0x20_0000n, data: pattern(3, 9000) },
  bar0ByRegion: { offset: 0x100n, data: pattern(4, 64) },
  atsdByRegion: { offset: 0x08n, data: pattern(5, 8) },
  atsdByMapping: { offset: 0x800n, data: pattern(6, 16) },
};
/** PCI_COMMAND memory + bus master, and BAR0's address. */
const configWrites = [
  { offset: 0x04n, data: new Uint8Array([0x06, 0x00]) },
  { offset: 0x10n, data: new Uint8Array([0x00, 0x00, 0xad, 0xde]) },
];

let first: ServeProcess;
let second: ServeProcess;
let bar0Size: bigint;
let configBefore: Uint8Array;
let doorbellRegister: Uint8Array;
let lpidsAtKill: number[] = [];

function serve(socketDir: string, extra: string[] = []): Promise<ServeProcess> {
  return startServe(['--state-dir', stateDir, ...extra], { dir: socketDir });
}

before(async () => {
  first = await serve(join(root, 'sock-1'));
  const gpu = await VfioUserClient.connect(first.socket(GPU));
  const bridge = await VfioUserClient.connect(first.socket(BRIDGE));
  for (const w of [writes.ramByRegion, writes.ramHighByRegion])
    await gpu.regionWrite(GPU_RAM, w.offset, w.data);
  const ram = await gpu.mapRegion(GPU_RAM);
  ram.write(writes.ramByMapping.offset, writes.ramByMapping.data);
  await gpu.regionWrite(BAR0, writes.bar0ByRegion.offset, writes.bar0ByRegion.data);
  bar0Size = (await gpu.getRegionInfo(BAR0, 1024)).info.size;
  // A register of BAR0's doorbell page (the DMA engine's ADDRESS, 16 bytes past the doorbell):
  // device state kept by the server, not in the shared memory.
  doorbellRegister = pattern(7, 8);
  await gpu.regionWrite(BAR0, bar0Size - 0x1000n + 0x10n, doorbellRegister);
  for (const w of configWrites) await gpu.regionWrite(CONFIG, w.offset, w.data);
  configBefore = await gpu.regionRead(CONFIG, 0n, 256);
  await bridge.regionWrite(ATSD, writes.atsdByRegion.offset, writes.atsdByRegion.data);
  const atsd = await bridge.mapRegion(ATSD);
  atsd.write(writes.atsdByMapping.offset, writes.atsdByMapping.data);
  assert.ok(first.state().partitions.length > 0, 'the client holds a partition');
  // kill -9 while the client is connected, holding its partition, LPID and mappings
  assert.equal(await first.stop('SIGKILL'), null);
  // What the dead server left: the GPU mapped to the client's LPID in the NPU tables.
  const machine = readFileSync(join(stateDir, 'machine.state'), 'utf8');
  lpidsAtKill = (
    JSON.parse(machine.slice(machine.indexOf('\n') + 1)) as {
      firmware: { bdfMap: { lpid: number }[] }[];
    }
  ).firmware.flatMap((n) => n.bdfMap.map((e) => e.lpid));
  ram.unmap();
  atsd.unmap();
  gpu.close();
  bridge.close();
  // The same socket directory, as a restart would; --sync: fdatasync on each write from now on.
  second = await serve(join(root, 'sock-1'), ['--sync']);
});

after(async () => {
  await first?.stop('SIGKILL').catch(() => {}); // when `before` failed half-way
  await second?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('serve --state-dir: after kill -9 and a restart', () => {
  it('GPU RAM reads back byte for byte, through REGION_READ and a new mapping', async () => {
    const gpu = await VfioUserClient.connect(second.socket(GPU));
    const ram = await gpu.mapRegion(GPU_RAM);
    try {
      for (const w of [writes.ramByRegion, writes.ramHighByRegion, writes.ramByMapping]) {
        assert.deepEqual(await gpu.regionRead(GPU_RAM, w.offset, w.data.length), w.data);
        assert.deepEqual(ram.read(w.offset, w.data.length), w.data);
      }
      assert.deepEqual(
        await gpu.regionRead(GPU_RAM, 0x10_0000n, 64),
        new Uint8Array(64),
        'never written: zeros',
      );
    } finally {
      ram.unmap();
      gpu.close();
    }
  });

  it('config space, BAR memory and a BAR register page are as they were', async () => {
    const gpu = await VfioUserClient.connect(second.socket(GPU));
    try {
      assert.deepEqual(await gpu.regionRead(CONFIG, 0n, 256), configBefore);
      assert.equal((configBefore[4] ?? 0) & 0x6, 0x6, 'the command bits written are there');
      const w = writes.bar0ByRegion;
      assert.deepEqual(await gpu.regionRead(BAR0, w.offset, w.data.length), w.data);
      assert.deepEqual(await gpu.regionRead(BAR0, bar0Size - 0x1000n + 0x10n, 8), doorbellRegister);
    } finally {
      gpu.close();
    }
  });

  it('the ATSD page reads back, through REGION_READ and a new mapping', async () => {
    const bridge = await VfioUserClient.connect(second.socket(BRIDGE));
    const atsd = await bridge.mapRegion(ATSD);
    try {
      for (const w of [writes.atsdByRegion, writes.atsdByMapping]) {
        assert.deepEqual(await bridge.regionRead(ATSD, w.offset, w.data.length), w.data);
        assert.deepEqual(atsd.read(w.offset, w.data.length), w.data);
      }
    } finally {
      atsd.unmap();
      bridge.close();
    }
  });

  it('what the killed client held is released: no partition, its LPID free, GPUs back on LPID 0', async () => {
    await waitFor('state.json of the new server', () => second.state().pid === second.pid);
    await waitFor('the clients of the tests before to be released', () =>
      second.state().partitions.length === 0 ? true : undefined,
    );
    const state = second.state();
    assert.ok(lpidsAtKill.includes(1), `the GPU was on the client's LPID 1: ${lpidsAtKill}`);
    assert.deepEqual(state.partitions, []);
    assert.deepEqual(state.lpidsInUse, [0, 4095]);
    for (const npu of state.firmware) for (const e of npu.bdfMap) assert.equal(e.lpid, 0);
    for (const npu of state.firmware) for (const a of npu.atsd) assert.equal(a.lpid, 0);
  });

  it('GPU RAM files are sparse: 128 GiB long, a few pages on disk', () => {
    const st = statSync(join(stateDir, 'memory', memoryFileName(`vfio-nvlink2:gpu-ram:${GPU}`)));
    assert.equal(st.size, 128 * 2 ** 30);
    assert.ok(st.blocks * 512 < 1024 * 1024, `${st.blocks} blocks allocated`);
  });

  it('a client cutting its GPU RAM file (ftruncate) does not take the server down', async () => {
    const gpu = await VfioUserClient.connect(second.socket(GPU));
    try {
      const info = await gpu.getRegionInfo(GPU_RAM, 64);
      assert.ok(info.fd !== null);
      ftruncateSync(info.fd, 0);
      closeFd(info.fd);
      const w = writes.ramByRegion;
      assert.deepEqual(
        await gpu.regionRead(GPU_RAM, w.offset, w.data.length),
        new Uint8Array(w.data.length),
        'what the client cut reads as zeros, as the kernel reads it',
      );
      await gpu.regionWrite(GPU_RAM, w.offset, w.data);
      assert.deepEqual(await gpu.regionRead(GPU_RAM, w.offset, w.data.length), w.data);
      const path = join(stateDir, 'memory', memoryFileName(`vfio-nvlink2:gpu-ram:${GPU}`));
      await waitFor('the file grown back to its size', () => statSync(path).size === 128 * 2 ** 30);
      // The server logs it right after its ftruncate: wait for the line, not only the size.
      await waitFor('the log line', () =>
        /a client cut it to \d+ bytes; grown back/.test(second.stderr()),
      );
    } finally {
      gpu.close();
    }
  });
});

/**
 * A copy of the state directory in a new directory, its lock left out. Sparse (cp keeps the
 * holes): a plain copy would write out 128 GiB of zeros per GPU.
 */
function copyStateDir(): string {
  const dir = mkdtempSync(join(root, 'copy-'));
  execFileSync('cp', ['-a', '--sparse=always', `${stateDir}/.`, dir]);
  rmSync(join(dir, 'lock'));
  return dir;
}

describe('serve --state-dir refuses', () => {
  /** A copy of the (live) state directory, damaged by `damage`, and serve's one error line. */
  function refusal(damage: (dir: string) => void): string {
    const dir = copyStateDir();
    damage(dir);
    const r = runCli(['serve', '--socket-dir', join(dir, 'sock'), '--state-dir', dir]);
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    return lines[0] as string;
  }

  it('a directory that cannot be made (under /proc): one line naming it, not a hang', () => {
    const dir = '/proc/vfio-nvlink2-state';
    const r = runCli(['serve', '--socket-dir', join(root, 'sock-proc'), '--state-dir', dir]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, `vfio-nvlink2: serve: STATE_DIR: ${dir}: cannot create (ENOENT)\n`);
  });

  it('a second server on the same directory, naming it and the holder pid', () => {
    const r = runCli(['serve', '--socket-dir', join(root, 'sock-2'), '--state-dir', stateDir]);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr.trim(),
      `vfio-nvlink2: serve: STATE_DIR: ${stateDir} is in use by another server (pid ${second.pid}, holding ${stateDir}/lock); one server per state directory`,
    );
  });

  it('a state file of another format', () => {
    let path = '';
    const line = refusal((dir) => {
      path = join(dir, 'machine.state');
      const text = readFileSync(path, 'latin1');
      writeFileSync(
        path,
        text.replace(/^vfio-nvlink2-state 1 /, 'vfio-nvlink2-state 2 '),
        'latin1',
      );
    });
    assert.equal(
      line,
      `vfio-nvlink2: serve: STATE_DIR: ${path}: written in state format 2; this server reads format 1`,
    );
  });

  it('bad magic', () => {
    let path = '';
    const line = refusal((dir) => {
      path = join(dir, 'machine.state');
      writeFileSync(path, `garbage${readFileSync(path, 'latin1')}`, 'latin1');
    });
    assert.equal(
      line,
      `vfio-nvlink2: serve: STATE_DIR: ${path}: not a state file of vfio-nvlink2 (bad magic)`,
    );
  });

  it('a byte changed (checksum), in the machine state and in a device state', () => {
    for (const name of ['machine.state', `devices/${GPU}.state`]) {
      let path = '';
      const line = refusal((dir) => {
        path = join(dir, name);
        const bytes = readFileSync(path);
        const at = bytes.length - 5;
        bytes[at] = (bytes[at] ?? 0) ^ 0x01;
        writeFileSync(path, bytes);
      });
      assert.equal(
        line,
        `vfio-nvlink2: serve: STATE_DIR: ${path}: checksum mismatch (the body is not what was written)`,
      );
    }
  });

  it('a state file cut short, and one grown', () => {
    let path = '';
    let size = 0;
    const cut = refusal((dir) => {
      path = join(dir, 'machine.state');
      size = statSync(path).size;
      truncateSync(path, size - 10);
    });
    assert.match(
      cut,
      new RegExp(`^vfio-nvlink2: serve: STATE_DIR: ${path}: truncated: \\d+ of \\d+ body bytes$`),
    );
    const grown = refusal((dir) => {
      path = join(dir, `devices/${GPU}.state`);
      writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from('x')]));
    });
    assert.match(grown, new RegExp(`^vfio-nvlink2: serve: STATE_DIR: ${path}: wrong size: `));
  });

  it('a memory file cut short, or missing', () => {
    const name = memoryFileName(`vfio-nvlink2:gpu-ram:${GPU}`);
    let path = '';
    const cut = refusal((dir) => {
      path = join(dir, 'memory', name);
      truncateSync(path, 4096);
    });
    assert.equal(
      cut,
      `vfio-nvlink2: serve: STATE_DIR: ${path}: truncated: 4096 of ${128 * 2 ** 30} bytes`,
    );
    const missing = refusal((dir) => {
      path = join(dir, 'memory', name);
      rmSync(path);
    });
    assert.match(missing, new RegExp(`^vfio-nvlink2: serve: STATE_DIR: ${path}: missing`));
  });

  it('a listed memory size the device does not want (valid checksum): refused at start', () => {
    // Each kind the directory lists: GPU RAM (named by its GPU) and the bridge's ATSD page
    // (named by its MMIO address, so no name leads the dry run to the device that makes it).
    const listed = (dir: string) =>
      Object.keys(
        (
          decodeStateFile(
            join(dir, 'machine.state'),
            'machine',
            readFileSync(join(dir, 'machine.state')),
          ) as { memories: Record<string, string> }
        ).memories,
      );
    const kinds = [
      { memory: `vfio-nvlink2:gpu-ram:${GPU}`, wants: 128n * 2n ** 30n, wrong: 4096n },
      {
        memory: listed(stateDir).find((m) => m.startsWith('vfio-nvlink2:atsd:')) ?? 'no ATSD page',
        wants: 0x10000n,
        wrong: 0x20000n,
      },
    ];
    for (const { memory, wants, wrong } of kinds) {
      let path = '';
      const line = refusal((dir) => {
        const state = join(dir, 'machine.state');
        const body = decodeStateFile(state, 'machine', readFileSync(state)) as {
          memories: Record<string, string>;
        };
        assert.equal(body.memories[memory], String(wants), `${memory} listed`);
        body.memories[memory] = String(wrong);
        writeFileSync(state, encodeStateFile('machine', body));
        path = join(dir, 'memory', memoryFileName(memory));
        truncateSync(path, Number(wrong)); // the file agrees with machine.state: only the device does not
      });
      assert.equal(
        line,
        `vfio-nvlink2: serve: STATE_DIR: ${path}: memory ${memory} is ${wrong} bytes in machine.state, the device wants ${wants}`,
      );
    }
  });

  it('machine.state missing beside device states and GPU RAM: refused, GPU RAM untouched', () => {
    const name = memoryFileName(`vfio-nvlink2:gpu-ram:${GPU}`);
    const dir = copyStateDir();
    const path = join(dir, 'machine.state');
    const ram = join(dir, 'memory', name);
    rmSync(path);
    const sizeBefore = statSync(ram).size;
    const r = runCli(['serve', '--socket-dir', join(dir, 'sock'), '--state-dir', dir]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr.trim(),
      new RegExp(
        `^vfio-nvlink2: serve: STATE_DIR: ${path}: missing, but ${dir} holds \\d+ device state or memory file\\(s\\) \\([^)]+\\); restore machine\\.state, or move them away to start anew \\(nothing was touched\\)$`,
      ),
    );
    // The saved GPU RAM reads back through the file, byte for byte.
    assert.equal(statSync(ram).size, sizeBefore);
    const fd = openSync(ram, 'r');
    try {
      const w = writes.ramByRegion;
      const got = Buffer.alloc(w.data.length);
      readSync(fd, got, 0, got.length, Number(w.offset));
      assert.deepEqual(new Uint8Array(got), w.data);
    } finally {
      closeSync(fd);
    }
  });

  it('a directory written for another device tree', () => {
    let path = '';
    const dtb = join(root, 'other.dtb');
    const gen = runCli(['dt', 'generate', '--gpus', '4', '-o', dtb]);
    assert.equal(gen.status, 0, gen.stderr);
    const dir = copyStateDir();
    path = join(dir, 'machine.state');
    const r = runCli(['serve', '--dt', dtb, '--socket-dir', join(dir, 's'), '--state-dir', dir]);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr.trim(),
      `vfio-nvlink2: serve: STATE_DIR: ${path}: written for another device tree (its sha256 differs from the one served)`,
    );
  });
});

/**
 * A state dir and a socket dir of a describe block's own (call it in the block): `start`
 * serves them; every server started is killed and both dirs removed after the block.
 */
function ownStateDir(name: string): { state: string; start: () => Promise<ServeProcess> } {
  const dir = mkdtempSync(join(tmpdir(), `vfio-nvlink2-state-${name}-`));
  const state = join(dir, 'state');
  const started: ServeProcess[] = [];
  after(async () => {
    for (const s of started) await s.stop('SIGKILL').catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  const start = async () => {
    const s = await startServe(['--state-dir', state], { dir: join(dir, 'sock') });
    started.push(s);
    return s;
  };
  return { state, start };
}

describe('serve --state-dir: a device first used after a restart', () => {
  // A device with no state file in DIR starts fresh on a restart, with no copy of that state
  // kept: what its first client changes must reach DIR as for the restored devices.
  const OTHER_GPU = '0003:02:00.0';
  const { start } = ownStateDir('lazy');

  it('keeps its config space and GPU RAM across the next kill -9', async () => {
    const a = await start();
    const gpu = await VfioUserClient.connect(a.socket(GPU));
    await gpu.regionWrite(CONFIG, 0x04n, new Uint8Array([0x06, 0x00]));
    const gpuConfig = await gpu.regionRead(CONFIG, 0n, 256);
    assert.equal(await a.stop('SIGKILL'), null);
    gpu.close();
    // Only GPU's device state is in DIR.
    const b = await start();
    const other = await VfioUserClient.connect(b.socket(OTHER_GPU));
    await other.regionWrite(CONFIG, 0x04n, new Uint8Array([0x02, 0x00]));
    await other.regionWrite(CONFIG, 0x10n, new Uint8Array([0x00, 0x00, 0xbe, 0xba]));
    const ram = pattern(8, 5000);
    await other.regionWrite(GPU_RAM, 0x3000n, ram);
    const otherConfig = await other.regionRead(CONFIG, 0n, 256);
    assert.equal(await b.stop('SIGKILL'), null);
    other.close();
    const c = await start();
    const again = await VfioUserClient.connect(c.socket(OTHER_GPU));
    const first = await VfioUserClient.connect(c.socket(GPU));
    try {
      assert.deepEqual(await again.regionRead(CONFIG, 0n, 256), otherConfig);
      assert.deepEqual(await again.regionRead(GPU_RAM, 0x3000n, ram.length), ram);
      assert.deepEqual(await first.regionRead(CONFIG, 0n, 256), gpuConfig);
    } finally {
      again.close();
      first.close();
    }
  });
});

describe('serve --state-dir: temporaries a server killed mid-write left', () => {
  const { state, start } = ownStateDir('tmp');

  it('are removed at the next start, each with a line; the state they were to replace is kept', async () => {
    const a = await start();
    const gpu = await VfioUserClient.connect(a.socket(GPU));
    await gpu.regionWrite(CONFIG, 0x04n, new Uint8Array([0x06, 0x00]));
    const config = await gpu.regionRead(CONFIG, 0n, 256);
    assert.equal(await a.stop('SIGKILL'), null);
    gpu.close();
    // What replaceFile leaves when the kill lands between its write and its rename.
    const left = [
      join(state, 'machine.state.0123456789abcdef.tmp'),
      join(state, 'devices', `${GPU}.state.fedcba9876543210.tmp`),
    ];
    for (const path of left) writeFileSync(path, 'half a state file');
    // Not a temporary of ours: kept.
    const other = join(state, 'devices', 'notes.tmp');
    writeFileSync(other, "the user's");
    const b = await start();
    for (const path of left) {
      assert.equal(existsSync(path), false, `${path} is gone`);
      assert.ok(
        b.stderr().includes(`${path}: removed (a state file's temporary a killed server left)`),
        b.stderr(),
      );
    }
    assert.equal(readFileSync(other, 'utf8'), "the user's");
    const again = await VfioUserClient.connect(b.socket(GPU));
    try {
      assert.deepEqual(await again.regionRead(CONFIG, 0n, 256), config);
    } finally {
      again.close();
    }
  });
});

describe("serve --state-dir keeps the socket directory's rules (GPU RAM in files others could swap)", () => {
  const NOBODY = 65534;
  const notRoot = process.getuid?.() !== 0 ? 'needs root to give a directory uid 65534' : false;

  /** serve on `dir` (a new socket dir of its own): its one error line, after exit 1. */
  function refusal(dir: string): string {
    const r = runCli([
      'serve',
      '--socket-dir',
      join(root, `sock-${basename(dir)}`),
      '--state-dir',
      dir,
    ]);
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    return lines[0] as string;
  }

  it('a state dir writable by others (not sticky), or in a parent that is: refused, nothing made', () => {
    const open = join(root, 'open-state');
    mkdirSync(open);
    chmodSync(open, 0o777);
    assert.equal(
      refusal(open),
      `vfio-nvlink2: serve: STATE_DIR: state dir ${open} is writable by group or others (mode 0777); run chmod go-w ${open}, or choose another --state-dir`,
    );
    assert.deepEqual(readdirSync(open), []);
    const inside = join(open, 'state');
    assert.equal(
      refusal(inside),
      `vfio-nvlink2: serve: STATE_DIR: state dir ${inside} is in ${open}, which is writable by group or others and not sticky (mode 0777); another user could rename it away: choose a --state-dir elsewhere`,
    );
  });

  it('a state dir owned by another uid: refused, nothing made', { skip: notRoot }, () => {
    const theirs = join(root, 'theirs-state');
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, NOBODY, NOBODY);
    assert.equal(
      refusal(theirs),
      `vfio-nvlink2: serve: STATE_DIR: state dir ${theirs} is owned by uid ${NOBODY}, not by us (uid 0); another user may have planted it: remove it or choose another --state-dir`,
    );
    assert.deepEqual(readdirSync(theirs), []);
  });
});
