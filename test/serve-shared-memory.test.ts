/**
 * What a client can do with the memfds `serve` hands out (GET_REGION_INFO's fd: GPU RAM, ATSD
 * pages, BARs), against the real server: nothing that reaches the server. ftruncate fails with
 * EPERM on every one of them (sealed; unsealed, a truncated GPU RAM fd made the next 32 KiB
 * REGION_WRITE kill the server with SIGBUS, exit 135), no seal can be added, status flags set
 * on the client's descriptor (O_APPEND through a Python child) leave the server's own alone, and
 * a hole punched by the client only reads back as zeros. After all of it, every device serves.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fstatSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { closeFd, fileSeals, ftruncate, NativeConstant, punchHole } from '../src/native/index.ts';
import { RegionFlag } from '../src/vfio/region.ts';
import { PYTHON } from './support/native/python.ts';
import { connectWhenFree, GPU, type ServeProcess, startServe } from './support/serve-process.ts';

const GPU_RAM = 9;
const ATSD = 9;
const hasPython = spawnSync(PYTHON, ['-c', 'import fcntl'], { stdio: 'ignore' }).status === 0;

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

/** Served devices (GPUs and bridges) from devices.json. */
function served(): { address: string; role: string }[] {
  return serve.devices().filter((d) => d.socket !== undefined);
}

/** Runs `code` in a Python child that shares `fd` (same open file description) as its fd 3. */
function inPython(fd: number, code: string): string {
  const r = spawnSync(PYTHON, ['-c', `import fcntl, os\n${code}`], {
    stdio: ['ignore', 'pipe', 'pipe', fd],
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

/** Every device answers a config-space read (vendor ID) and the server process is alive. */
async function everyDeviceServes(): Promise<void> {
  assert.equal(serve.child.exitCode, null, `server exited: ${serve.stderr()}`);
  for (const d of served()) {
    const c = await connectWhenFree(serve, d.address);
    try {
      const id = await c.regionRead(7, 0n, 2);
      assert.ok(id[0] === 0xde || id[0] === 0x14, `${d.address} vendor ${id[0]}`);
    } finally {
      c.close();
    }
  }
}

describe('memfds handed to clients', () => {
  it('every mmap fd of every device is sealed at its size: ftruncate fails with EPERM', async () => {
    let checked = 0;
    for (const d of served()) {
      const c = await connectWhenFree(serve, d.address);
      try {
        const info = await c.getDeviceInfo();
        for (let index = 0; index < info.numRegions; index++) {
          // Region 8 (VGA) of a function without VGA fails with EINVAL: nothing handed out.
          const r = await c.regionInfo(index).catch(() => null);
          if (r === null || r.fd === null) continue;
          try {
            assert.ok(r.info.flags & RegionFlag.MMAP, `${d.address} region ${index}`);
            const size = fstatSync(r.fd, { bigint: true }).size;
            assert.equal(
              fileSeals(r.fd),
              NativeConstant.MEMFD_SIZE_SEALS,
              `${d.address} region ${index}`,
            );
            assert.throws(() => ftruncate(r.fd as number, 0n), { code: 'EPERM' });
            assert.throws(() => ftruncate(r.fd as number, size + 4096n), { code: 'EPERM' });
            assert.equal(fstatSync(r.fd, { bigint: true }).size, size);
            checked++;
          } finally {
            closeFd(r.fd);
          }
        }
      } finally {
        c.close();
      }
    }
    // 6 GPUs × (GPU RAM, BAR0, BAR1, BAR3) and the bridges' ATSD pages and BARs.
    assert.ok(checked >= 6 * 4 + 6, `only ${checked} fds`);
    await everyDeviceServes();
  });

  it('after a truncate attempt on GPU RAM, a 32 KiB REGION_WRITE lands and the server lives', async () => {
    const c = await connectWhenFree(serve, GPU);
    try {
      const r = await c.regionInfo(GPU_RAM);
      assert.notEqual(r.fd, null);
      const fd = r.fd as number;
      assert.throws(() => ftruncate(fd, 0n), { code: 'EPERM' });
      closeFd(fd);
      const data = new Uint8Array(32 * 1024).map((_, i) => (i * 13 + 7) & 0xff);
      assert.equal(await c.regionWrite(GPU_RAM, 0x200000n, data), data.length);
      assert.deepEqual(await c.regionRead(GPU_RAM, 0x200000n, data.length), data);
    } finally {
      c.close();
    }
    await everyDeviceServes();
  });

  it('a client cannot add seals (F_SEAL_WRITE would make the server`s writes fail)', {
    skip: hasPython ? false : 'python3 is needed',
  }, async () => {
    const c = await connectWhenFree(serve, GPU);
    try {
      const r = await c.regionInfo(GPU_RAM);
      const fd = r.fd as number;
      const out = inPython(
        fd,
        'try:\n  fcntl.fcntl(3, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE)\n  print("sealed")\nexcept OSError as e:\n  print(e.errno)',
      );
      closeFd(fd);
      assert.equal(out, '1', 'EPERM');
      const data = Uint8Array.of(1, 2, 3, 4);
      assert.equal(await c.regionWrite(GPU_RAM, 0x1000n, data), 4);
      assert.deepEqual(await c.regionRead(GPU_RAM, 0x1000n, 4), data);
    } finally {
      c.close();
    }
  });

  it('O_APPEND set on the client`s descriptor does not move the server`s writes', {
    skip: hasPython ? false : 'python3 is needed',
  }, async () => {
    for (const [address, index, offset] of [
      [GPU, GPU_RAM, 0x3000n],
      [served().find((d) => d.role === 'bridge')?.address ?? '', ATSD, 0x20n],
    ] as const) {
      const c = await connectWhenFree(serve, address);
      try {
        const r = await c.regionInfo(index);
        const fd = r.fd as number;
        const size = fstatSync(fd, { bigint: true }).size;
        inPython(fd, 'fcntl.fcntl(3, fcntl.F_SETFL, fcntl.fcntl(3, fcntl.F_GETFL) | os.O_APPEND)');
        // Small writes go through pwrite(2), which an O_APPEND description sends to the end.
        const data = Uint8Array.of(0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18);
        assert.equal(await c.regionWrite(index, offset, data), data.length, address);
        assert.deepEqual(await c.regionRead(index, offset, data.length), data, address);
        assert.equal(fstatSync(fd, { bigint: true }).size, size, `${address} keeps its size`);
        closeFd(fd);
      } finally {
        c.close();
      }
    }
    await everyDeviceServes();
  });

  it('a hole the client punches reads back as zeros; the server writes there again', async () => {
    const c = await connectWhenFree(serve, GPU);
    try {
      const page = 0x10000n;
      const at = 0x400000n;
      const data = new Uint8Array(Number(page)).fill(0x5a);
      await c.regionWrite(GPU_RAM, at, data);
      const r = await c.regionInfo(GPU_RAM);
      punchHole(r.fd as number, at, page);
      closeFd(r.fd as number);
      assert.deepEqual(await c.regionRead(GPU_RAM, at, 64), new Uint8Array(64));
      await c.regionWrite(GPU_RAM, at + 8n, Uint8Array.of(9, 9));
      const back = await c.regionRead(GPU_RAM, at, 12);
      assert.deepEqual(back, Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 0, 0));
    } finally {
      c.close();
    }
    await everyDeviceServes();
  });
});
