/**
 * Property values as fdtget shows them, against dtc's own fdtget when it is installed (Debian's
 * device-tree-compiler): every property of a small platform-like tree and of a node of random
 * values (strings, cells past 2^31, odd lengths, empty), for each `-t` type, give fdtget's
 * bytes; where fdtget refuses a value, so do we. Without fdtget, the decoding is checked on
 * values written down from fdtget's output.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FdtPropertyError } from './errors.ts';
import {
  decodeFdtgetValue,
  FDTGET_GUESS,
  type FdtgetType,
  fdtgetJson,
  fdtgetText,
  nodeToJson,
  parseFdtgetType,
} from './fdtget.ts';
import { serializeFdt } from './serialize.ts';
import { cells, Fdt, type FdtNode } from './tree.ts';

const bytes = (...b: number[]) => new Uint8Array(b);

/** A small tree of the value kinds a platform tree has: string lists, cells, 64-bit cells, empty. */
function sampleTree(): Fdt {
  const fdt = new Fdt();
  fdt.root.setProperty('compatible', cells.strings('ibm,witherspoon', 'ibm,powernv'));
  fdt.root.setProperty('#address-cells', cells.u32(2));
  const phb = fdt.root.addChild('pciex@600c3c0000000');
  phb.setProperty('reg', cells.u64(0x600c3c0000000n, 0x1000n));
  phb.setProperty('ibm,opal-phbid', cells.u32(0, 0x80000000, 0xffffffff));
  const gpu = phb.addChild('pci@0').addChild('3d-controller@0');
  gpu.setProperty('vendor-id', cells.u32(0x10de));
  gpu.setProperty('ibm,loc-code', cells.string('GPU0'));
  gpu.setProperty('ibm,npu', cells.u32(0x10, 0x11, 0x12));
  gpu.setProperty('dma-coherent', cells.empty());
  return fdt;
}
const show = (value: Uint8Array, type?: string) => {
  const t = type === undefined ? FDTGET_GUESS : parseFdtgetType(type);
  return fdtgetText(decodeFdtgetValue('/n', 'p', value, t), t);
};

describe('fdtget values', () => {
  it('shows what fdtget 1.6.1 shows', () => {
    const locCode = bytes(0x47, 0x50, 0x55, 0x30, 0); // "GPU0"
    assert.equal(show(locCode), 'GPU0');
    assert.equal(show(locCode, 'x'), '47 50 55 30 0');
    assert.equal(show(bytes(0, 0, 0x10, 0xde, 0xff, 0xff, 0xff, 0xfe)), '4318 -2');
    assert.equal(show(bytes(0xff, 0xff, 0xff, 0xfe), 'u'), '4294967294');
    assert.equal(show(bytes(0x12, 0x34, 0x56, 0x78), 'hx'), '1234 5678');
    assert.equal(show(bytes(0x61, 0, 0x62, 0)), 'a b');
    assert.equal(show(bytes()), '');
    assert.throws(
      () => show(locCode, 'hx'),
      (e: unknown) => e instanceof FdtPropertyError && e.errno === 'EOVERFLOW',
    );
    assert.throws(() => show(bytes(0x61), 's'), /EILSEQ: \/n: p: Unterminated string/);
  });

  it('takes the -t types fdtget takes, and names a wrong one', () => {
    assert.deepEqual(parseFdtgetType('hhx'), { type: 'x', size: 1 });
    assert.deepEqual(parseFdtgetType('li'), { type: 'i', size: 4 });
    assert.deepEqual(parseFdtgetType('s'), { type: 's', size: -1 });
    for (const bad of ['b', 'bs', 'q', 'xx', ''])
      assert.throws(() => parseFdtgetType(bad), new RegExp(`not '${bad}'`));
  });

  it('gives JSON strings, numbers for -t i|u, hex strings otherwise', () => {
    const cells = bytes(0, 0, 0x10, 0xde, 0xff, 0xff, 0xff, 0xff);
    const json = (t: FdtgetType) => fdtgetJson(decodeFdtgetValue('/n', 'p', cells, t), t);
    assert.deepEqual(json(FDTGET_GUESS), ['0x10de', '0xffffffff']);
    assert.deepEqual(json(parseFdtgetType('i')), [4318, -1]);
    assert.deepEqual(json(parseFdtgetType('u')), [4318, 4294967295]);
  });

  it('writes a tree nested deeper than the stack as JSON', () => {
    const fdt = sampleTree();
    let node: FdtNode = fdt.root;
    for (let i = 0; i < 20_000; i++) node = node.addChild(`n${i}`);
    const text = nodeToJson(fdt.root);
    assert.ok(text.endsWith(']}]}'));
    assert.equal(text.match(/"name":"n[0-9]+"/g)?.length, 20_000);
  });
});

const hasFdtget = spawnSync('fdtget', ['-V']).status === 0;
const TYPES = [undefined, 's', 'i', 'u', 'x', 'bx', 'hhu', 'hx', 'hi', 'lx', 'lu'];

/** Every (node path, property) of a tree, iteratively. */
function pairs(fdt: Fdt): [string, string][] {
  const out: [string, string][] = [];
  const stack: FdtNode[] = [fdt.root];
  while (stack.length > 0) {
    const node = stack.pop() as FdtNode;
    for (const p of node.properties) out.push([node.path, p.name]);
    stack.push(...node.children);
  }
  return out;
}

describe('fdtget values against dtc fdtget', {
  skip: hasFdtget ? false : 'fdtget not installed (apt-get install device-tree-compiler)',
}, () => {
  it("gives fdtget's bytes, and refuses what it refuses, for every -t type", () => {
    const seed = Date.now() % 2 ** 31;
    const fdt = sampleTree();
    const random = fdt.root.addChild('random');
    const printable = fc
      .stringMatching(/^[ -~]{1,8}$/)
      .map((s) => new Uint8Array(Buffer.from(`${s}\0`, 'latin1')));
    const values = fc.sample(fc.oneof(fc.uint8Array({ maxLength: 12 }), printable), {
      numRuns: 48,
      seed,
    });
    for (const [i, v] of values.entries()) random.setProperty(`p${i}`, v);
    const dir = mkdtempSync(join(tmpdir(), 'vn-fdtget-'));
    try {
      const dtb = join(dir, 'tree.dtb');
      writeFileSync(dtb, serializeFdt(fdt));
      const all = pairs(fdt);
      for (const type of TYPES) {
        const t = type === undefined ? FDTGET_GUESS : parseFdtgetType(type);
        const typeArgs = type === undefined ? [] : ['-t', type];
        const ok: [string, string][] = [];
        const refused: [string, string][] = [];
        for (const [path, name] of all) {
          const node = fdt.findNode(path) as FdtNode;
          try {
            decodeFdtgetValue(path, name, node.getProperty(name)?.value ?? bytes(), t);
            ok.push([path, name]);
          } catch {
            refused.push([path, name]);
          }
        }
        const r = spawnSync('fdtget', [...typeArgs, dtb, ...ok.flat()]);
        assert.equal(r.status, 0, `seed ${seed}, -t ${type}: fdtget refused: ${r.stderr}`);
        const ours = ok.map(([path, name]) => {
          const value = (fdt.findNode(path) as FdtNode).getProperty(name)?.value ?? bytes();
          return `${fdtgetText(decodeFdtgetValue(path, name, value, t), t)}\n`;
        });
        assert.deepEqual(
          r.stdout,
          Buffer.from(ours.join(''), 'latin1'),
          `seed ${seed}, -t ${type}`,
        );
        for (const [path, name] of refused.slice(0, 8)) {
          const one = spawnSync('fdtget', [...typeArgs, dtb, path, name]);
          assert.notEqual(one.status, 0, `seed ${seed}, -t ${type}: fdtget shows ${path} ${name}`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
