/**
 * serializeFdt against bytes packed by hand (test/support/fdt/pack.ts), not by the serializer: layout,
 * alignment, string deduplication, the memory reservation terminator, name errors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ascii,
  be32,
  beginNode,
  cat,
  END,
  END_NODE,
  pack,
  prop,
} from '../../test/support/fdt/pack.ts';
import { GOOD } from '../../test/support/fdt/reference-blob.ts';
import { FdtError } from './errors.ts';
import { parseFdt } from './parse.ts';
import { serializeFdt } from './serialize.ts';
import { cells, Fdt } from './tree.ts';

test('writes exactly the hand-packed reference blob', () => {
  const fdt = new Fdt();
  fdt.bootCpuId = 3;
  fdt.memoryReservations = [{ address: 0x1000n, size: 0x2000n }];
  fdt.root.setProperty('compatible', cells.string('a'));
  fdt.root.addChild('c@1').setProperty('reg', cells.empty());
  assert.deepEqual(serializeFdt(fdt), GOOD);
});

test('re-serializing a parsed blob gives the same bytes', () => {
  assert.deepEqual(serializeFdt(parseFdt(GOOD)), GOOD);
});

test('header: version 17, last_comp_version 16, memrsv at 40, blocks back to back', () => {
  const out = serializeFdt(new Fdt());
  const view = new DataView(out.buffer);
  const words = Array.from({ length: 10 }, (_, i) => view.getUint32(i * 4));
  // magic, totalsize, struct, strings, memrsv, version, last_comp, boot cpu, strings, struct
  assert.deepEqual(words, [0xd00dfeed, 72, 56, 72, 40, 17, 16, 0, 0, 16]);
  assert.deepEqual(out.subarray(40, 56), new Uint8Array(16));
  assert.deepEqual(out.subarray(56), cat(beginNode(''), END_NODE, END, new Uint8Array(0)));
});

test('strings are deduplicated in order of first use; values padded to 4 bytes', () => {
  const fdt = new Fdt();
  fdt.root.setProperty('reg', cells.bytes(1, 2, 3, 4, 5));
  const a = fdt.root.addChild('a');
  a.setProperty('status', cells.string('okay')).setProperty('reg', cells.u32(7));
  fdt.root.addChild('b').setProperty('status', cells.string('disabled'));
  const strings = ascii('reg\0status\0');
  const struct = cat(
    beginNode(''),
    prop(0, cells.bytes(1, 2, 3, 4, 5)),
    beginNode('a'),
    prop(4, ascii('okay\0')),
    prop(0, be32(7)),
    END_NODE,
    beginNode('b'),
    prop(4, ascii('disabled\0')),
    END_NODE,
    END_NODE,
    END,
  );
  assert.deepEqual(serializeFdt(fdt), pack({ struct, strings }));
});

test('several reservations, each 16 bytes, then the zero entry; an all-zero entry is left out', () => {
  const fdt = new Fdt();
  fdt.memoryReservations = [
    { address: 0xffff_ffff_ffff_f000n, size: 0x1000n },
    { address: 0n, size: 0n },
    { address: 0n, size: 0x10n },
  ];
  const expected = pack({
    struct: cat(beginNode(''), END_NODE, END),
    strings: new Uint8Array(0),
    memrsv: [
      [0xffff_ffff_ffff_f000n, 0x1000n],
      [0n, 0x10n],
    ],
  });
  assert.deepEqual(serializeFdt(fdt), expected);
});

test('a name with a NUL or a character above 0xff is BAD_NAME', () => {
  for (const bad of ['a\0b', 'caf\u20ac']) {
    const node = new Fdt();
    node.root.addChild(bad);
    assert.throws(
      () => serializeFdt(node),
      (e: unknown) => e instanceof FdtError && e.kind === 'BAD_NAME',
    );
    const property = new Fdt();
    property.root.setProperty(bad, cells.empty());
    assert.throws(
      () => serializeFdt(property),
      (e: unknown) => e instanceof FdtError && e.kind === 'BAD_NAME',
    );
  }
});

test('a 100k-deep tree serializes and parses back without recursion', () => {
  const fdt = new Fdt();
  let node = fdt.root;
  for (let i = 0; i < 100_000; i++) node = node.addChild('n');
  node.setProperty('leaf', cells.u32(1));
  const back = parseFdt(serializeFdt(fdt));
  let count = 0;
  let last = back.root;
  for (const n of back.root.walk()) {
    count++;
    last = n;
  }
  assert.equal(count, 100_001);
  assert.deepEqual(last.getProperty('leaf')?.value, cells.u32(1));
});
