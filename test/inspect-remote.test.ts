/**
 * `inspect SOCKET` and `inspect --socket-dir DIR` (through a vfio-user client, against the real
 * server) print exactly what `inspect --dt` prints in process — text, --hex and --json. A
 * failed query shows only its errno both ways, as a VMM sees it. `--hex` dumps config space as
 * `lspci -xxx` does, the bytes REGION_READ returns, and lspci reading that dump decodes the
 * capabilities as inspect's text does.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DeviceDescription } from '../src/vfio/describe.ts';
import { runCli, runCliInProcess } from './support/cli.ts';
import {
  BRIDGE,
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
} from './support/serve-process.ts';

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

/** `inspect ...args` in this process (the server is the second process), exit status 0. */
async function inspect(...args: string[]): Promise<string> {
  const r = await runCliInProcess(['inspect', ...args]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** `inspect ...args` spawned as the bin (the real process path), exit status 0. */
function inspectSpawned(...args: string[]): string {
  const r = runCli(['inspect', ...args]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('inspect over the wire', () => {
  for (const address of [GPU, BRIDGE]) {
    it(`inspect SOCKET --hex equals inspect --dt ${address} --hex`, async () => {
      // The GPU's spawned (stdout through a real pipe), the bridge's in process.
      const wire =
        address === GPU
          ? inspectSpawned(serve.socket(address), '--hex')
          : await inspect(serve.socket(address), '--hex');
      const local = await inspect('--dt', address, '--hex');
      assert.equal(wire, local);
      assert.match(wire, /NVLINK2/);
    });
  }

  it('inspect SOCKET --json equals inspect --dt ADDRESS --json', async () => {
    const wire = JSON.parse(await inspect(serve.socket(GPU), '--json')) as DeviceDescription;
    const local = JSON.parse(await inspect('--dt', GPU, '--json')) as DeviceDescription;
    assert.deepEqual(wire, local);
    assert.equal(wire.name, GPU);
  });

  it('inspect --socket-dir DIR --json equals inspect --dt --json (every GPU and bridge)', async () => {
    const wire = JSON.parse(
      await inspect('--socket-dir', serve.dir, '--json'),
    ) as DeviceDescription[];
    const local = JSON.parse(await inspect('--dt', '--json')) as DeviceDescription[];
    assert.equal(wire.length, 18);
    assert.deepEqual(wire, local);
  });
});

/** The `as lspci -xxx dumps it:` block of inspect's text: its device line and byte lines. */
function lspciDump(text: string): { lines: string[]; bytes: Buffer } {
  const all = text.split('\n');
  const start = all.indexOf('  as lspci -xxx dumps it:') + 1;
  assert.ok(start > 0, 'no lspci -xxx block');
  let end = start + 1;
  while (end < all.length && /^[0-9a-f]{2,3}: /.test(all[end] ?? '')) end++;
  const lines = all.slice(start, end);
  const bytes = Buffer.from(
    lines
      .slice(1)
      .map((l) => l.slice(l.indexOf(': ') + 2).replaceAll(' ', ''))
      .join(''),
    'hex',
  );
  return { lines, bytes };
}

const hasLspci = spawnSync('lspci', ['--version']).status === 0;

describe('inspect --hex: config space as lspci -xxx dumps it', () => {
  for (const address of [GPU, BRIDGE]) {
    it(`${address}: the dump holds the 256 bytes REGION_READ of region 7 returns`, async () => {
      const { bytes } = lspciDump(await inspect(serve.socket(address), '--hex'));
      const client = await connectWhenFree(serve, address);
      try {
        const read = await client.regionRead(7, 0n, 256);
        assert.equal(bytes.length, 256);
        assert.deepEqual(bytes, Buffer.from(read));
      } finally {
        client.close();
      }
    });

    it(`${address}: lspci -vvv -F on the dump decodes the capabilities as inspect does`, {
      skip: hasLspci ? false : 'lspci not installed (apt-get install pciutils)',
    }, async () => {
      const text = await inspect(serve.socket(address), '--hex');
      const dir = mkdtempSync(join(tmpdir(), 'vn-lspci-'));
      try {
        writeFileSync(join(dir, 'dump'), `${lspciDump(text).lines.join('\n')}\n`);
        const r = spawnSync('lspci', ['-vvv', '-F', join(dir, 'dump')], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const ours = text
          .split('\n')
          .filter((l) => /^\t(Control|Status|Capabilities):|^\t\t/.test(l));
        const theirs = r.stdout.split('\n');
        // Every line of ours, in order, in lspci's (which adds DevCap2 and after to PCIe).
        let at = 0;
        for (const line of ours) {
          const found = theirs.indexOf(line, at);
          assert.ok(found >= 0, `lspci does not print ${JSON.stringify(line)} after line ${at}`);
          at = found + 1;
        }
        assert.ok(ours.length >= 10, `only ${ours.length} lspci-style lines in inspect's text`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
