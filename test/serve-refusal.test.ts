/**
 * A second client refused while the device is held (server.ts): the first message of the
 * refused connection gets EBUSY only if it is a command that wants a reply — never a reply to
 * a message that is itself a reply (vfio-user.rst "Header": replies are not answered) — and
 * the connection is closed either way, the holder untouched.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closeFd, connectUnix, receiveMessage, sendMessage } from '../src/native/index.ts';
import { Command } from '../src/vfio-user/index.ts';
import { FLAG_ERROR, FLAG_REPLY, frame } from './support/frames.ts';
import {
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

/** Everything the server sends on `fd` until it closes the connection. */
async function untilClosed(fd: number): Promise<Uint8Array> {
  const got: Uint8Array[] = [];
  await waitFor('the server to close the refused connection', () => {
    for (;;) {
      const r = receiveMessage(fd, 65536, 4);
      if (r === null) return false;
      if (r.bytes.length === 0) return true;
      got.push(r.bytes);
    }
  });
  return Buffer.concat(got);
}

describe('a refused second client', () => {
  it('gets EBUSY for a command, nothing for a reply-typed message; closed either way', async () => {
    const holder = await connectWhenFree(serve, GPU);
    try {
      const reply = connectUnix(serve.socket(GPU));
      const command = connectUnix(serve.socket(GPU));
      try {
        sendMessage(reply, frame(0x51, Command.VERSION, new Uint8Array(4), { flags: FLAG_REPLY }));
        sendMessage(command, frame(0x52, Command.DEVICE_GET_INFO, new Uint8Array(16)));
        assert.equal((await untilClosed(reply)).length, 0, 'no answer to a reply');
        const busy = await untilClosed(command);
        assert.equal(busy.length, 16);
        const v = new DataView(busy.buffer, busy.byteOffset);
        assert.equal(v.getUint16(0, true), 0x52);
        assert.equal(v.getUint32(8, true), FLAG_REPLY | FLAG_ERROR);
        assert.equal(v.getUint32(12, true), 16, 'EBUSY');
      } finally {
        closeFd(reply);
        closeFd(command);
      }
      assert.equal((await holder.getDeviceInfo()).numRegions, 10, 'the holder is untouched');
    } finally {
      holder.close();
    }
  });
});
