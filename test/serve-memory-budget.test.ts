/**
 * `serve --memory-budget 1M` against the real server: pages a client touches through its GPU
 * RAM mapping count; REGION_WRITEs (in place from 16 KiB, pwrite below) succeed up to the budget
 * and the next page fails with ENOMEM before any byte lands (the memfd has no data there), with
 * the nvlink2_memory_budget tracepoint; overwrites always succeed; reads never populate; once a
 * mapping has passed the budget every write needing a page fails and the server serves on.
 * Figures are read back through second paths: the client's mapping, the memfd's SEEK_DATA,
 * state.json and `inspect --socket-dir`.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closeFd, dataRanges } from '../src/native/index.ts';
import type { VfioUserClient } from '../src/vfio-user/index.ts';
import { Command, ReplyError } from '../src/vfio-user/index.ts';
import { runCli } from './support/cli.ts';
import { frame, pack } from './support/frames.ts';
import {
  connectWhenFree,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';

const KiB = 1024;
const CHUNK = 64 * KiB;
const BUDGET = 1024 * KiB;
const GPU_RAM = 9;
const ENOMEM = 12;
const [GPU_A, GPU_B, GPU_C] = ['0002:01:00.0', '0003:02:00.0', '0004:03:00.0'];

let serve: ServeProcess;
let dir: string;
let trace: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-budget-'));
  trace = join(dir, 'trace.txt');
  serve = await startServe(['--memory-budget', '1M', '--trace', trace], { dir });
});
after(async () => {
  await serve.stop();
  rmSync(dir, { recursive: true, force: true });
});

const isEnomem = (e: unknown) => e instanceof ReplyError && e.remoteErrno === ENOMEM;

/** state.json's figures for `address` once `ok` holds (serve rereads usage every second). */
async function usageWhen(
  ok: (m: ServerMemory) => boolean,
  server: ServeProcess = serve,
): Promise<ServerMemory> {
  return waitFor('state.json memory figures', () => {
    const m = server.state().memory;
    return ok(m) ? m : undefined;
  });
}
type ServerMemory = ReturnType<ServeProcess['state']>['memory'];
const gpuRam = (m: ServerMemory, address: string) =>
  m.gpus.find((g) => g.address === address)?.gpuRam ?? -1;

/** Populated bytes of a region's memfd, through an fd the server hands out (SEEK_DATA). */
async function populated(c: VfioUserClient, from: bigint, to: bigint): Promise<number> {
  const r = await c.regionInfo(GPU_RAM);
  try {
    return dataRanges(r.fd as number, from, to).reduce((n, [a, b]) => n + Number(b - a), 0);
  } finally {
    closeFd(r.fd as number);
  }
}

const chunk = (i: number) => new Uint8Array(CHUNK).fill(0x40 + i);

describe('serve --memory-budget', () => {
  it('prints the budget at start; state.json starts with nothing touched', () => {
    assert.match(serve.stderr(), /memory budget 1 MiB \(--memory-budget\)/);
    const m = serve.state().memory;
    assert.equal(m.budget, BUDGET);
    assert.equal(m.touched, 0);
    assert.equal(m.gpus.length, 6);
  });

  it('counts the pages a client touches through its GPU RAM mapping', async () => {
    const c = await connectWhenFree(serve, GPU_B);
    try {
      const mapped = await c.mapRegion(GPU_RAM);
      for (let i = 0; i < 4; i++) mapped.write(BigInt(i * CHUNK), chunk(i));
      const m = await usageWhen((u) => gpuRam(u, GPU_B) === 4 * CHUNK);
      assert.equal(m.touched, 4 * CHUNK);
      mapped.unmap();
    } finally {
      c.close();
    }
  });

  it('writes up to the budget succeed, the next page fails with ENOMEM and places nothing', async () => {
    const c = await connectWhenFree(serve, GPU_A);
    try {
      // 1 MiB less GPU B's 256 KiB: 12 chunks, received in place (≥ 16 KiB).
      for (let i = 0; i < 12; i++)
        assert.equal(await c.regionWrite(GPU_RAM, BigInt(i * CHUNK), chunk(i)), CHUNK);
      const next = BigInt(12 * CHUNK);
      await assert.rejects(c.regionWrite(GPU_RAM, next, chunk(12)), isEnomem);
      await assert.rejects(c.regionWrite(GPU_RAM, next + 0x100n, Uint8Array.of(1)), isEnomem);
      assert.equal(await populated(c, next, next + BigInt(CHUNK)), 0, 'no byte was placed');
      // Overwrites need no page: in place, by pwrite, across chunks.
      assert.equal(await c.regionWrite(GPU_RAM, 3n * BigInt(CHUNK), chunk(30)), CHUNK);
      assert.equal(await c.regionWrite(GPU_RAM, 5n, Uint8Array.of(0xee, 0xff)), 2);
      assert.equal(await c.regionWrite(GPU_RAM, BigInt(CHUNK - 8), new Uint8Array(16)), 16);
      // Read back through a second path: the client's own mapping.
      const mapped = await c.mapRegion(GPU_RAM);
      assert.deepEqual(mapped.read(3n * BigInt(CHUNK), CHUNK), chunk(30));
      assert.deepEqual(
        mapped.read(0n, 8),
        Uint8Array.of(0x40, 0x40, 0x40, 0x40, 0x40, 0xee, 0xff, 0x40),
      );
      assert.deepEqual(mapped.read(11n * BigInt(CHUNK), CHUNK), chunk(11));
      mapped.unmap();
      const m = await usageWhen((u) => gpuRam(u, GPU_A) === 12 * CHUNK && u.refused >= 2);
      assert.equal(m.touched, BUDGET);
      assert.equal(m.refused, 2);
      assert.equal(gpuRam(m, GPU_B), 4 * CHUNK);
    } finally {
      c.close();
    }
    const lines = readFileSync(trace, 'utf8')
      .split('\n')
      .filter((l) => l.includes('nvlink2_memory_budget'));
    assert.equal(lines.length, 2);
    assert.match(
      lines[0] ?? '',
      /nvlink2_memory_budget: vfio-nvlink2:gpu-ram:0002:01:00\.0: write offset c0000 count 65536 needs 10000 more bytes, 100000 of budget 100000 in use$/,
    );
  });

  it('reads of GPU RAM never written populate nothing', async () => {
    const c = await connectWhenFree(serve, GPU_C);
    try {
      for (const at of [0n, 1n << 30n, (16n << 30n) - (1n << 20n)]) {
        const data = await c.regionRead(GPU_RAM, at, 1024 * KiB);
        assert.ok(data.every((b) => b === 0));
      }
      assert.equal(await populated(c, 0n, 16n << 30n), 0);
    } finally {
      c.close();
    }
  });

  it('past the budget through a mapping: writes needing pages fail, overwrites succeed, all serve', async () => {
    const b = await connectWhenFree(serve, GPU_B);
    try {
      const mapped = await b.mapRegion(GPU_RAM);
      mapped.write(8n * BigInt(CHUNK), chunk(8)); // a fault cannot be refused: 1 MiB + 64 KiB
      mapped.unmap();
      await usageWhen((u) => gpuRam(u, GPU_B) === 5 * CHUNK && u.touched > BUDGET);
      await assert.rejects(b.regionWrite(GPU_RAM, 20n * BigInt(CHUNK), Uint8Array.of(1)), isEnomem);
      assert.equal(await b.regionWrite(GPU_RAM, 0n, chunk(50)), CHUNK);
      assert.deepEqual(await b.regionRead(GPU_RAM, 0n, 4), chunk(50).subarray(0, 4));
    } finally {
      b.close();
    }
    assert.equal(serve.child.exitCode, null);
    for (const d of serve.devices().filter((e) => e.socket !== undefined)) {
      const c = await connectWhenFree(serve, d.address);
      try {
        assert.equal((await c.regionRead(7, 0n, 2)).length, 2);
      } finally {
        c.close();
      }
    }
    assert.ok(existsSync(trace));
  });
  it('inspect --socket-dir ends with each GPU`s usage against the budget (as state.json)', async () => {
    // inspect reads every BAR's region info, which creates the BARs (their preset registers).
    const r = runCli(['inspect', '--socket-dir', serve.dir]);
    assert.equal(r.status, 0, r.stderr);
    const m = await usageWhen((u) => u.gpus.every((g) => g.bars > 0));
    const tail = r.stdout.trimEnd().split('\n').slice(-7);
    assert.match(tail[0] ?? '', /^memory: 1\.\d+ MiB touched of budget 1 MiB, 3 writes refused$/);
    const kib = (n: number) => (n === 0 ? '0 bytes' : `${n / KiB} KiB`);
    assert.deepEqual(
      tail.slice(1),
      m.gpus.map((g) => `  ${g.address}  GPU RAM ${kib(g.gpuRam)}  BARs ${kib(g.bars)}`),
    );
    assert.deepEqual(
      m.gpus.map((g) => g.gpuRam),
      [12 * CHUNK, 5 * CHUNK, 0, 0, 0, 0],
    );
  });
});

describe('serve --memory-budget, a client leaving inside a write', () => {
  let own: ServeProcess;
  before(async () => {
    own = await startServe(['--memory-budget', '1M']);
  });
  after(async () => {
    await own.stop();
  });

  it('what a write received in place had reserved is given back when its client leaves', async () => {
    const a = await connectWhenFree(own, GPU_A);
    const count = 512 * KiB;
    const head = pack(0n, GPU_RAM, count);
    const body = new Uint8Array(64 * KiB).fill(0x77);
    const bytes = new Uint8Array(head.length + body.length);
    bytes.set(head);
    bytes.set(body, head.length);
    // 512 KiB announced (reserved from the budget), 64 KiB sent, then the client is gone.
    a.sendRaw(frame(0x7a00, Command.REGION_WRITE, bytes, { size: 16 + 16 + count }));
    await waitFor('the bytes in place', () => own.state().memory.touched > 0 || undefined);
    a.close();
    (await connectWhenFree(own, GPU_A)).close(); // the session was released
    // 64 KiB arrived; with the 512 KiB reservation still held this 768 KiB would not fit.
    const b = await connectWhenFree(own, GPU_B);
    try {
      for (let i = 0; i < 12; i++)
        assert.equal(await b.regionWrite(GPU_RAM, BigInt(i * CHUNK), chunk(i)), CHUNK);
    } finally {
      b.close();
    }
    const m = await usageWhen((u) => gpuRam(u, GPU_B) === 12 * CHUNK, own);
    assert.ok(m.touched <= BUDGET, `${m.touched}`);
  });
});
