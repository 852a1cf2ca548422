/**
 * Locations, property-based (fast-check) over random trees: a DTB location is the FDT_PROP
 * token of that property (name through the strings block, value bytes after it), or the node's
 * FDT_BEGIN_NODE; a DTS location from dtc's own annotations (-T -T) is where the property's name
 * (or the node's) stands in the file dtc read. And the semantic diff: a tree against itself is
 * empty, against one edit reports exactly that edit.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { hasDtc } from '../../../test/support/fdt/dtc.ts';
import { diffTrees, Fdt, type FdtNode, parseFdt, serializeFdt, toDts } from '../../fdt/index.ts';
import { blobLocator, dtsLocator, parseDtcAnnotations } from './locate.ts';

interface Spec {
  name: string;
  props: { name: string; value: Uint8Array }[];
  children: Spec[];
}

const NAME = 'abcxyz019,._+-';
const name = fc.string({ unit: fc.constantFrom(...NAME), minLength: 1, maxLength: 8 });
const value = fc.oneof(
  fc.uint8Array({ maxLength: 20 }),
  fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 4 }).map((vs) => {
    const out = new Uint8Array(vs.length * 4);
    vs.forEach((v, i) => {
      new DataView(out.buffer).setUint32(i * 4, v);
    });
    return out;
  }),
  fc
    .string({ maxLength: 6, unit: fc.constantFrom(...'ab "\\z') })
    .map((s) => new TextEncoder().encode(`${s}\0`)),
);
const tree = fc.letrec<{ node: Spec }>((tie) => ({
  node: fc.record({
    name,
    props: fc.uniqueArray(fc.record({ name: name.filter((n) => n !== 'phandle'), value }), {
      maxLength: 4,
      selector: (p) => p.name,
    }),
    children: fc.oneof(
      { depthSize: 'small' },
      fc.constant<Spec[]>([]),
      fc.uniqueArray(tie('node'), { maxLength: 3, selector: (n) => n.name }),
    ),
  }),
})).node;

function build(spec: Spec): Fdt {
  const fdt = new Fdt();
  const stack: [Spec, FdtNode][] = [[spec, fdt.root]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [s, n] = item;
    for (const p of s.props) n.properties.push({ name: p.name, value: p.value });
    for (const c of s.children) stack.push([c, n.addChild(c.name)]);
  }
  return fdt;
}

describe('DTB locations', () => {
  it('every property at its FDT_PROP token; a missing one at its node', () => {
    fc.assert(
      fc.property(tree, (spec) => {
        const blob = serializeFdt(build(spec));
        const fdt = parseFdt(blob, 't.dtb');
        const loc = blobLocator(blob, 't.dtb', fdt);
        const v = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
        const strings = v.getUint32(12);
        const cstr = (at: number) =>
          new TextDecoder().decode(blob.subarray(at, blob.indexOf(0, at)));
        for (const node of fdt.root.walk()) {
          for (const p of node.properties) {
            const at = loc.locate(node.path, p.name).offset!;
            assert.equal(v.getUint32(at), 3);
            assert.equal(cstr(strings + v.getUint32(at + 8)), p.name);
            assert.deepEqual(blob.subarray(at + 12, at + 12 + v.getUint32(at + 4)), p.value);
          }
          const missing = loc.locate(node.path, '#no-such-property').offset!;
          assert.equal(missing, node.offset);
          assert.equal(v.getUint32(missing), 1);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('DTS locations from dtc -T -T', {
  skip: hasDtc() ? false : 'dtc is not installed',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'locate-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const annotate = (file: string) =>
    spawnSync('dtc', ['-q', '-f', '-I', 'dts', '-O', 'dts', '-T', '-T', file], { encoding: 'utf8' })
      .stdout;

  it('each property where its name stands, each node where its name stands', () => {
    fc.assert(
      fc.property(tree, fc.nat(3), (spec, blank) => {
        const fdt = build(spec);
        const file = join(dir, 't.dts');
        const text = `${'\n'.repeat(blank)}${toDts(fdt)}`;
        writeFileSync(file, text);
        const lines = text.split('\n');
        const loc = dtsLocator(annotate(file), file, (_f, n) => lines[n - 1]);
        for (const node of fdt.root.walk()) {
          for (const p of node.properties) {
            const l = loc.locate(node.path, p.name);
            assert.equal(l.file, file);
            const at = lines[l.line! - 1]!.slice(l.column! - 1);
            assert.ok(
              at.startsWith(`${p.name} =`) || at.startsWith(`${p.name};`),
              `${p.name}: ${at}`,
            );
          }
          const l = loc.locate(node.path);
          const at = lines[l.line! - 1]!.slice(l.column! - 1);
          assert.ok(at.startsWith(`${node.parent ? node.name : '/'} {`), `${node.path}: ${at}`);
        }
      }),
      { numRuns: 25 },
    );
  });

  it('a node redefined by a label reference keeps its first place; its new property its own', () => {
    const inc = join(dir, 'base.dtsi');
    const top = join(dir, 'top.dts');
    writeFileSync(inc, '/ {\n\tgpu: gpu@0 {\n\t\treg = <0>;\n\t};\n};\n');
    writeFileSync(top, `/dts-v1/;\n/include/ "${inc}"\n&gpu {\n\tibm,npu = <1>;\n};\n`);
    const map = parseDtcAnnotations(annotate(top));
    assert.deepEqual(map.get('/gpu@0')?.node, {
      file: inc,
      line: 2,
      column: 13,
      endLine: 4,
      endColumn: 4,
    });
    assert.equal(map.get('/gpu@0')?.props.get('reg')?.file, inc);
    assert.deepEqual(map.get('/gpu@0')?.props.get('ibm,npu'), {
      file: top,
      line: 4,
      column: 2,
      endLine: 4,
      endColumn: 16,
    });
  });
});

describe('semantic diff', () => {
  const phandleProperties = new Set(['ref']);
  it('a tree against itself is empty; against one removed property, exactly that', () => {
    fc.assert(
      fc.property(tree, fc.nat(), (spec, pick) => {
        const a = build(spec);
        assert.deepEqual(diffTrees(a, build(spec), { phandleProperties }), []);
        const b = build(spec);
        const withProps = [...b.root.walk()].filter((n) => n.properties.length > 0);
        if (withProps.length === 0) return;
        const node = withProps[pick % withProps.length]!;
        const prop = node.properties[pick % node.properties.length]!;
        node.removeProperty(prop.name);
        const d = diffTrees(a, b, { phandleProperties });
        assert.deepEqual(
          d.map((e) => [e.kind, 'path' in e ? e.path : '', 'property' in e ? e.property : '']),
          [['property-removed', node.path, prop.name]],
        );
      }),
      { numRuns: 200 },
    );
  });
});
