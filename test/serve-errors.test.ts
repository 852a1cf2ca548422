/**
 * Errors on the wire against the real server: unknown commands and commands a client may not
 * send are EINVAL (libvfio-user), malformed payloads get the errno of their first problem,
 * fds on a message that does not use them are closed, and framing errors (size under 16, size
 * over the limit, more fds than max_msg_fds) close only that connection, with a log line,
 * while other clients go on; every whole message before the bad one, even in the same read,
 * is handled first.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closeFd, eventfdCreate } from '../src/native/index.ts';
import { Command, VfioUserClient } from '../src/vfio-user/index.ts';
import { FLAG_ERROR, FLAG_NO_REPLY, FLAG_REPLY, frame, pack } from './support/frames.ts';
import { BRIDGE, GPU, type ServeProcess, startServe, waitFor } from './support/serve-process.ts';

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

/** Connects to `address` once the server has let go of an earlier session there. */
async function connect(address: string): Promise<VfioUserClient> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await VfioUserClient.connect(serve.socket(address));
    } catch (e) {
      if (attempt > 500) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function errnoFor(
  c: VfioUserClient,
  msgId: number,
  command: number,
  payload: Uint8Array,
  fds: number[] = [],
) {
  c.sendRaw(frame(msgId, command, payload), fds);
  const m = await c.expectReply(msgId, command);
  return m.header.flags & FLAG_ERROR ? m.header.errno : 0;
}

describe('error replies', () => {
  it('unknown commands and server-to-client commands are EINVAL; DEVICE_FEATURE is ENOTTY', async () => {
    const c = await connect(GPU);
    try {
      for (const [i, command] of [0, 14, 19, 0xffff].entries()) {
        c.sendRaw(frame(0x7700 + i, command));
        const m = await c.expectReply(0x7700 + i, command);
        assert.equal(m.header.flags, FLAG_REPLY | FLAG_ERROR, `command ${command}`);
        assert.equal(m.header.errno, 22, `command ${command}`);
        assert.equal(m.header.size, 16, 'an error reply is the header alone');
      }
      assert.equal(await errnoFor(c, 0x7710, Command.DMA_READ, pack(0n, 8n)), 22);
      assert.equal(await errnoFor(c, 0x7711, Command.DMA_WRITE, pack(0n, 0n)), 22);
      assert.equal(await errnoFor(c, 0x7712, Command.MIG_DATA_READ, pack(8, 0)), 22);
      assert.equal(await errnoFor(c, 0x7713, Command.DEVICE_FEATURE, pack(8, 1 << 16)), 25);
    } finally {
      c.close();
    }
  });

  it('malformed payloads are EINVAL and the session goes on', async () => {
    const c = await connect(GPU);
    try {
      const cases: [number, Uint8Array][] = [
        [Command.DEVICE_GET_INFO, pack(16, 0)], // 8 of 16 bytes
        [Command.DEVICE_GET_INFO, pack(8, 0, 0, 0)], // argsz under 16
        [Command.DEVICE_GET_REGION_INFO, pack(32, 0, 0, 0)], // 16 of 32 bytes
        [Command.DEVICE_GET_IRQ_INFO, pack(16, 0, 2, 0, 0)], // 20 bytes
        [Command.REGION_READ, pack(0n, 7)], // 12 of 16 bytes
        [Command.REGION_WRITE, pack(0n, 7, 4)], // count 4, no data
        [Command.DMA_MAP, pack(32, 3, 0n, 0n)], // 24 of 32 bytes
        [Command.DEVICE_SET_IRQS, pack(20, 0x22, 2, 0, 2, 1)], // DATA_BOOL: 4 bytes for 2 vectors
        [Command.DEVICE_RESET, pack(1)], // RESET takes no payload
        [Command.REGION_WRITE_MULTI, pack(2n)], // wr_cnt 2, no entries
      ];
      for (const [i, [command, payload]] of cases.entries()) {
        assert.equal(await errnoFor(c, 0x7720 + i, command, payload), 22, `case ${i}`);
      }
      assert.equal((await c.getDeviceInfo()).numRegions, 10);
    } finally {
      c.close();
    }
  });

  it('GET_REGION_IO_FDS answers with no sub-regions', async () => {
    const c = await connect(GPU);
    try {
      c.sendRaw(frame(0x7740, Command.DEVICE_GET_REGION_IO_FDS, pack(16, 0, 0, 0)));
      const m = await c.expectReply(0x7740, Command.DEVICE_GET_REGION_IO_FDS);
      assert.deepEqual(new Uint8Array(m.payload), pack(16, 0, 0, 0));
      assert.equal(
        await errnoFor(c, 0x7741, Command.DEVICE_GET_REGION_IO_FDS, pack(16, 0, 99, 0)),
        22,
      );
    } finally {
      c.close();
    }
  });

  it('closes fds that come with a message that does not use them', async () => {
    const c = await connect(GPU);
    const efds = [eventfdCreate(), eventfdCreate()];
    try {
      const before = serve.fdCount();
      assert.equal(await errnoFor(c, 0x7750, Command.DEVICE_GET_INFO, pack(16, 0, 0, 0), efds), 0);
      assert.equal(await errnoFor(c, 0x7751, 99, new Uint8Array(0), efds), 22);
      assert.equal(serve.fdCount(), before);
    } finally {
      for (const fd of efds) closeFd(fd);
      c.close();
    }
  });
});

describe('framing errors close only that connection', () => {
  const cases: [string, (c: VfioUserClient) => void, RegExp][] = [
    [
      'size under 16',
      (c) => c.sendRaw(frame(0x7801, Command.DEVICE_GET_INFO, new Uint8Array(0), { size: 8 })),
      /under the 16-byte header/,
    ],
    [
      'size over the limit',
      (c) => c.sendRaw(frame(0x7802, Command.REGION_WRITE, new Uint8Array(0), { size: 64 << 20 })),
      /exceeds the limit/,
    ],
    [
      'more fds than max_msg_fds',
      (c) => {
        const fds = Array.from({ length: 17 }, () => eventfdCreate());
        c.sendRaw(frame(0x7803, Command.DEVICE_GET_INFO, pack(16, 0, 0, 0)), fds);
        for (const fd of fds) closeFd(fd);
      },
      /more than 16 fds|at most 16/,
    ],
  ];
  for (const [name, send, logged] of cases) {
    it(name, async () => {
      const other = await connect(BRIDGE);
      const victim = await connect(GPU);
      const before = serve.stderr().length;
      try {
        send(victim);
        const reason = await victim.channel.closed;
        assert.equal(reason.kind, 'eof', 'the server hung up');
        await waitFor('the log line', () => logged.test(serve.stderr().slice(before)));
        const lines = serve
          .stderr()
          .slice(before)
          .split('\n')
          .filter((l) => l.includes('closing the connection'));
        assert.equal(lines.length, 1, 'one log line');
        assert.equal(
          (await other.getDeviceInfo()).numRegions,
          10,
          'the other client keeps working',
        );
        const again = await connect(GPU);
        assert.equal((await again.getDeviceInfo()).numRegions, 10, 'the device takes a new client');
        again.close();
      } finally {
        victim.close();
        other.close();
      }
    });
  }
});

describe('a framing error ends the connection after what came before it', () => {
  const GPU_RAM = 9;
  const bad: [string, Uint8Array, () => number[]][] = [
    [
      'size under 16',
      frame(0x7901, Command.DEVICE_GET_INFO, new Uint8Array(0), { size: 8 }),
      () => [],
    ],
    [
      'size over the limit',
      frame(0x7902, Command.REGION_WRITE, new Uint8Array(0), { size: 64 << 20 }),
      () => [],
    ],
    [
      'more fds than max_msg_fds (MSG_CTRUNC on the read that holds both)',
      frame(0x7903, Command.DEVICE_GET_INFO, pack(16, 0, 0, 0)),
      () => Array.from({ length: 17 }, () => eventfdCreate()),
    ],
  ];
  for (const [i, [name, badFrame, makeFds]] of bad.entries()) {
    it(`${name}: a posted write sent ahead of it in the same sendmsg is applied`, async () => {
      const offset = 0x7000n + BigInt(i) * 0x100n;
      const value = new Uint8Array(8).fill(0xc0 + i);
      const write = frame(
        0,
        Command.REGION_WRITE,
        new Uint8Array([...pack(offset, GPU_RAM, 8), ...value]),
        { flags: FLAG_NO_REPLY },
      );
      const both = new Uint8Array(write.length + badFrame.length);
      both.set(write);
      both.set(badFrame, write.length);
      const victim = await connect(GPU);
      const fds = makeFds();
      try {
        victim.sendRaw(both, fds); // one sendmsg: the server reads both with one recvmsg
        for (const fd of fds) closeFd(fd);
        assert.equal((await victim.channel.closed).kind, 'eof', 'the server hung up');
      } finally {
        victim.close();
      }
      const reader = await connect(GPU);
      try {
        assert.deepEqual(await reader.regionRead(GPU_RAM, offset, 8), value);
      } finally {
        reader.close();
      }
    });
  }
});
