/**
 * A connection the server closed handles nothing more (session.ts): messages of a connection
 * accepted while another session held the device wait for the server's decision, and when
 * the first of them closes the connection (its reply fails), the rest are dropped — a VERSION
 * among them must not open the device again for a session that is already released, which
 * left the device open, its GPU mapped to the LPID in the NPU tables and the LPID taken with
 * no client left. A Python client (test/support/closed_session_client.py) is the peer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
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

describe('a closed connection', () => {
  it('handles none of its queued messages: no device open, no LPID, no firmware mapping left', async () => {
    // The tables as any released session leaves them (the first open ends the host mapping).
    (await connectWhenFree(serve, GPU)).close();
    const before = await released();
    const child = spawn('python3', [SCRIPT, serve.socket(GPU)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const line = await within(
      'the python client to print "sent"',
      new Promise<string>((resolve) =>
        createInterface({ input: child.stdout }).once('line', resolve),
      ),
    );
    assert.equal(line, 'sent');
    await waitFor('the queued connection to be closed', () =>
      /0002:01:00\.0: closing the connection of pid \d+: sendmsg EPIPE/.test(serve.stderr()),
    );
    child.stdin.end();
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
