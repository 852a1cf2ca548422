/**
 * A second implementation on the wire: a Python client (test/support/vfio_user_client.py,
 * socket.recv_fds) runs VERSION, GET_INFO, REGION_READ and GET_REGION_INFO with its fd
 * against the real server, and must see what the protocol says.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { VfioUserClient } from '../src/vfio-user/index.ts';
import { PYTHON } from './support/native/python.ts';
import { GPU, type ServeProcess, startServe } from './support/serve-process.ts';

const SCRIPT = new URL('./support/vfio_user_client.py', import.meta.url).pathname;
const hasPython =
  spawnSync(PYTHON, ['-c', 'import socket; socket.recv_fds'], { stdio: 'ignore' }).status === 0;

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

describe('a Python vfio-user client', {
  skip: hasPython ? false : 'python3 with socket.recv_fds is needed',
}, () => {
  it('negotiates 0.0, reads device info and config space, maps GPU RAM through the fd', async () => {
    const c = await VfioUserClient.connect(serve.socket(GPU));
    await c.regionWrite(9, 0n, new Uint8Array([0xca, 0xfe, 0xf0, 0x0d]));
    c.close();
    let out = '';
    for (let attempt = 0; attempt < 100; attempt++) {
      const r = spawnSync(PYTHON, [SCRIPT, serve.socket(GPU)], { encoding: 'utf8' });
      out = r.stdout;
      if (r.status === 0) break;
      if (!/EBUSY|errno 16|\[Errno 16\]/.test(r.stderr)) assert.fail(r.stderr);
      await new Promise((resolve) => setTimeout(resolve, 20)); // our own session still closing
    }
    const seen = JSON.parse(out);
    assert.deepEqual(seen.version, [0, 0]);
    assert.equal(seen.maxMsgFds, 16);
    assert.deepEqual(seen.info, { argsz: 16, flags: 3, numRegions: 10, numIrqs: 5 });
    assert.deepEqual(seen.read, { count: 4, vendor: 0x10de, device: 0x1db1 });
    assert.equal(seen.region9.argsz, 64);
    assert.equal(seen.region9.flags, 0xf);
    assert.equal(seen.region9.size, 128 * 2 ** 30);
    assert.equal(seen.region9.fds, 1);
    assert.equal(
      seen.region9.first8,
      'cafef00d00000000',
      'data written over the wire, read through the mapping',
    );
  });
});
