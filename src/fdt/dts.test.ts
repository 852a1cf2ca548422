/**
 * DTS text: how each kind of value is written (as dtc decompiles it), the file layout, and
 * names dtc could not read back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ascii } from '../../test/support/fdt/pack.ts';
import { formatPropertyValue, nodeToDts, toDts } from './dts.ts';
import { FdtError } from './errors.ts';
import { cells, Fdt } from './tree.ts';

const CASES: readonly [string, Uint8Array, string][] = [
  ['empty', cells.empty(), ''],
  ['one string', cells.string('okay'), '"okay"'],
  [
    'string list',
    cells.strings('ibm,power9-npu-pciex', 'ibm,ioda2-npu2-phb'),
    '"ibm,power9-npu-pciex", "ibm,ioda2-npu2-phb"',
  ],
  ['escapes', ascii('a"b\\c\td\n\0'), '"a\\"b\\\\c\\td\\n"'],
  ['u32 cells', cells.u32(1, 0xffffffff), '<0x1 0xffffffff>'],
  ['u64 as two cells', cells.u64(0x3e000000000n), '<0x3e0 0x0>'],
  ['odd length bytes', cells.bytes(1, 2, 0xab), '[01 02 ab]'],
  ['a lone NUL', cells.bytes(0), '[00]'],
  ['empty string inside', ascii('a\0\0b\0'), '[61 00 00 62 00]'],
  ['empty string inside, cell length', ascii('ab\0\0'), '<0x61620000>'],
  ['not NUL-terminated text', ascii('abcd'), '<0x61626364>'],
  ['non-ASCII', ascii('caf\xe9\0'), '[63 61 66 e9 00]'],
  ['leading NUL', ascii('\0abc\0'), '[00 61 62 63 00]'],
];

for (const [name, value, expected] of CASES) {
  test(`formatPropertyValue: ${name}`, () => {
    assert.equal(formatPropertyValue(value), expected);
  });
}

function sample(): Fdt {
  const fdt = new Fdt();
  fdt.memoryReservations = [{ address: 0x30000000n, size: 0x1000n }];
  fdt.root.setProperty('#address-cells', cells.u32(2)).setProperty('ranges', cells.empty());
  const a = fdt.root.addChild('a@1');
  a.setProperty('compatible', cells.strings('x,y'));
  a.addChild('leaf').setProperty('reg', cells.u32(0));
  fdt.root.addChild('b');
  return fdt;
}

test('toDts: header, memreserve, properties before children, blank line before each child', () => {
  assert.equal(
    toDts(sample()),
    [
      '/dts-v1/;',
      '',
      '/memreserve/\t0x0000000030000000 0x0000000000001000;',
      '/ {',
      '\t#address-cells = <0x2>;',
      '\tranges;',
      '',
      '\ta@1 {',
      '\t\tcompatible = "x,y";',
      '',
      '\t\tleaf {',
      '\t\t\treg = <0x0>;',
      '\t\t};',
      '\t};',
      '',
      '\tb {',
      '\t};',
      '};',
      '',
    ].join('\n'),
  );
});

test('nodeToDts: one node and its subtree, the root as /', () => {
  const fdt = sample();
  assert.equal(
    nodeToDts(fdt.findNode('/a@1')!),
    'a@1 {\n\tcompatible = "x,y";\n\n\tleaf {\n\t\treg = <0x0>;\n\t};\n};\n',
  );
  assert.ok(nodeToDts(fdt.root).startsWith('/ {\n\t#address-cells'));
});

test('names dtc cannot read back are BAD_NAME', () => {
  for (const bad of ['has space', 'semi;colon', 'br{ace', 'quo"te', 'sla/sh', 'caf\xe9', '']) {
    const node = new Fdt();
    node.root.addChild(bad);
    assert.throws(
      () => toDts(node),
      (e: unknown) => e instanceof FdtError && e.kind === 'BAD_NAME',
      JSON.stringify(bad),
    );
    const property = new Fdt();
    property.root.setProperty(bad, cells.empty());
    assert.throws(
      () => toDts(property),
      (e: unknown) => e instanceof FdtError && e.kind === 'BAD_NAME',
      JSON.stringify(bad),
    );
  }
});

test('repeated property or sibling names are BAD_NAME (dtc would refuse them)', () => {
  const props = new Fdt();
  props.root.properties.push(
    { name: 'a', value: cells.empty() },
    { name: 'a', value: cells.u32(1) },
  );
  const nodes = new Fdt();
  nodes.root.addChild('n@1');
  nodes.root.addChild('n@1');
  for (const fdt of [props, nodes]) {
    assert.throws(
      () => toDts(fdt),
      (e: unknown) => e instanceof FdtError && e.kind === 'BAD_NAME' && /twice/.test(e.message),
    );
  }
});

test('names with every character dtc allows are written as they are', () => {
  const fdt = new Fdt();
  fdt.root.addChild('A-z_0.9,+@ff,1').setProperty('#a,b.c_d+e?f*g-h', cells.u32(1));
  assert.match(toDts(fdt), /\tA-z_0\.9,\+@ff,1 \{\n\t\t#a,b\.c_d\+e\?f\*g-h = <0x1>;/);
});
