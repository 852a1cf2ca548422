/**
 * Trees as deep and chains as long as the input makes them (100,000 levels): every walk of the
 * fdt layer (parse, serialize, DTS, paths, phandle chains, Linux's unflattening) finishes
 * without recursion, in linear space, and its errors stay one short line. Deep blobs are
 * packed token by token (test/support/fdt/deep.ts), not by the serializer under test.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { catAll, deepChainBlob } from '../../test/support/fdt/deep.ts';
import { hasDtc, runDtc } from '../../test/support/fdt/dtc.ts';
import { beginNode, END, pack } from '../../test/support/fdt/pack.ts';
import { DTS_MAX_INDENT, nodeToDts, toDts } from './dts.ts';
import { FdtError } from './errors.ts';
import { parseFdt } from './parse.ts';
import { followPhandleChain } from './phandle-chain.ts';
import { serializeFdt } from './serialize.ts';
import { cells, Fdt, type FdtNode } from './tree.ts';
import { FDT_MAX_DEPTH, unflattenLikeLinux } from './unflatten.ts';

const DEPTH = 100_000;
const DEEP = deepChainBlob({ depth: DEPTH });
/** Parsed once: the tests below only read it. */
const TREE = parseFdt(DEEP, 'deep.dtb');

/** The DTS text of `/ { c { c { … } } }` written out independently of dts.ts. */
function expectedChainDts(depth: number): string {
  const tabs = (d: number) => '\t'.repeat(Math.min(d, DTS_MAX_INDENT));
  const lines = ['/dts-v1/;', '', '/ {'];
  for (let d = 1; d <= depth; d++) lines.push(`${tabs(d)}c {`);
  for (let d = depth; d >= 1; d--) lines.push(`${tabs(d)}};`);
  lines.push('};', '');
  return lines.join('\n');
}

function deepest(fdt: Fdt): FdtNode {
  let node = fdt.root;
  while (node.children[0]) node = node.children[0];
  return node;
}

test('serialize at 100,000 levels: the hand-packed blob comes back byte for byte', () => {
  assert.deepEqual(serializeFdt(TREE), DEEP);
});

test('DTS at 100,000 levels: every node, indentation capped so the text stays linear', () => {
  const text = toDts(TREE);
  assert.equal(text, expectedChainDts(DEPTH));
  // Without the cap the text would be about 10^10 bytes.
  assert.ok(text.length < DEPTH * 2 * (DTS_MAX_INDENT + 4));
});

test('DTS past the indentation cap is still read back by dtc as the same tree', {
  skip: hasDtc() ? false : 'dtc is not installed',
}, () => {
  const depth = DTS_MAX_INDENT * 3;
  const blob = deepChainBlob({ depth });
  const text = toDts(parseFdt(blob));
  assert.equal(text, expectedChainDts(depth));
  const back = runDtc(text, 'dts', 'dtb');
  assert.ok(back.ok, back.stderr);
  assert.deepEqual(serializeFdt(parseFdt(back.output)), blob);
});

test('a node 50,000 levels down: found by its path, written as DTS with what is below it', () => {
  const node = TREE.findNode('/c'.repeat(DEPTH / 2));
  assert.equal(node?.children[0]?.children[0]?.name, 'c');
  const lines = nodeToDts(node!).split('\n');
  assert.equal(lines.length, DEPTH + 3); // DEPTH / 2 + 1 opening, as many closing, final ''
  assert.equal(lines[0], 'c {');
  assert.equal(lines[DEPTH / 2], `${'\t'.repeat(DTS_MAX_INDENT)}c {`);
  assert.equal(lines.at(-2), '};');
});

test('paths of deep nodes: exact, and short in messages', () => {
  const node = deepest(TREE);
  assert.equal(node.path, '/c'.repeat(DEPTH));
  assert.equal(node.shortPath, `${'/c'.repeat(30)}…${'/c'.repeat(30)} (depth ${DEPTH})`);
  assert.equal(TREE.root.children[0]!.shortPath, '/c');
});

test('a deep blob cut short: one short UNBALANCED line naming the open node', () => {
  // FDT_END after half the END_NODEs: the node at depth 50,000 is still open.
  const view = new DataView(DEEP.buffer, DEEP.byteOffset, DEEP.byteLength);
  const struct = DEEP.subarray(view.getUint32(8), view.getUint32(8) + view.getUint32(36));
  const opened = 8 + DEPTH * beginNode('c').length;
  const cut = pack({
    struct: catAll([struct.subarray(0, opened + (DEPTH / 2) * 4), END]),
    strings: new Uint8Array(0),
  });
  assert.throws(
    () => parseFdt(cut, 'cut.dtb'),
    (e: unknown) =>
      e instanceof FdtError &&
      e.kind === 'UNBALANCED' &&
      e.message.length < 300 &&
      e.message.endsWith(
        `expected FDT_END_NODE for ${'/c'.repeat(30)}…${'/c'.repeat(30)} (depth ${DEPTH / 2}), found FDT_END`,
      ),
  );
});

/** Nodes /n0 … /n<count-1>, each with phandle i + 1 and `next` pointing at the following one. */
function phandleChain(count: number): Fdt {
  const fdt = new Fdt(undefined, 'chain');
  // Values are views of one buffer: 200,000 separate small buffers cost more than the walk.
  const values = new Uint8Array(count * 4);
  const view = new DataView(values.buffer);
  for (let i = 0; i < count; i++) view.setUint32(i * 4, i + 1);
  const cell = (i: number) => values.subarray(i * 4, i * 4 + 4);
  for (let i = 0; i < count; i++) {
    const node = fdt.root.addChild(`n${i}`);
    node.properties.push({ name: 'phandle', value: cell(i) });
    if (i + 1 < count) node.properties.push({ name: 'next', value: cell(i + 1) });
  }
  return fdt;
}

test('a phandle chain of 100,000 nodes is followed to its end; closed into a loop, one short line', () => {
  const fdt = phandleChain(DEPTH);
  const first = fdt.root.children[0]!;
  const chain = followPhandleChain(fdt, first, 'next');
  assert.equal(chain.length, DEPTH);
  assert.equal(chain.at(-1)?.name, `n${DEPTH - 1}`);
  // The last node points back to the middle one.
  fdt.root.children[DEPTH - 1]!.setProperty('next', cells.u32(DEPTH / 2));
  assert.throws(
    () => followPhandleChain(fdt, first, 'next'),
    (e: unknown) =>
      e instanceof FdtError &&
      e.kind === 'PHANDLE_LOOP' &&
      e.message.length < 300 &&
      e.message.endsWith(
        `next chain to end, but /n0 -> … (${DEPTH - 2} more) -> /n${DEPTH - 1} -> /n${DEPTH / 2 - 1} loops`,
      ),
  );
});

test('unflattenLikeLinux: nodes at depth 64 and below are left out, as drivers/of/fdt.c does', () => {
  const fdt = TREE;
  const tree = unflattenLikeLinux(fdt);
  assert.equal(tree.skipped, DEPTH - (FDT_MAX_DEPTH - 1));
  assert.notEqual(tree.fdt, fdt);
  assert.equal(tree.fdt.source, 'deep.dtb');
  const kept = deepest(tree.fdt);
  assert.equal(kept.path, '/c'.repeat(FDT_MAX_DEPTH - 1));
  // The first skipped node, in the input, at depth 64 with its blob offset.
  let first = fdt.root;
  for (let d = 0; d < FDT_MAX_DEPTH; d++) first = first.children[0]!;
  assert.equal(tree.firstSkipped, first);
  assert.equal(kept.offset, first.parent?.offset);
  assert.deepEqual([...tree.fdt.root.walk()].length, FDT_MAX_DEPTH);
});

test('unflattenLikeLinux: a tree within the limit is the input itself', () => {
  const fdt = parseFdt(deepChainBlob({ depth: FDT_MAX_DEPTH - 1 }));
  const tree = unflattenLikeLinux(fdt);
  assert.equal(tree.fdt, fdt);
  assert.equal(tree.skipped, 0);
  assert.equal(tree.firstSkipped, undefined);
});

test('unflattenLikeLinux: the copy keeps order, properties and header; phandles into skipped nodes find nothing', () => {
  const fdt = new Fdt(undefined, 'mixed');
  fdt.memoryReservations = [{ address: 0x1000n, size: 0x2000n }];
  fdt.bootCpuId = 5;
  fdt.root.setProperty('model', cells.string('m'));
  const a = fdt.root.addChild('a');
  a.setProperty('phandle', cells.u32(7));
  let deep = fdt.root.addChild('b');
  for (let d = 2; d <= FDT_MAX_DEPTH + 1; d++) {
    deep = deep.addChild(`b${d}`).setProperty('phandle', cells.u32(1000 + d));
  }
  fdt.root.addChild('z').setProperty('x', cells.u32(1));
  const tree = unflattenLikeLinux(fdt);
  assert.equal(tree.skipped, 2);
  const copy = tree.fdt;
  assert.deepEqual(copy.memoryReservations, fdt.memoryReservations);
  assert.equal(copy.bootCpuId, 5);
  assert.deepEqual(
    copy.root.children.map((c) => c.name),
    ['a', 'b', 'z'],
  );
  assert.deepEqual(copy.root.properties, fdt.root.properties);
  assert.notEqual(copy.root.properties[0], fdt.root.properties[0]);
  assert.equal(copy.findByPhandle(7)?.path, '/a');
  assert.equal(copy.findByPhandle(1000 + FDT_MAX_DEPTH - 1)?.name, `b${FDT_MAX_DEPTH - 1}`);
  assert.equal(copy.findByPhandle(1000 + FDT_MAX_DEPTH), undefined);
  assert.equal(copy.findByPhandle(1000 + FDT_MAX_DEPTH + 1), undefined);
  assert.equal(fdt.findByPhandle(1000 + FDT_MAX_DEPTH)?.name, `b${FDT_MAX_DEPTH}`);
});
