/**
 * Round trips through the real dtc, both ways, on the hand-written fixtures in `test/fixtures/fdt/`:
 * dtc's blob → parseFdt → serializeFdt decompiles (dtc) to the same DTS (and, for v17, is the
 * same bytes); toDts → `dtc -I dts -O dtb` decompiles to the same DTS. Version 16 blobs too.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { decompile, dtc, hasDtc, runDtcAll } from '../../test/support/fdt/dtc.ts';
import { nodeToDts, toDts } from './dts.ts';
import { parseFdt } from './parse.ts';
import { serializeFdt } from './serialize.ts';
import { cells, Fdt } from './tree.ts';

/** dtc's DTS output as text (decompile's form, from runDtcAll's bytes). */
const dtsText = (b: Uint8Array) => new TextDecoder().decode(b);

const skip = hasDtc() ? false : 'dtc (device-tree-compiler) is not installed';
const FIXTURES = new URL('../../test/fixtures/fdt/', import.meta.url);
const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.dts'));

const VARIANTS: readonly { name: string; args: string[] }[] = [
  { name: 'v17', args: [] },
  { name: 'v16', args: ['-V', '16'] },
  { name: 'boot cpu 5, padded', args: ['-b', '5', '-p', '64'] },
];

test('fixtures are present', () => {
  assert.ok(fixtures.length >= 3, `fixtures: ${fixtures.join(', ')}`);
});

for (const file of fixtures) {
  for (const variant of VARIANTS) {
    test(`${file} (${variant.name}): dtc blob → parse → serialize decompiles the same`, {
      skip,
    }, () => {
      const source = readFileSync(new URL(file, FIXTURES), 'utf8');
      const blob = dtc(source, 'dts', 'dtb', variant.args);
      const fdt = parseFdt(blob, file);
      const written = serializeFdt(fdt);
      const [ours, theirs] = runDtcAll([
        { input: written, from: 'dtb', to: 'dts' },
        { input: blob, from: 'dtb', to: 'dts' },
      ]);
      assert.ok(ours?.ok && theirs?.ok, `${ours?.stderr}${theirs?.stderr}`);
      assert.equal(dtsText(ours.output), dtsText(theirs.output));
      assert.equal(parseFdt(written).bootCpuId, fdt.bootCpuId);
      if (variant.args.length === 0) assert.deepEqual(written, new Uint8Array(blob));
    });

    test(`${file} (${variant.name}): toDts → dtc → decompiles the same`, { skip }, () => {
      const source = readFileSync(new URL(file, FIXTURES), 'utf8');
      const blob = dtc(source, 'dts', 'dtb', variant.args);
      const dts = toDts(parseFdt(blob, file));
      assert.ok(dts.startsWith('/dts-v1/;\n'));
      const [compiled, ours, theirs] = runDtcAll([
        { input: dts, from: 'dts', to: 'dtb' },
        { input: { outputOf: 0 }, from: 'dtb', to: 'dts' },
        { input: blob, from: 'dtb', to: 'dts' },
      ]);
      assert.ok(compiled?.ok, compiled?.stderr);
      assert.ok(ours?.ok && theirs?.ok, `${ours?.stderr}${theirs?.stderr}`);
      assert.equal(dtsText(ours.output), dtsText(theirs.output));
    });
  }
}

test('witherspoon fixture: phandles resolve after a round trip', { skip }, () => {
  const source = readFileSync(new URL('witherspoon-npu.dts', FIXTURES), 'utf8');
  const fdt = parseFdt(serializeFdt(parseFdt(dtc(source, 'dts', 'dtb'))));
  const gpu = fdt.findNode('/pciex@600c3c0000000/pci@0/display@0');
  assert.ok(gpu);
  const bridgePhandle = new DataView(gpu.getProperty('ibm,npu')!.value.buffer).getUint32(0);
  assert.equal(fdt.findByPhandle(bridgePhandle)?.path, '/pciex@6030200000000/pci@0');
  assert.equal(fdt.memoryReservations.length, 2);
});

test('nodeToDts of a subtree, wrapped in a root, is accepted by dtc', { skip }, () => {
  const source = readFileSync(new URL('witherspoon-npu.dts', FIXTURES), 'utf8');
  const fdt = parseFdt(dtc(source, 'dts', 'dtb'));
  const npu = fdt.findNode('/xscom/npu@5011000');
  assert.ok(npu);
  const text = nodeToDts(npu);
  assert.ok(text.startsWith('npu@5011000 {\n'));
  const wrapped = `/dts-v1/;\n/ {\n${text}};\n`;
  const back = parseFdt(dtc(wrapped, 'dts', 'dtb'));
  assert.deepEqual(
    back.findNode('/npu@5011000/link@0')?.properties,
    npu.getChild('link@0')?.properties,
  );
});

test('a 2000-deep tree written by toDts and serializeFdt is accepted by dtc', { skip }, () => {
  const fdt = new Fdt();
  let node = fdt.root;
  for (let i = 0; i < 2000; i++) node = node.addChild(`n@${i.toString(16)}`);
  node.setProperty('leaf', cells.string('bottom'));
  const fromBlob = decompile(serializeFdt(fdt));
  assert.equal(decompile(dtc(toDts(fdt), 'dts', 'dtb')), fromBlob);
});

test('blobs we build from scratch are accepted by dtc and decompile as expected', { skip }, () => {
  const fdt = new Fdt();
  fdt.memoryReservations = [{ address: 0x30000000n, size: 0x1000n }];
  fdt.root.setProperty('#address-cells', cells.u32(2)).setProperty('#size-cells', cells.u32(2));
  const mem = fdt.root.addChild('memory@3e000000000');
  mem.setProperty('device_type', cells.string('memory'));
  mem.setProperty('reg', cells.u64(0x3e000000000n, 0x2000000000n));
  mem.setProperty('compatible', cells.strings('ibm,coherent-device-memory'));
  const text = decompile(serializeFdt(fdt));
  assert.match(text, /\/memreserve\/\s+0x0*30000000 0x0*1000;/);
  assert.match(text, /reg = <0x3e0 0x00 0x20 0x00>;/);
  assert.equal(decompile(dtc(toDts(fdt), 'dts', 'dtb')), text);
});
