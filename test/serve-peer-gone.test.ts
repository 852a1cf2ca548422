/**
 * A peer that leaves with replies unread loses nothing it sent. When a UNIX socket closes with
 * bytes unread in its receive queue, the kernel sets ECONNRESET on the other end
 * (net/unix/af_unix.c unix_release_sock), epoll reports EPOLLERR, and libuv hands its uv_poll
 * callback UV_EBADF; a reply sent to a peer that is gone fails with EPIPE. Either way the
 * messages the peer sent before it left are still in our receive queue: they are handled, in
 * order, before the connection closes (the server once closed at once: a posted REGION_WRITE
 * that had reached the socket was dropped, and the log said "poll failed ... errno 9"). The
 * client side reads what a server sent before closing the same way (the EBUSY reply of a
 * refused client).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  closeFd,
  connectUnix,
  FdEvent,
  FdWatcher,
  receiveMessage,
  sendMessage,
} from '../src/native/index.ts';
import { ClientChannel, Command } from '../src/vfio-user/index.ts';
import { FLAG_NO_REPLY, frame, pack, QEMU_VERSION_JSON, versionPayload } from './support/frames.ts';
import {
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';

const GPU_RAM = 9;

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

/** Resolves once `fd` is readable (bytes waiting), without reading them; bounded. */
function readable(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.close();
      reject(new Error('nothing to read within 30 s'));
    }, 30_000);
    const w = new FdWatcher(fd, FdEvent.READABLE, () => {
      clearTimeout(timer);
      w.close();
      resolve();
    });
  });
}

/** Resolves once poll reports an error on `fd` (the peer closed with bytes of ours unread). */
function resetByPeer(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.close();
      reject(new Error('the server did not close within 30 s'));
    }, 30_000);
    const w = new FdWatcher(fd, 0, (status) => {
      if (status >= 0) return;
      clearTimeout(timer);
      w.close();
      resolve();
    });
    w.set(FdEvent.WRITABLE); // EPOLLERR is reported whatever is watched
  });
}

/** Reads the one reply pending at `fd` (VERSION's, small). */
async function readReply(fd: number): Promise<void> {
  await readable(fd);
  const r = receiveMessage(fd, 4096, 4);
  assert.ok(r !== null && r.bytes.length >= 16, 'a reply');
}

function postedWrite(offset: bigint, data: Uint8Array): Uint8Array {
  const payload = new Uint8Array(16 + data.length);
  payload.set(pack(offset, GPU_RAM, data.length));
  payload.set(data, 16);
  return frame(0, Command.REGION_WRITE, payload, { flags: FLAG_NO_REPLY });
}

/** GPU RAM at `offset`, read by a client of our own once the device is free again. */
async function gpuRam(offset: bigint, count: number): Promise<Uint8Array> {
  const reader = await connectWhenFree(serve, GPU);
  try {
    return await reader.regionRead(GPU_RAM, offset, count);
  } finally {
    reader.close();
  }
}

describe('a peer that leaves with replies unread', () => {
  it('the server handles a posted write that reached the socket before the EPOLLERR', async () => {
    const at = 0x5000n;
    const fd = connectUnix(serve.socket(GPU));
    try {
      sendMessage(fd, frame(1, Command.VERSION, versionPayload(0, 0, QEMU_VERSION_JSON)));
      await readReply(fd);
      sendMessage(fd, frame(2, Command.REGION_READ, pack(0n, GPU_RAM, 8)));
      await readable(fd); // its reply arrived and stays unread: our close resets the server's end
      sendMessage(fd, postedWrite(at, new Uint8Array(8).fill(0x5a)));
    } finally {
      closeFd(fd);
    }
    assert.deepEqual(await gpuRam(at, 8), new Uint8Array(8).fill(0x5a));
    assert.doesNotMatch(serve.stderr(), /poll failed/);
  });

  it('the server handles what follows a command whose reply fails with EPIPE', async () => {
    const at = 0x6000n;
    for (let round = 1; round <= 20; round++) {
      const fd = connectUnix(serve.socket(GPU));
      try {
        sendMessage(fd, frame(1, Command.VERSION, versionPayload(0, 0, QEMU_VERSION_JSON)));
        await readReply(fd);
        // Both at once and gone at once: the server reads them after the close, so the
        // read's reply fails (EPIPE) before the write behind it is handled.
        const read = frame(2, Command.REGION_READ, pack(0n, GPU_RAM, 8));
        const write = postedWrite(at, new Uint8Array(8).fill(round));
        const both = new Uint8Array(read.length + write.length);
        both.set(read);
        both.set(write, read.length);
        sendMessage(fd, both);
      } finally {
        closeFd(fd);
      }
      assert.deepEqual(await gpuRam(at, 8), new Uint8Array(8).fill(round), `round ${round}`);
    }
    assert.doesNotMatch(serve.stderr(), /sendmsg EPIPE|poll failed/);
  });

  it('a refused client reads its EBUSY reply although its other requests stay unread', async () => {
    const holder = await connectWhenFree(serve, GPU);
    try {
      const fd = connectUnix(serve.socket(GPU));
      // VERSION, then a 1 MiB REGION_WRITE of which the socket takes what it can: the server
      // reads 64 KiB, holds the VERSION for its decision and reads no further.
      const big = postedWrite(0n, new Uint8Array(1 << 20));
      new DataView(big.buffer).setUint32(8, 0, true); // not posted: msg 2 waits for a reply
      new DataView(big.buffer).setUint16(0, 2, true);
      sendMessage(fd, [frame(1, Command.VERSION, versionPayload(0, 0, QEMU_VERSION_JSON)), big]);
      // The server answers the VERSION with EBUSY and closes with the rest unread: our end is
      // reset (EPOLLERR). Only then does a client channel take the socket over.
      await resetByPeer(fd);
      const refused = ClientChannel.adopt(fd, { maxMessageSize: 1 << 21, maxFds: 16 }, 1 << 20);
      const version = refused.expectReply(1, Command.VERSION);
      const write = refused.expectReply(2, Command.REGION_WRITE);
      write.catch(() => {});
      assert.equal((await version).header.errno, 16, 'EBUSY');
      const reason = await refused.closed;
      assert.equal(reason.kind, 'eof', JSON.stringify(reason));
      await assert.rejects(write, /connection closed \(eof\)/);
    } finally {
      holder.close();
    }
    await waitFor('the holder to be released', () => serve.state().partitions.length === 0);
  });
});
