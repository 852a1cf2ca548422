/**
 * parseFdt on hand-packed blobs: the tree it reads, and one malformed blob per FdtError code
 * with the exact offset reported (Devicetree Specification v0.3, chapter 5).
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { test } from 'node:test';
import {
  ascii,
  be32,
  beginNode,
  cat,
  END,
  END_NODE,
  NOP,
  pack,
  prop,
} from '../../test/support/fdt/pack.ts';
import { GOOD, MEMRSV, STRINGS, STRUCT } from '../../test/support/fdt/reference-blob.ts';
import { FdtError, type FdtErrorCode } from './errors.ts';
import { parseFdt } from './parse.ts';
import { followPhandleChain } from './phandle-chain.ts';
import { serializeFdt } from './serialize.ts';
import { cells, Fdt, requireNode } from './tree.ts';

test('reads a hand-packed v17 blob: tree, offsets, memrsv, boot cpu', () => {
  const fdt = parseFdt(GOOD, 'good.dtb');
  assert.equal(fdt.version, 17);
  assert.equal(fdt.bootCpuId, 3);
  assert.equal(fdt.source, 'good.dtb');
  assert.deepEqual(fdt.memoryReservations, [{ address: 0x1000n, size: 0x2000n }]);
  assert.equal(fdt.root.name, '');
  assert.equal(fdt.root.offset, 72);
  assert.deepEqual(fdt.root.properties, [{ name: 'compatible', value: ascii('a\0') }]);
  const child = requireNode(fdt, '/c@1');
  assert.equal(child.offset, 96);
  assert.equal(child.path, '/c@1');
  assert.deepEqual(child.properties, [{ name: 'reg', value: new Uint8Array(0) }]);
  assert.equal(fdt.findNode('/c'), child);
});

test('values from a Buffer are plain Uint8Array copies, not views of the blob', () => {
  const buffer = Buffer.from(GOOD);
  const fdt = parseFdt(buffer);
  const value = fdt.root.getProperty('compatible')!.value;
  assert.equal(Object.getPrototypeOf(value), Uint8Array.prototype);
  buffer.fill(0);
  assert.deepEqual(value, ascii('a\0'));
});

test('reads a version 16 blob (36-byte header, no size_dt_struct)', () => {
  const blob = pack({ struct: STRUCT, strings: STRINGS, memrsv: MEMRSV, version: 16 });
  const fdt = parseFdt(blob);
  assert.equal(fdt.version, 16);
  assert.equal(fdt.root.children[0]?.name, 'c@1');
});

test('skips NOP tokens anywhere in the structure block', () => {
  const struct = cat(NOP, beginNode(''), NOP, beginNode('n'), NOP, END_NODE, NOP, END_NODE, END);
  const fdt = parseFdt(pack({ struct, strings: STRINGS }));
  assert.equal(fdt.root.offset, 60); // after the NOP at 56
  assert.equal(fdt.findNode('/n')?.name, 'n');
});

test('accepts a newer version that is compatible with 16', () => {
  const fdt = parseFdt(pack({ struct: STRUCT, strings: STRINGS, patch: { 20: 18 } }));
  assert.equal(fdt.version, 18);
});

/** Struct-block variants: the struct starts at 56 without memrsv entries. */
const S = 56;
function withStruct(struct: Uint8Array, strings = STRINGS): Uint8Array {
  return pack({ struct, strings });
}

const MALFORMED: readonly { name: string; blob: Uint8Array; code: FdtErrorCode; offset: number }[] =
  [
    { name: 'empty buffer', blob: new Uint8Array(0), code: 'TRUNCATED', offset: 0 },
    { name: 'shorter than the magic', blob: GOOD.subarray(0, 3), code: 'TRUNCATED', offset: 3 },
    {
      name: 'bad magic',
      blob: pack({ struct: STRUCT, strings: STRINGS, patch: { 0: 0xedfe0dd0 } }),
      code: 'BAD_MAGIC',
      offset: 0,
    },
    { name: 'no version field', blob: GOOD.subarray(0, 26), code: 'TRUNCATED', offset: 26 },
    { name: 'header cut short', blob: GOOD.subarray(0, 30), code: 'TRUNCATED', offset: 30 },
    { name: 'totalsize past buffer', blob: GOOD.subarray(0, 100), code: 'TRUNCATED', offset: 100 },
    {
      name: 'version 15',
      blob: pack({ struct: STRUCT, strings: STRINGS, patch: { 20: 15 } }),
      code: 'BAD_VERSION',
      offset: 20,
    },
    {
      name: 'last_comp_version 18',
      blob: pack({ struct: STRUCT, strings: STRINGS, patch: { 20: 18, 24: 18 } }),
      code: 'BAD_VERSION',
      offset: 24,
    },
    {
      name: 'totalsize smaller than the header',
      blob: pack({ struct: STRUCT, strings: STRINGS, patch: { 4: 20 } }),
      code: 'BAD_HEADER',
      offset: 4,
    },
    {
      name: 'struct overlapping the header',
      blob: pack({ struct: STRUCT, strings: STRINGS, patch: { 8: 8 } }),
      code: 'OUT_OF_BOUNDS',
      offset: 8,
    },
    {
      name: 'strings offset past totalsize',
      blob: pack({ struct: STRUCT, strings: STRINGS, patch: { 12: 0x1000 } }),
      code: 'OUT_OF_BOUNDS',
      offset: 12,
    },
    {
      name: 'memrsv offset inside the header',
      blob: pack({ struct: STRUCT, strings: STRINGS, patch: { 16: 32 } }),
      code: 'OUT_OF_BOUNDS',
      offset: 16,
    },
    {
      name: 'size_dt_strings past totalsize',
      blob: pack({ struct: STRUCT, strings: STRINGS, patch: { 32: 1000 } }),
      code: 'OUT_OF_BOUNDS',
      offset: 32,
    },
    {
      name: 'size_dt_struct past totalsize',
      blob: pack({ struct: STRUCT, strings: STRINGS, patch: { 36: 1000 } }),
      code: 'OUT_OF_BOUNDS',
      offset: 36,
    },
    {
      name: 'memrsv misaligned',
      blob: pack({ struct: STRUCT, strings: STRINGS, patch: { 16: 44 } }),
      code: 'MISALIGNED',
      offset: 16,
    },
    {
      name: 'struct misaligned',
      blob: pack({ struct: STRUCT, strings: STRINGS, patch: { 8: 58 } }),
      code: 'MISALIGNED',
      offset: 8,
    },
    {
      name: 'memrsv without its zero entry',
      blob: pack({ struct: STRUCT, strings: STRINGS, patch: { 16: 112 } }),
      code: 'TRUNCATED',
      offset: 112,
    },
    {
      name: 'unknown token',
      blob: withStruct(cat(beginNode(''), be32(5), END_NODE, END)),
      code: 'BAD_TOKEN',
      offset: S + 8,
    },
    {
      name: 'unterminated node name',
      blob: withStruct(cat(be32(1), ascii('abcd'))),
      code: 'UNTERMINATED_STRING',
      offset: S + 4,
    },
    {
      name: 'unterminated property name',
      blob: withStruct(cat(beginNode(''), prop(0, ascii('x')), END_NODE, END), ascii('compatible')),
      code: 'UNTERMINATED_STRING',
      offset: S + 32, // the strings block
    },
    {
      name: 'nameoff past the strings block',
      blob: withStruct(cat(beginNode(''), prop(15, ascii('x')), END_NODE, END)),
      code: 'OUT_OF_BOUNDS',
      offset: S + 16,
    },
    {
      name: 'property value past the struct block',
      blob: withStruct(cat(beginNode(''), be32(3, 1000, 0), END_NODE, END)),
      code: 'OUT_OF_BOUNDS',
      offset: S + 12,
    },
    {
      name: 'property header cut by the struct end',
      blob: withStruct(cat(beginNode(''), be32(3))),
      code: 'TRUNCATED',
      offset: S + 12,
    },
    {
      name: 'struct ends without FDT_END',
      blob: withStruct(cat(beginNode(''), END_NODE)),
      code: 'TRUNCATED',
      offset: S + 12,
    },
    {
      name: 'v16 blob ends without FDT_END',
      blob: pack({ struct: cat(beginNode(''), END_NODE), strings: new Uint8Array(0), version: 16 }),
      code: 'TRUNCATED',
      offset: S + 12,
    },
    {
      name: 'END_NODE before BEGIN_NODE',
      blob: withStruct(cat(END_NODE, END)),
      code: 'UNBALANCED',
      offset: S,
    },
    {
      name: 'property outside any node',
      blob: withStruct(cat(prop(0, ascii('x')), END)),
      code: 'UNBALANCED',
      offset: S,
    },
    { name: 'no root node', blob: withStruct(END), code: 'UNBALANCED', offset: S },
    {
      name: 'missing END_NODE',
      blob: withStruct(cat(beginNode(''), beginNode('a'), END_NODE, END)),
      code: 'UNBALANCED',
      offset: S + 20,
    },
    {
      name: 'second root after END_NODE',
      blob: withStruct(cat(beginNode(''), END_NODE, beginNode(''), END_NODE, END)),
      code: 'UNBALANCED',
      offset: S + 12,
    },
    {
      name: 'data after FDT_END',
      blob: withStruct(cat(beginNode(''), END_NODE, END, NOP)),
      code: 'UNBALANCED',
      offset: S + 16,
    },
    {
      name: 'root not named ""',
      blob: withStruct(cat(beginNode('x'), END_NODE, END)),
      code: 'BAD_NAME',
      offset: S,
    },
  ];

for (const c of MALFORMED) {
  test(`malformed: ${c.name} → ${c.code} at 0x${c.offset.toString(16)}`, () => {
    assert.throws(
      () => parseFdt(c.blob, 'bad.dtb'),
      (e: unknown) => {
        assert.ok(e instanceof FdtError, `not an FdtError: ${String(e)}`);
        assert.equal(e.code, 'DT_PARSE', e.message);
        assert.equal(e.kind, c.code, e.message);
        assert.equal(e.offset, c.offset, e.message);
        assert.ok(e.expected.length > 0);
        assert.match(e.message, new RegExp(`^bad\\.dtb: offset 0x${c.offset.toString(16)}: `));
        return true;
      },
    );
  });
}

test('every parser error code is covered by the malformed table', () => {
  const parserCodes: FdtErrorCode[] = [
    'BAD_MAGIC',
    'TRUNCATED',
    'BAD_HEADER',
    'OUT_OF_BOUNDS',
    'MISALIGNED',
    'BAD_TOKEN',
    'UNTERMINATED_STRING',
    'UNBALANCED',
    'BAD_VERSION',
    'BAD_NAME',
  ];
  assert.deepEqual(new Set(MALFORMED.map((c) => c.code)), new Set(parserCodes));
});

function loopTree(): Fdt {
  const fdt = new Fdt(undefined, 'loop');
  const a = fdt.root.addChild('a').setProperty('phandle', cells.u32(1));
  const b = fdt.root.addChild('b').setProperty('phandle', cells.u32(2));
  fdt.root
    .addChild('c')
    .setProperty('phandle', cells.u32(3))
    .setProperty('#interrupt-cells', cells.u32(1));
  a.setProperty('interrupt-parent', cells.u32(2));
  b.setProperty('interrupt-parent', cells.u32(1));
  return fdt;
}

test('followPhandleChain: a loop is PHANDLE_LOOP at the revisited node, with its blob offset', () => {
  // Written and read back so that node offsets are real: root at 56, /a right after it at 64.
  const fdt = parseFdt(serializeFdt(loopTree()), 'loop.dtb');
  const a = requireNode(fdt, '/a');
  assert.equal(a.offset, 64);
  assert.throws(
    () => followPhandleChain(fdt, a, 'interrupt-parent'),
    (e: unknown) =>
      e instanceof FdtError &&
      e.kind === 'PHANDLE_LOOP' &&
      e.offset === 64 &&
      e.message.startsWith('loop.dtb: offset 0x40: PHANDLE_LOOP') &&
      /\/a -> \/b -> \/a/.test(e.message),
  );
  a.setProperty('interrupt-parent', cells.u32(1)); // points at itself
  assert.throws(
    () => followPhandleChain(fdt, a, 'interrupt-parent'),
    (e: unknown) => e instanceof FdtError && e.kind === 'PHANDLE_LOOP' && e.offset === 64,
  );
});

test('followPhandleChain: ends at a node without the property, a dangling phandle, or stopAt', () => {
  const fdt = loopTree();
  const a = requireNode(fdt, '/a');
  const b = requireNode(fdt, '/b');
  const c = requireNode(fdt, '/c');
  b.setProperty('interrupt-parent', cells.u32(3));
  assert.deepEqual(followPhandleChain(fdt, a, 'interrupt-parent'), [a, b, c]);
  assert.deepEqual(followPhandleChain(fdt, a, 'interrupt-parent', { stopAt: (n) => n === b }), [
    a,
    b,
  ]);
  b.setProperty('interrupt-parent', cells.u32(99));
  assert.deepEqual(followPhandleChain(fdt, a, 'interrupt-parent'), [a, b]);
  assert.deepEqual(followPhandleChain(fdt, c, 'interrupt-parent'), [c]);
});

test('requireNode: a missing path is BAD_PATH', () => {
  assert.throws(
    () => requireNode(loopTree(), '/nowhere'),
    (e: unknown) => e instanceof FdtError && e.kind === 'BAD_PATH' && e.offset === 0,
  );
});

test('deep nesting (100k levels) parses without recursion', () => {
  const depth = 100_000;
  // Packed in place: spreading 200k parts into cat() would itself overflow the stack.
  const level = beginNode('n');
  const struct = new Uint8Array(8 + depth * (level.length + 4) + 8);
  struct.set(beginNode(''), 0);
  for (let i = 0; i < depth; i++) struct.set(level, 8 + i * level.length);
  const closeAt = 8 + depth * level.length;
  for (let i = 0; i <= depth; i++) struct.set(END_NODE, closeAt + i * 4);
  struct.set(END, closeAt + (depth + 1) * 4);
  const fdt = parseFdt(pack({ struct, strings: new Uint8Array(0) }));
  let deepest = fdt.root;
  let levels = 0;
  for (const n of fdt.root.walk()) {
    deepest = n;
    levels++;
  }
  assert.equal(levels, depth + 1);
  assert.equal(deepest.path.length, depth * 2);
  assert.equal(fdt.findByPhandle(1), undefined);
});
