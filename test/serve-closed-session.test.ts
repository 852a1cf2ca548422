/**
 * Messages of a connection accepted while another session held the device wait for the
 * server's decision; when the first of them gets a reply the client no longer reads (it shut
 * its reading down: sendmsg EPIPE), the rest are still handled, in order (transport.ts: a peer
 * that cannot receive loses nothing it sent), and everything the session took is given back
 * when the client disconnects. Once the failed reply closed the connection and dropped the
 * rest, and before that a VERSION among them opened the device again for a session already
 * released: the device stayed open, its GPU mapped to the LPID in the NPU tables and the LPID
 * taken with no client left. A Python client (test/support/closed_session_client.py) is the
 * peer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { PYTHON } from './support/native/python.ts';
import {
  connectWhenFree,
  GPU,
  type ServeProcess,
  type ServerState,
  startServe,
  waitFor,
} from './support/serve-process.ts';
import { within } from './support/wait.ts';

const SCRIPT = new URL('./support/closed_session_client.py', import.meta.url).pathname;

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

/** The state once no partition of this test process is left. */
function released(): Promise<ServerState> {
  return waitFor('our own client to be released', () => {
    const s = serve.state();
    return s.partitions.every((p) => p.pid !== process.pid) ? s : undefined;
  });
}

describe('a queued connection whose replies fail', () => {
  it('handles all of its messages, then leaves no device open, no LPID, no firmware mapping', async () => {
    // The tables as any released session leaves them (the first open ends the host mapping).
    (await connectWhenFree(serve, GPU)).close();
    const before = await released();
    const child = spawn(PYTHON, [SCRIPT, serve.socket(GPU)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const line = await within(
        'the python client to print "sent"',
        new Promise<string>((resolve) =>
          createInterface({ input: child.stdout }).once('line', resolve),
        ),
      );
      assert.equal(line, 'sent');
      // Its VERSION, behind the command whose reply failed, opens the GPU for the client's pid.
      await waitFor('the queued VERSION to open the device', () =>
        serve.state().partitions.some((p) => p.pid === child.pid && p.devices.includes(GPU)),
      );
      assert.doesNotMatch(serve.stderr(), /sendmsg EPIPE/);
    } finally {
      child.stdin.end(); // the client disconnects (also when an assertion failed: no hang)
    }
    assert.equal(await within('the python client to exit', exited), 0);
    // Every connection of the client is gone. A client of ours opens and closes the GPU after
    // it, so the server has handled everything before; then nothing of the first may be left.
    (await connectWhenFree(serve, GPU)).close();
    const after = await released();
    assert.deepEqual(after.partitions, [], 'no partition (pid, LPID, device) is left');
    assert.deepEqual(after.lpidsInUse, before.lpidsInUse);
    assert.deepEqual(
      after.firmware,
      before.firmware,
      'the GPU is back at LPID 0 in the NPU tables',
    );
  });
});
