/**
 * `inspect SOCKET` and `inspect --socket-dir DIR` (through a vfio-user client, against the real
 * server) print exactly what `inspect --dt` prints in process — text, --hex and --json. A
 * failed query shows only its errno both ways, as a VMM sees it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DeviceDescription } from '../src/vfio/describe.ts';
import { runCli } from './support/cli.ts';
import { BRIDGE, GPU, type ServeProcess, startServe } from './support/serve-process.ts';

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

function inspect(...args: string[]): string {
  const r = runCli(['inspect', ...args]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('inspect over the wire', () => {
  for (const address of [GPU, BRIDGE]) {
    it(`inspect SOCKET --hex equals inspect --dt ${address} --hex`, () => {
      const wire = inspect(serve.socket(address), '--hex');
      const local = inspect('--dt', address, '--hex');
      assert.equal(wire, local);
      assert.match(wire, /NVLINK2/);
    });
  }

  it('inspect SOCKET --json equals inspect --dt ADDRESS --json', () => {
    const wire = JSON.parse(inspect(serve.socket(GPU), '--json')) as DeviceDescription;
    const local = JSON.parse(inspect('--dt', GPU, '--json')) as DeviceDescription;
    assert.deepEqual(wire, local);
    assert.equal(wire.name, GPU);
  });

  it('inspect --socket-dir DIR --json equals inspect --dt --json (every GPU and bridge)', () => {
    const wire = JSON.parse(inspect('--socket-dir', serve.dir, '--json')) as DeviceDescription[];
    const local = JSON.parse(inspect('--dt', '--json')) as DeviceDescription[];
    assert.equal(wire.length, 18);
    assert.deepEqual(wire, local);
  });
});
