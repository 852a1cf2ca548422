/**
 * What `vfio-nvlink2 trace` reads from DIR/trace.ctl is checked line by line
 * (parseTraceMessage): serve's four messages come back as sent; anything else is one EPROTO line
 * naming the socket and the member, from the CLI too (a socket that is not serve's, in a second
 * process), never a crash with a stack.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { runCli } from '../../test/support/cli.ts';
import { within } from '../../test/support/wait.ts';
import { parseTraceMessage, type TraceMessage } from './trace-control.ts';

const PATH = '/run/vfio/trace.ctl';

const GOOD: TraceMessage[] = [
  { attached: { pid: 7, events: ['vfio_pci_nvgpu_mmap'] } },
  {
    line: ' serve-7 [000] 1.000000: vfio_pci_npu2_mmap: ...',
    event: {
      name: 'vfio_pci_npu2_mmap',
      cat: 'vfio_pci',
      ph: 'i',
      s: 't',
      ts: 1.5,
      pid: 7,
      tid: 0,
      args: { name: '0004:04:00.0', ret: 0, message: 'x' },
    },
  },
  { lost: 3 },
  { error: 'unknown event' },
];

function refusal(line: string): string {
  try {
    parseTraceMessage(PATH, line);
  } catch (err) {
    assert.ok(err instanceof Error);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err.message;
  }
  assert.fail(`accepted ${line}`);
}

describe('trace socket messages', () => {
  it("serve's four messages come back as sent", () => {
    for (const m of GOOD) assert.deepEqual(parseTraceMessage(PATH, JSON.stringify(m)), m);
  });

  it('anything else is one line naming the socket and the member', () => {
    assert.match(refusal('hello'), /^\/run\/vfio\/trace\.ctl: not JSON \(/);
    assert.equal(refusal('null'), `${PATH}: "the message" must be an object, got null`);
    assert.equal(
      refusal('{"attached":{"pid":"7","events":[]}}'),
      `${PATH}: "attached.pid" must be a non-negative integer, got "7"`,
    );
    assert.equal(
      refusal('{"attached":{"pid":7}}'),
      `${PATH}: "attached.events" must be an array, got undefined`,
    );
    assert.equal(refusal('{"lost":-1}'), `${PATH}: "lost" must be a non-negative integer, got -1`);
    assert.equal(refusal('{"line":"x"}'), `${PATH}: "event" must be an object, got undefined`);
    const event = {
      ...GOOD[1]!,
      event: { ...(GOOD[1] as { event: object }).event, args: { a: [] } },
    };
    assert.equal(
      refusal(JSON.stringify(event)),
      `${PATH}: "event.args.a" must be a string or a number, got an array`,
    );
  });

  it('the CLI on a socket that is not serve`s: one EPROTO line, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-trace-peer-'));
    let server: ChildProcess | undefined;
    try {
      const socket = join(dir, 'trace.ctl');
      // A second process listening where serve would, answering with another protocol.
      server = spawn(
        process.execPath,
        [
          '-e',
          `const net = require('node:net');
           net.createServer((c) => c.end('{"attached":{"pid":"me"}}\\n'))
             .listen(process.argv[1], () => console.log('ready'));`,
          socket,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const lines = createInterface({ input: server.stdout! });
      await within('the fake trace socket to listen', new Promise((r) => lines.once('line', r)));
      const r = runCli(['trace', '--socket-dir', dir]);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(
        r.stderr,
        `vfio-nvlink2: trace: EPROTO: ${socket}: "attached.pid" must be a non-negative integer, got "me"\n`,
      );
    } finally {
      server?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
