/**
 * VERSION against the real server in another process (vfio-user.rst "VFIO_USER_VERSION"):
 * a 0.0 client gets 0.0 back, a newer minor is lowered to the server's, other majors and bad
 * JSON are EINVAL, VERSION must come first and only once, and the reply's JSON fits QEMU's
 * buffer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Command, VfioUserClient } from '../src/vfio-user/index.ts';
import {
  FLAG_ERROR,
  FLAG_REPLY,
  frame,
  pack,
  QEMU_VERSION_JSON,
  versionPayload,
} from './support/frames.ts';
import { GPU, type ServeProcess, startServe } from './support/serve-process.ts';

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

async function raw(): Promise<VfioUserClient> {
  return VfioUserClient.connect(serve.socket(GPU), { negotiate: false });
}

function errnoOf(m: { header: { flags: number; errno: number } }): number {
  assert.equal(
    m.header.flags & (FLAG_REPLY | FLAG_ERROR),
    FLAG_REPLY | FLAG_ERROR,
    'an error reply',
  );
  return m.header.errno;
}

describe('VERSION', () => {
  it('answers a 0.0 client (QEMU) with 0.0 and short JSON', async () => {
    const c = await raw();
    try {
      c.sendRaw(frame(0x7001, Command.VERSION, versionPayload(0, 0, QEMU_VERSION_JSON)));
      const m = await c.expectReply(0x7001, Command.VERSION);
      assert.equal(m.header.flags, FLAG_REPLY);
      const v = new DataView(m.payload.buffer, m.payload.byteOffset);
      assert.equal(v.getUint16(0, true), 0);
      assert.equal(v.getUint16(2, true), 0);
      const json = new TextDecoder().decode(m.payload.subarray(4));
      assert.ok(json.endsWith('\0'), 'NUL-terminated');
      assert.ok(json.length - 1 <= 214, `JSON of ${json.length - 1} bytes fits QEMU's buffer`);
      const caps = JSON.parse(json.slice(0, -1)).capabilities;
      assert.equal(caps.max_msg_fds, 16);
      assert.equal(caps.max_data_xfer_size, 1048576);
      assert.equal(caps.pgsizes, 4096);
      assert.equal(caps.write_multiple, true);
    } finally {
      c.close();
    }
  });

  it('lowers a newer minor to the server minor, never above the client', async () => {
    const c = await VfioUserClient.connect(serve.socket(GPU), { minor: 7 });
    try {
      assert.equal(c.version?.major, 0);
      assert.equal(c.version?.minor, 2);
    } finally {
      c.close();
    }
    const d = await VfioUserClient.connect(serve.socket(GPU), { minor: 1, capabilities: null });
    try {
      assert.equal(d.version?.minor, 1);
    } finally {
      d.close();
    }
  });

  it('refuses another major, invalid JSON and bad capability types with EINVAL', async () => {
    const cases = [
      versionPayload(1, 0, null),
      versionPayload(0, 0, '{"capabilities":'),
      versionPayload(0, 0, '{"capabilities":{"max_msg_fds":"many"}}'),
      new Uint8Array([0, 0]), // shorter than major+minor
      new Uint8Array([0, 0, 0, 0, 0x7b]), // JSON without its NUL
    ];
    for (const [i, payload] of cases.entries()) {
      const c = await raw();
      try {
        c.sendRaw(frame(0x7100 + i, Command.VERSION, payload));
        assert.equal(errnoOf(await c.expectReply(0x7100 + i, Command.VERSION)), 22, `case ${i}`);
      } finally {
        c.close();
      }
    }
  });

  it('must come first: other commands before it are EINVAL, then VERSION still works', async () => {
    const c = await raw();
    try {
      c.sendRaw(frame(0x7200, Command.DEVICE_GET_INFO, pack(16, 0, 0, 0)));
      assert.equal(errnoOf(await c.expectReply(0x7200, Command.DEVICE_GET_INFO)), 22);
      await c.negotiate(0, 0, null);
      const info = await c.getDeviceInfo();
      assert.equal(info.numRegions, 10);
    } finally {
      c.close();
    }
  });

  it('comes only once: a second VERSION is EINVAL and the session goes on', async () => {
    const c = await VfioUserClient.connect(serve.socket(GPU));
    try {
      c.sendRaw(frame(0x7300, Command.VERSION, versionPayload(0, 0, null)));
      assert.equal(errnoOf(await c.expectReply(0x7300, Command.VERSION)), 22);
      assert.equal((await c.getDeviceInfo()).flags & 0x2, 0x2);
    } finally {
      c.close();
    }
  });
});
