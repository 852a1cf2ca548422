/**
 * `vfio-nvlink2 topology` as a user runs it: the SVG/HTML files it writes, and --socket-dir
 * against the real server in a second process, whose live state (a client's partition and
 * LPID, the ATSD register bound to it, GPU RAM the client wrote) the picture shows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './support/cli.ts';
import {
  BRIDGE,
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';

function topology(...args: string[]) {
  return runCli(['topology', ...args]);
}

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-topology-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('topology files', () => {
  it('--svg and --html write the picture; the page holds the SVG and the tables', () => {
    const svg = join(tmp, 't.svg');
    const html = join(tmp, 't.html');
    const r = topology('--svg', svg, '--html', html);
    assert.equal(r.status, 0, r.stderr);
    const picture = readFileSync(svg, 'utf8');
    assert.match(picture, /^<\?xml[\s\S]*<svg /);
    assert.match(picture.replaceAll('&#45;', '-'), /8335-GTW · built-in witherspoon/);
    const page = readFileSync(html, 'utf8');
    assert.match(page, /<svg /);
    assert.match(page, /<h2>IOMMU groups<\/h2>/);
    assert.match(page, /0x6030200800000/);
  });

  it('usage errors: no output, or --dt with --socket-dir', () => {
    assert.equal(topology().status, 2);
    assert.equal(topology('--dt', 'x', '--socket-dir', 'y', '--dot').status, 2);
  });

  it('a directory no serve runs in: one line naming the file', () => {
    const r = topology('--socket-dir', tmp, '--dot');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /platform\.dtb \(ENOENT\): is `serve --socket-dir .*` running\?/);
  });
});

describe('topology --socket-dir over a running serve', () => {
  let serve: ServeProcess;
  before(async () => {
    serve = await startServe();
  });
  after(async () => {
    await serve.stop();
  });

  it('shows the client, its LPID, the ATSD binding and the GPU RAM it wrote', async () => {
    const gpu = await connectWhenFree(serve, GPU);
    const bridge = await connectWhenFree(serve, BRIDGE);
    try {
      await gpu.regionWrite(9, 0n, new Uint8Array(4096).fill(0xa5));
      const state = await waitFor('both devices in the partition, GPU RAM counted', () => {
        const s = serve.state();
        const ram = s.memory.gpus.find((g) => g.address === GPU)?.gpuRam ?? 0;
        return s.partitions[0]?.devices.length === 2 && ram > 0 ? s : undefined;
      });
      const p = state.partitions[0]!;
      assert.equal(p.pid, process.pid);
      const r = topology('--socket-dir', serve.dir, '--dot');
      assert.equal(r.status, 0, r.stderr);
      const node = (address: string) =>
        r.stdout
          .split('\n')
          .find((l) => l.includes(`"dev-${address.replaceAll(':', '-')}" [id=`)) ?? '';
      assert.match(node(GPU), new RegExp(`client pid ${p.pid} · LPID ${p.lpid}`));
      const ram = state.memory.gpus.find((g) => g.address === GPU)!.gpuRam;
      const touched = /GPU RAM touched (\d+) (B|KiB|MiB)/.exec(node(GPU));
      assert.ok(touched, node(GPU));
      const unit = { B: 1, KiB: 1024, MiB: 1 << 20 }[touched[2] as 'B' | 'KiB' | 'MiB'];
      assert.equal(Number(touched[1]) * unit, ram, 'the bytes state.json counts');
      assert.match(node(BRIDGE), new RegExp(`ATSD LPID ${p.lpid}`));
      assert.match(node('0003:02:00.0'), /no client/);
      assert.match(r.stdout, new RegExp(`live from ${serve.dir}`));
    } finally {
      gpu.close();
      bridge.close();
    }
  });
});
