/**
 * The C echo floor (native/echo-floor.c) against the shapes the Node echo answers
 * (echo-server.ts), over a real socket to its own process: a REGION_READ-shaped request gets
 * header + head + `count` bytes of 0xa5 with the reply flag and the reply's size; a
 * REGION_WRITE-shaped one gets header + head; a frame whose size is under 32 bytes closes the
 * connection; stopping it ends the process and removes its socket.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { type FloorProcess, startEchoFloor } from './floor-processes.ts';

let floor: FloorProcess;
before(async () => {
  floor = await startEchoFloor({ pinned: false, reason: 'test' });
});
after(async () => {
  await floor.stop();
});

function request(command: number, msgId: number, count: number, data = new Uint8Array(0)) {
  const b = new Uint8Array(32 + data.length);
  const v = new DataView(b.buffer);
  v.setUint16(0, msgId, true);
  v.setUint16(2, command, true);
  v.setUint32(4, b.length, true);
  v.setBigUint64(16, 0x1234n, true);
  v.setUint32(24, 7, true);
  v.setUint32(28, count, true);
  b.set(data, 32);
  return b;
}

/** Sends `bytes` and collects `want` bytes of reply (or what came before the peer closed). */
function exchange(socket: Socket, bytes: Uint8Array, want: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => reject(new Error(`no ${want}-byte reply within 10 s`)), 10_000);
    const done = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(new Uint8Array(Buffer.concat(parts)));
    };
    const onData = (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= want) done();
    };
    socket.on('data', onData);
    socket.once('close', done);
    socket.write(bytes);
  });
}

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once('error', reject);
  });
}

test('REGION_READ and REGION_WRITE shapes are answered byte for byte', async () => {
  const s = await open(floor.path);
  try {
    const read = await exchange(s, request(9, 0x42, 4), 36);
    const head = request(9, 0x42, 4);
    const want = new Uint8Array(36).fill(0xa5);
    want.set(head.subarray(0, 32));
    new DataView(want.buffer).setUint32(4, 36, true);
    new DataView(want.buffer).setUint32(8, 1, true);
    assert.deepEqual(read, want);

    const data = new Uint8Array(1 << 20).fill(3);
    const write = await exchange(s, request(10, 0x43, data.length, data), 32);
    const w = request(10, 0x43, data.length);
    new DataView(w.buffer).setUint32(4, 32, true);
    new DataView(w.buffer).setUint32(8, 1, true);
    assert.deepEqual(write, w);
  } finally {
    s.destroy();
  }
});

test('a frame under 32 bytes closes the connection; the floor serves the next one', async () => {
  const s = await open(floor.path);
  const bad = request(9, 1, 4);
  new DataView(bad.buffer).setUint32(4, 16, true);
  assert.equal((await exchange(s, bad, 1)).length, 0);
  s.destroy();
  const t = await open(floor.path);
  try {
    assert.equal((await exchange(t, request(9, 2, 8), 40)).length, 40);
  } finally {
    t.destroy();
  }
});

test('stopping it ends the process and removes its socket', async () => {
  const other = await startEchoFloor({ pinned: false, reason: 'test' });
  assert.ok(existsSync(other.path));
  await other.stop();
  assert.equal(existsSync(other.path), false);
  assert.throws(() => process.kill(other.pid, 0), { code: 'ESRCH' });
});
