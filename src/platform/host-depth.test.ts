/**
 * The host as Linux sees a tree of any depth: drivers/of/fdt.c (v5.x) `unflatten_dt_nodes`
 * skips nodes 64 or more levels deep (FDT_MAX_DEPTH) with one warning and boots, so the host
 * lists exactly the functions of the tree without them; bridge hierarchies are walked without
 * recursion (phandles that point back: src/nvlink2/phandle-rings.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withDeepChain } from '../../test/support/fdt/deep.ts';
import { cells, FDT_MAX_DEPTH, Fdt, type FdtNode, parseFdt, serializeFdt } from '../fdt/index.ts';
import { defaultPlatformTree } from './default-platform.ts';
import { buildHost } from './host.ts';
import { generateWitherspoon } from './witherspoon/index.ts';

const BUILT_IN = serializeFdt(defaultPlatformTree());
const functionsOf = (fdt: Fdt) =>
  buildHost(fdt).functions.map((f) => [f.name, f.role, f.iommuGroup, f.node.path]);

test('100,000 nested nodes and a PHB 64 deep: the built-in functions, one warning', () => {
  const blob = withDeepChain(BUILT_IN, { depth: 100_000, phbAt: FDT_MAX_DEPTH });
  const fdt = parseFdt(blob, 'deep.dtb');
  const host = buildHost(fdt);
  assert.deepEqual(
    host.functions.map((f) => [f.name, f.role, f.iommuGroup, f.node.path]),
    functionsOf(defaultPlatformTree()),
  );
  assert.equal(host.phbs.length, 8);
  // The first skipped node is the PHB, in the input with its blob offset.
  let phb: FdtNode = fdt.root.children.at(-1)!;
  while (phb.children.length === 1) phb = phb.children[0]!;
  phb = phb.children.find((c) => c.name === 'pciex@42') ?? phb;
  assert.equal(phb.name, 'pciex@42');
  assert.deepEqual(host.warnings, [
    `deep.dtb: skipped ${100_000 - (FDT_MAX_DEPTH - 1) + 2} nodes nested 64 or more levels deep (the first at offset 0x${phb.offset!.toString(16)}), as Linux's unflatten_dt_nodes does`,
  ]);
  assert.notEqual(host.fdt, fdt);
  assert.equal(host.fdt.source, 'deep.dtb');
});

test('the depth boundary: a function at depth 63 is listed, one at 64 is not', () => {
  const kept = buildHost(parseFdt(withDeepChain(BUILT_IN, { depth: 100, phbAt: 62 })));
  const gpu = kept.functionByName('0042:00:00.0');
  assert.equal(gpu?.role, 'gpu');
  assert.equal(gpu?.node.path.split('/').length - 1, 63);
  assert.equal(kept.functions.length, 25);

  const cut = buildHost(parseFdt(withDeepChain(BUILT_IN, { depth: 100, phbAt: 63 }), 'cut.dtb'));
  assert.equal(cut.functionByName('0042:00:00.0'), undefined);
  assert.equal(cut.phbs.length, 9);
  assert.equal(cut.phbs.at(-1)?.functions.length, 0);
  assert.deepEqual(
    cut.functions.map((f) => f.name),
    buildHost(defaultPlatformTree()).functions.map((f) => f.name),
  );
  assert.equal(cut.warnings.length, 1);
  assert.match(cut.warnings[0]!, /^cut\.dtb: skipped 38 nodes nested 64 or more levels deep/);
});

test('a tree within the limit: no warning, the host keeps the very tree', () => {
  const fdt = parseFdt(withDeepChain(BUILT_IN, { depth: FDT_MAX_DEPTH - 1 }));
  const host = buildHost(fdt);
  assert.equal(host.fdt, fdt);
  assert.deepEqual(host.warnings, []);
});

test('bridges behind bridges, 62 levels: every function in tree order with its bus', () => {
  const fdt = new Fdt(undefined, 'bridges');
  let bus: FdtNode = fdt.root.addChild('pciex@0').setProperty('device_type', cells.string('pciex'));
  for (let level = 1; level <= FDT_MAX_DEPTH - 2; level++) {
    // A leaf at devfn 1 on this bus, then the bridge (devfn 0) to the next bus.
    bus
      .addChild('leaf@0,1')
      .setProperty('reg', cells.u32(((level - 1) << 16) | (1 << 8), 0, 0, 0, 0))
      .setProperty('vendor-id', cells.u32(0x1234))
      .setProperty('device-id', cells.u32(level));
    bus = bus
      .addChild('pci@0')
      .setProperty('reg', cells.u32((level - 1) << 16, 0, 0, 0, 0))
      .setProperty('vendor-id', cells.u32(0x1014))
      .setProperty('device-id', cells.u32(level))
      .setProperty('class-code', cells.u32(0x060400))
      .setProperty('bus-range', cells.u32(level, 0xff));
  }
  const host = buildHost(fdt);
  const expected: string[] = [];
  for (let b = 0; b < FDT_MAX_DEPTH - 2; b++) {
    const hex = b.toString(16).padStart(2, '0');
    expected.push(`0000:${hex}:00.0`, `0000:${hex}:00.1`);
  }
  assert.deepEqual(
    host.functions.map((f) => f.name),
    expected,
  );
  assert.equal(host.functionByName('0000:3d:00.1')?.device, FDT_MAX_DEPTH - 2);
});

test('a tree built in memory (no blob offsets): the warning names the first skipped node', () => {
  const fdt = generateWitherspoon();
  fdt.source = 'generated';
  let node = fdt.root;
  for (let d = 1; d <= 1000; d++) node = node.addChild(`level-${d}`);
  const host = buildHost(fdt);
  const first = Array.from({ length: FDT_MAX_DEPTH }, (_, i) => `level-${i + 1}`).join('/');
  assert.deepEqual(host.warnings, [
    `generated: skipped ${1000 - (FDT_MAX_DEPTH - 1)} nodes nested 64 or more levels deep (the first at /${first.slice(0, 59)}…${`/${first}`.slice(-60)} (depth 64)), as Linux's unflatten_dt_nodes does`,
  ]);
});
