/**
 * DMA_MAP / DMA_UNMAP against the real server (vfio-user.rst "VFIO_USER_DMA_MAP",
 * "VFIO_USER_DMA_UNMAP"): with and without an fd, a map over an existing region EEXIST (the
 * spec; libvfio-user says EINVAL), an unknown range ENOENT (libvfio-user), unmap-all, bad
 * arguments, and the server's descriptors: an fd'd map holds exactly one fd until unmapped.
 * An fd must be memory (memfd, tmpfs, hugetlbfs): a file elsewhere could make the server wait
 * on its file system (FUSE, NFS) at every DMA access.
 */
import assert from 'node:assert/strict';
import { openSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { closeFd, memfdCreate } from '../src/native/index.ts';
import { Command, ReplyError, VfioUserClient } from '../src/vfio-user/index.ts';
import { FLAG_ERROR, frame, pack } from './support/frames.ts';
import { GPU, type ServeProcess, startServe } from './support/serve-process.ts';

let serve: ServeProcess;
let client: VfioUserClient;
before(async () => {
  serve = await startServe();
  client = await VfioUserClient.connect(serve.socket(GPU));
});
after(async () => {
  client.close();
  await serve.stop();
});

const MiB = 1n << 20n;

async function rejectsWith(p: Promise<unknown>, errno: number): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof ReplyError && e.remoteErrno === errno);
}

/** A raw DMA_MAP (argsz, flags, offset, address, size) with `fds`; resolves with the errno or 0. */
async function rawMap(
  msgId: number,
  fields: [number, number, bigint, bigint, bigint],
  fds: number[] = [],
): Promise<number> {
  client.sendRaw(frame(msgId, Command.DMA_MAP, pack(...fields)), fds);
  const m = await client.expectReply(msgId, Command.DMA_MAP);
  return m.header.flags & FLAG_ERROR ? m.header.errno : 0;
}

describe('DMA_MAP and DMA_UNMAP', () => {
  it('maps without an fd; a map over an existing region is EEXIST (the spec), the same one too', async () => {
    await client.dmaMap({ address: 0x1000_0000n, size: 4n * MiB });
    await rejectsWith(client.dmaMap({ address: 0x1000_0000n, size: 4n * MiB }), 17);
    await rejectsWith(client.dmaMap({ address: 0x1010_0000n, size: MiB }), 17);
    await rejectsWith(client.dmaMap({ address: 0x0ff0_0000n, size: 2n * MiB }), 17);
    await client.dmaMap({ address: 0x1040_0000n, size: MiB }); // adjacent: fine
    await client.dmaUnmap({ address: 0x1040_0000n, size: MiB });
    const reply = await client.dmaUnmap({ address: 0x1000_0000n, size: 4n * MiB });
    assert.equal(reply.argsz, 24);
    assert.equal(reply.address, 0x1000_0000n);
    assert.equal(reply.size, 4n * MiB);
  });

  it('unmapping a range that is not exactly one mapping is ENOENT (libvfio-user)', async () => {
    await rejectsWith(client.dmaUnmap({ address: 0x2000_0000n, size: MiB }), 2);
    await client.dmaMap({ address: 0x2000_0000n, size: 2n * MiB });
    await rejectsWith(client.dmaUnmap({ address: 0x2000_0000n, size: MiB }), 2);
    await client.dmaUnmap({ address: 0x2000_0000n, size: 2n * MiB });
  });

  it('maps an fd (the server holds it) and closes it on unmap', async () => {
    const before = serve.fdCount();
    const fd = memfdCreate('guest-ram', 8n * MiB);
    try {
      await client.dmaMap({ address: 0x4000_0000n, size: 8n * MiB, backing: { fd } });
      assert.equal(serve.fdCount(), before + 1);
      const other = memfdCreate('guest-ram-2', MiB);
      await rejectsWith(
        client.dmaMap({ address: 0x4000_0000n, size: MiB, backing: { fd: other } }),
        17,
      );
      closeFd(other);
      assert.equal(serve.fdCount(), before + 1, 'the refused map did not keep its fd');
      await client.dmaUnmap({ address: 0x4000_0000n, size: 8n * MiB });
      assert.equal(serve.fdCount(), before);
    } finally {
      closeFd(fd);
    }
  });

  it('unmap-all (flag ALL, address 0, size 0) drops every mapping and its fds', async () => {
    const before = serve.fdCount();
    const fd = memfdCreate('guest-ram', 4n * MiB);
    await client.dmaMap({ address: 0x5000_0000n, size: 4n * MiB, backing: { fd, offset: 0n } });
    closeFd(fd);
    await client.dmaMap({ address: 0x6000_0000n, size: MiB });
    await client.dmaMap({ address: 0x7000_0000n, size: MiB, flags: 1 });
    assert.equal(serve.fdCount(), before + 1);
    const reply = await client.dmaUnmap({ all: true });
    assert.equal(reply.flags, 2);
    assert.equal(serve.fdCount(), before);
    await client.dmaMap({ address: 0x6000_0000n, size: MiB });
    await client.dmaUnmap({ all: true });
  });

  it('refuses bad maps with EINVAL and closes the fds that came with them', async () => {
    const before = serve.fdCount();
    const a = memfdCreate('a', MiB);
    const b = memfdCreate('b', MiB);
    try {
      assert.equal(await rawMap(0x7401, [31, 3, 0n, 0x8000_0000n, MiB]), 22, 'argsz under 32');
      assert.equal(await rawMap(0x7402, [32, 4, 0n, 0x8000_0000n, MiB]), 22, 'unknown flag');
      assert.equal(await rawMap(0x7403, [32, 3, 0n, 0x8000_0000n, 0n]), 22, 'size 0');
      assert.equal(await rawMap(0x7404, [32, 3, 0n, 0xffff_ffff_ffff_f000n, 0x2000n]), 22, 'wraps');
      assert.equal(await rawMap(0x7405, [32, 3, 0n, 0x8000_0000n, MiB], [a, b]), 22, 'two fds');
      // A regular file, but of procfs: not memory.
      const proc = openSync('/proc/self/stat', 'r');
      try {
        assert.equal(await rawMap(0x7407, [32, 1, 0n, 0x8000_0000n, 4096n], [proc]), 22, 'procfs');
      } finally {
        closeFd(proc);
      }
      assert.equal(await rawMap(0x7406, [32, 3, 0n, 0x8000_0000n, MiB], [a]), 0, 'one fd');
      assert.equal(serve.fdCount(), before + 1);
      await client.dmaUnmap({ all: true });
      assert.equal(serve.fdCount(), before);
    } finally {
      closeFd(a);
      closeFd(b);
    }
  });

  it('refuses bad unmaps with EINVAL', async () => {
    const cases: [number, number, bigint, bigint][] = [
      [23, 0, 0x1000n, 0x1000n], // argsz under 24
      [24, 2, 0x1000n, 0n], // ALL with an address
      [24, 1, 0x1000n, 0x1000n], // GET_DIRTY_BITMAP is not offered
      [24, 8, 0x1000n, 0x1000n], // unknown flag
    ];
    for (const [i, fields] of cases.entries()) {
      client.sendRaw(frame(0x7500 + i, Command.DMA_UNMAP, pack(...fields)));
      const m = await client.expectReply(0x7500 + i, Command.DMA_UNMAP);
      assert.equal(m.header.errno, 22, `case ${i}`);
    }
  });
});
