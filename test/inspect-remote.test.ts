/**
 * `inspect SOCKET` and `inspect --socket-dir DIR` (through a vfio-user client, against the real
 * server) print what `inspect --dt` prints in process — text, --hex and --json. The one thing
 * the wire cannot carry is the server's sentence behind an error reply (vfio-user error replies
 * are a header with an errno), so failed queries are compared by errno; everything else must
 * be identical.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { DeviceDescription } from '../src/vfio/describe.ts';
import { errnoName } from '../src/vfio/errors.ts';
import { BRIDGE, GPU, type ServeProcess, startServe } from './support/serve-process.ts';

const MAIN = new URL('../src/cli/main.ts', import.meta.url).pathname;

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

function inspect(...args: string[]): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'inspect', ...args], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** Error lines reduced to their errno name ("EINVAL: reason" / "EINVAL (errno 22)" → "EINVAL"). */
function byErrnoText(text: string): { text: string; errors: number } {
  let errors = 0;
  const out = text.replace(/\b(E[A-Z0-9]+)(: .*| \(errno \d+\))$/gm, (_m, code: string) => {
    errors++;
    return code;
  });
  return { text: out, errors };
}

function byErrnoJson(descriptions: DeviceDescription[]): { json: unknown; errors: number } {
  let errors = 0;
  const fix = <T extends { error?: { errno: number; message: string } }>(e: T): T => {
    if (!e.error) return e;
    errors++;
    return { ...e, error: { errno: e.error.errno, message: errnoName(e.error.errno) } };
  };
  const json = descriptions.map((d) => ({
    ...d,
    regions: d.regions.map(fix),
    irqs: d.irqs.map(fix),
  }));
  return { json, errors };
}

describe('inspect over the wire', () => {
  for (const address of [GPU, BRIDGE]) {
    it(`inspect SOCKET --hex equals inspect --dt ${address} --hex`, () => {
      const wire = byErrnoText(inspect(serve.socket(address), '--hex'));
      const local = byErrnoText(inspect('--dt', address, '--hex'));
      assert.equal(wire.text, local.text);
      assert.equal(wire.errors, local.errors);
      assert.match(wire.text, /NVLINK2/);
    });
  }

  it('inspect SOCKET --json equals inspect --dt ADDRESS --json', () => {
    const wire = JSON.parse(inspect(serve.socket(GPU), '--json')) as DeviceDescription;
    const local = JSON.parse(inspect('--dt', GPU, '--json')) as DeviceDescription;
    assert.deepEqual(byErrnoJson([wire]).json, byErrnoJson([local]).json);
    assert.equal(wire.name, GPU);
  });

  it('inspect --socket-dir DIR --json equals inspect --dt --json (every GPU and bridge)', () => {
    const wire = JSON.parse(inspect('--socket-dir', serve.dir, '--json')) as DeviceDescription[];
    const local = JSON.parse(inspect('--dt', '--json')) as DeviceDescription[];
    assert.equal(wire.length, 18);
    const w = byErrnoJson(wire);
    const l = byErrnoJson(local);
    assert.deepEqual(w.json, l.json);
    assert.equal(w.errors, l.errors);
  });
});
