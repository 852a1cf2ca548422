import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FdtError, readU32, serializeFdt, toDts } from '../fdt/index.ts';
import { defaultPlatformTree, loadPlatformTree, PlatformTreeError } from './default-platform.ts';
import { buildHost } from './host.ts';

const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-platform-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the default platform: 6 GPUs of 16 GiB, link speed 0x8, 4T down', () => {
  const fdt = defaultPlatformTree();
  const host = buildHost(fdt);
  const gpus = host.functions.filter((f) => f.role === 'gpu');
  assert.equal(gpus.length, 6);
  assert.ok(gpus.every((g) => g.device === 0x1db1));
  const bridge = host.npuBridgeOfGpu(gpus[0]!, 0)!;
  assert.equal(readU32(bridge.node, 'ibm,nvlink-speed'), 0x8);
  assert.ok(fdt.findNode('/memory@3e000000000'));
  assert.notEqual(defaultPlatformTree(), fdt, 'a fresh tree each call');
  assert.equal(toDts(loadPlatformTree()), toDts(fdt));
});

test('loads a DTB and a DTS (through dtc)', () => {
  const dtb = join(dir, 'w.dtb');
  writeFileSync(dtb, serializeFdt(defaultPlatformTree()));
  assert.equal(toDts(loadPlatformTree(dtb)), toDts(defaultPlatformTree()));
  const dts = join(dir, 'w.dts');
  writeFileSync(dts, toDts(defaultPlatformTree()));
  assert.equal(toDts(loadPlatformTree(dts)), toDts(defaultPlatformTree()));
  assert.equal(loadPlatformTree(dtb).source, dtb);
});

test('missing, malformed and rejected files give errors naming the file', () => {
  assert.throws(
    () => loadPlatformTree(join(dir, 'absent.dtb')),
    (e: unknown) =>
      e instanceof PlatformTreeError && /absent\.dtb: cannot read \(ENOENT\)/.test(e.message),
  );
  const junk = join(dir, 'junk.dtb');
  writeFileSync(junk, 'not a device tree');
  assert.throws(() => loadPlatformTree(junk), FdtError);
  const bad = join(dir, 'bad.dts');
  writeFileSync(bad, '/dts-v1/; / { oops');
  assert.throws(
    () => loadPlatformTree(bad),
    (e: unknown) => e instanceof PlatformTreeError && /bad\.dts: dtc rejected it/.test(e.message),
  );
});
