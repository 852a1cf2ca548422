/**
 * DMA maps at scale against the real server: 10,000 maps without an fd then every one unmapped,
 * pipelined, each reply checked (the server's CPU time is reported, never asserted), and the
 * max_dma_maps VERSION announces held to: with RLIMIT_NOFILE lowered to 4096, all 18 devices at
 * once map that many regions, each with an fd, and one more is EINVAL (libvfio-user's "hit max
 * regions"), the server alive and its fds back when the clients leave.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { closeFd, memfdCreate } from '../src/native/index.ts';
import { Command, VfioUserClient } from '../src/vfio-user/index.ts';
import { FLAG_ERROR, frame, pack } from './support/frames.ts';
import { GPU, startServe, waitFor } from './support/serve-process.ts';

const EINVAL = 22;
const EEXIST = 17;

/** Sends every frame at once, then resolves with the errno (0 = success) of each reply. */
async function pipelined(
  client: VfioUserClient,
  command: Command,
  payloads: Uint8Array[],
  fds: number[] = [],
  firstId = 1,
): Promise<number[]> {
  const replies = payloads.map((p, i) => {
    const id = (firstId + i) & 0xffff;
    client.sendRaw(frame(id, command, p), fds);
    return client.expectReply(id, command);
  });
  return (await Promise.all(replies)).map((m) =>
    m.header.flags & FLAG_ERROR ? m.header.errno : 0,
  );
}

const mapPayload = (address: bigint, size: bigint) => pack(32, 3, 0n, address, size);
const unmapPayload = (address: bigint, size: bigint) => pack(24, 0, address, size);

/** utime + stime of `pid` in ms (/proc/<pid>/stat fields 14 and 15, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

describe('DMA maps at scale', () => {
  it('10,000 maps without an fd, then every one unmapped (in another order), over the socket', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-dma-'));
    const socket = join(dir, 'gpu.sock');
    // One device served: its share of the fds is the whole budget, above 10,000 on most hosts.
    const serve = await startServe(['--device', GPU, '--socket-path', socket], {
      dir,
      readyFile: socket,
    });
    const client = await VfioUserClient.connect(socket);
    try {
      const limit = client.serverCapabilities.maxDmaMaps;
      const n = 10_000;
      const stride = 0x20_0000n;
      const order = Array.from({ length: n }, (_, i) => (i * 7919) % n); // a permutation
      const cpu0 = cpuMs(serve.pid);
      const mapped = await pipelined(
        client,
        Command.DMA_MAP,
        order.map((i) => mapPayload(BigInt(i) * stride, 0x1000n * BigInt(1 + (i % 16)))),
      );
      const cpu1 = cpuMs(serve.pid);
      const ok = Math.min(n, limit);
      assert.deepEqual(
        mapped,
        order.map((_, k) => (k < ok ? 0 : EINVAL)),
        `up to max_dma_maps ${limit} succeed, then EINVAL`,
      );
      // Every mapped range is there: an overlapping map is EEXIST, an inexact unmap ENOENT.
      const some = order.slice(0, ok).filter((_, k) => k % 1000 === 0);
      assert.deepEqual(
        await pipelined(
          client,
          Command.DMA_MAP,
          some.map((i) => mapPayload(BigInt(i) * stride + 0x800n, 0x100n)),
        ),
        some.map(() => EEXIST),
      );
      const unmapped = await pipelined(
        client,
        Command.DMA_UNMAP,
        [...order.slice(0, ok)]
          .sort((a, b) => b - a)
          .map((i) => unmapPayload(BigInt(i) * stride, 0x1000n * BigInt(1 + (i % 16)))),
      );
      const cpu2 = cpuMs(serve.pid);
      assert.deepEqual(
        unmapped,
        unmapped.map(() => 0),
      );
      // All gone: one map over the whole range succeeds.
      assert.deepEqual(
        await pipelined(client, Command.DMA_MAP, [mapPayload(0n, BigInt(n) * stride)]),
        [0],
      );
      t.diagnostic(
        `server CPU: ${ok} maps ${cpu1 - cpu0} ms, ${ok} unmaps ${cpu2 - cpu1} ms (max_dma_maps ${limit})`,
      );
    } finally {
      client.close();
      await serve.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('max_dma_maps is honoured by every device at once, each map with an fd (RLIMIT_NOFILE 4096)', async () => {
    const serve = await startServe([], { nofile: 4096 });
    const clients: VfioUserClient[] = [];
    const fd = memfdCreate('guest-ram', 1n << 20n);
    try {
      const devices = serve.devices().filter((d) => d.socket !== undefined);
      assert.equal(devices.length, 18);
      for (const d of devices) clients.push(await VfioUserClient.connect(d.socket as string));
      const limit = clients[0]?.serverCapabilities.maxDmaMaps ?? 0;
      assert.ok(limit > 0, 'some maps are possible');
      assert.ok(
        limit * devices.length < 4096,
        `announced ${limit} per device: ${limit * devices.length} fds for 18 devices exceed RLIMIT_NOFILE 4096`,
      );
      const before = serve.fdCount();
      const results = await Promise.all(
        clients.map((c) =>
          pipelined(
            c,
            Command.DMA_MAP,
            Array.from({ length: limit + 1 }, (_, i) => mapPayload(BigInt(i) << 20n, 1n << 20n)),
            [fd],
          ),
        ),
      );
      for (const [k, r] of results.entries()) {
        assert.deepEqual(
          r,
          [...new Array<number>(limit).fill(0), EINVAL],
          `device ${devices[k]?.address}: ${limit} maps, then EINVAL`,
        );
        assert.equal(clients[k]?.serverCapabilities.maxDmaMaps, limit);
      }
      assert.equal(serve.fdCount(), before + limit * devices.length, 'one fd per map held');
      const last = clients[0] as VfioUserClient;
      assert.deepEqual(
        await pipelined(last, Command.DMA_MAP, [mapPayload(1n << 40n, 1n << 20n)], [], 0x9000),
        [EINVAL],
        'without an fd too',
      );
      assert.ok(serve.child.exitCode === null, 'the server is alive');
      for (const c of clients) c.close();
      await waitFor('the server to close every DMA fd', () => serve.fdCount() <= before);
    } finally {
      for (const c of clients) c.close();
      closeFd(fd);
      await serve.stop();
    }
  });
});
