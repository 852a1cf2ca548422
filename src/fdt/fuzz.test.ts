/**
 * Property-based tests (fast-check): random trees survive serialize → parse unchanged and
 * toDts → dtc unchanged; truncated, mutated and random blobs give an FdtError or a tree, never
 * another exception, and always terminate.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { decompile, dtc, hasDtc, runDtcAll } from '../../test/support/fdt/dtc.ts';
import { toDts } from './dts.ts';
import { FdtError } from './errors.ts';
import { parseFdt } from './parse.ts';
import { serializeFdt } from './serialize.ts';
import { Fdt, type FdtNode } from './tree.ts';

interface NodeSpec {
  name: string;
  props: { name: string; value: Uint8Array }[];
  children: readonly NodeSpec[];
}

/** A plain, comparable picture of a tree (recursive: these trees are small). */
interface Plain {
  name: string;
  props: [string, number[]][];
  children: Plain[];
}

function plain(node: FdtNode): Plain {
  return {
    name: node.name,
    props: node.properties.map((p) => [p.name, Array.from(p.value)]),
    children: node.children.map(plain),
  };
}

function build(spec: NodeSpec, node: FdtNode): void {
  for (const p of spec.props) node.properties.push({ name: p.name, value: p.value });
  for (const c of spec.children) build(c, node.addChild(c.name));
}

function chars(alphabet: string, maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...alphabet), minLength: 1, maxLength });
}

/** Any name a blob can hold: bytes 1..255. */
const anyName = fc.string({
  unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 12,
});

const value = fc.oneof(
  fc.uint8Array({ maxLength: 24 }),
  fc
    .array(fc.string({ maxLength: 6, unit: fc.constantFrom(...'ab,\t"\\ z') }), {
      minLength: 1,
      maxLength: 3,
    })
    .map((ss) => new TextEncoder().encode(ss.map((s) => `${s}\0`).join(''))),
  fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 4 }).map((vs) => {
    const out = new Uint8Array(vs.length * 4);
    vs.forEach((v, i) => {
      new DataView(out.buffer).setUint32(i * 4, v);
    });
    return out;
  }),
);

function treeOf(nodeName: fc.Arbitrary<string>, propName: fc.Arbitrary<string>) {
  const props = fc.uniqueArray(fc.record({ name: propName, value }), {
    maxLength: 4,
    selector: (p) => p.name,
  });
  return fc.letrec<{ node: NodeSpec }>((tie) => ({
    node: fc.record({
      name: nodeName,
      props,
      children: fc.oneof(
        { depthSize: 'small' },
        fc.constant<NodeSpec[]>([]),
        fc.uniqueArray(tie('node'), { maxLength: 3, selector: (n) => n.name }),
      ),
    }),
  })).node;
}

const reservation = fc
  .record({ address: fc.bigInt(0n, 2n ** 64n - 1n), size: fc.bigInt(0n, 2n ** 64n - 1n) })
  .filter((r) => r.address !== 0n || r.size !== 0n)
  .map((r) => ({ address: r.address, size: r.size })); // fast-check records have no prototype

function fdtOf(spec: NodeSpec, reservations: { address: bigint; size: bigint }[], cpu = 0): Fdt {
  const fdt = new Fdt();
  build({ ...spec, name: '' }, fdt.root);
  fdt.memoryReservations = reservations;
  fdt.bootCpuId = cpu;
  return fdt;
}

test('random trees: serialize → parse is the identity (names, props, values, memrsv)', () => {
  fc.assert(
    fc.property(
      treeOf(anyName, anyName),
      fc.array(reservation, { maxLength: 4 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      (spec, reservations, cpu) => {
        const fdt = fdtOf(spec, reservations, cpu);
        const blob = serializeFdt(fdt);
        const back = parseFdt(blob);
        assert.deepEqual(plain(back.root), plain(fdt.root));
        assert.deepEqual(back.memoryReservations, reservations);
        assert.equal(back.bootCpuId, cpu);
        assert.equal(back.version, 17);
        assert.deepEqual(serializeFdt(back), blob);
      },
    ),
    { numRuns: 300 },
  );
});

const skip = hasDtc() ? false : 'dtc (device-tree-compiler) is not installed';

test('random trees with DTS names: toDts → dtc gives what serializeFdt gives', { skip }, () => {
  // Every character dtc's lexer accepts in a name (PROPNODECHAR); -f lets dtc's semantic
  // checks (e.g. '#' in node names) pass, while syntax errors still fail.
  const lexerChars = 'abcxyzABZ0189,._+*#?@-';
  const nodeName = chars(lexerChars, 8);
  const propName = chars(lexerChars, 8).filter((n) => n !== 'phandle' && n !== 'linux,phandle');
  fc.assert(
    fc.property(treeOf(nodeName, propName), fc.array(reservation, { maxLength: 2 }), (s, r) => {
      const fdt = fdtOf(s, r);
      // The three dtc runs in one shell (runDtcAll): toDts compiled, then it and our blob
      // decompiled, forced.
      const [viaDts, ours, theirs] = runDtcAll([
        { input: toDts(fdt), from: 'dts', to: 'dtb', extra: ['-f'] },
        { input: { outputOf: 0 }, from: 'dtb', to: 'dts', extra: ['-f'] },
        { input: serializeFdt(fdt), from: 'dtb', to: 'dts', extra: ['-f'] },
      ]);
      assert.ok(viaDts?.ok, viaDts?.stderr);
      assert.ok(ours?.ok, ours?.stderr);
      assert.ok(theirs?.ok, theirs?.stderr);
      const text = (b: Uint8Array) => new TextDecoder().decode(b);
      assert.equal(text(ours.output), text(theirs.output));
    }),
    { numRuns: 40 },
  );
});

/** Parses, and when that succeeds writes the tree back; anything but FdtError fails the test. */
function parsesOrFdtError(bytes: Uint8Array): void {
  let fdt: Fdt;
  try {
    fdt = parseFdt(bytes);
  } catch (e) {
    if (e instanceof FdtError) return;
    throw e;
  }
  const again = parseFdt(serializeFdt(fdt));
  assert.deepEqual(plain(again.root), plain(fdt.root));
  try {
    toDts(fdt);
  } catch (e) {
    if (!(e instanceof FdtError)) throw e;
  }
}

// A plain copy: Buffer#slice would share memory, and the tests below mutate their copies.
const REAL = new Uint8Array(
  dtc(
    readFileSync(new URL('../../test/fixtures/fdt/witherspoon-npu.dts', import.meta.url), 'utf8'),
    'dts',
    'dtb',
  ),
);

test('a real blob truncated at every length throws FdtError', { skip }, () => {
  for (let length = 0; length < REAL.length; length++) {
    assert.throws(
      () => parseFdt(REAL.subarray(0, length)),
      (e: unknown) => e instanceof FdtError && e.kind === 'TRUNCATED',
    );
    // Same cut with totalsize claiming it: the block checks and the walkers must catch it.
    const cut = REAL.slice(0, length);
    if (length >= 8) new DataView(cut.buffer).setUint32(4, length);
    parsesOrFdtError(cut);
  }
});

test('a real blob with its structure block cut at every 4 bytes throws FdtError', { skip }, () => {
  const view = new DataView(REAL.buffer, REAL.byteOffset);
  const structSize = view.getUint32(36);
  for (let size = 0; size < structSize; size += 4) {
    const cut = REAL.slice();
    new DataView(cut.buffer).setUint32(36, size);
    assert.throws(
      () => parseFdt(cut),
      (e: unknown) => e instanceof FdtError,
    );
  }
});

test('byte mutations of a real blob: a tree or an FdtError', { skip }, () => {
  const mutation = fc.array(
    fc.record({ at: fc.nat(REAL.length - 1), byte: fc.integer({ min: 0, max: 255 }) }),
    { minLength: 1, maxLength: 8 },
  );
  fc.assert(
    fc.property(mutation, (changes) => {
      const bytes = REAL.slice();
      for (const c of changes) bytes[c.at] = c.byte;
      parsesOrFdtError(bytes);
    }),
    { numRuns: 1500 },
  );
});

test('random bytes, bare or behind a plausible header: a tree or an FdtError', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), parsesOrFdtError), { numRuns: 500 });
  const header = fc.record({
    version: fc.constantFrom(15, 16, 17, 18),
    struct: fc.integer({ min: 0, max: 120 }),
    strings: fc.integer({ min: 0, max: 120 }),
    memrsv: fc.constantFrom(0, 40, 41, 48),
    stringsSize: fc.integer({ min: 0, max: 64 }),
    structSize: fc.integer({ min: 0, max: 120 }),
    body: fc.uint8Array({ minLength: 0, maxLength: 160 }),
    tokens: fc.array(fc.constantFrom(1, 2, 3, 4, 9, 0, 5), { maxLength: 24 }),
  });
  fc.assert(
    fc.property(header, (h) => {
      const bytes = new Uint8Array(40 + h.body.length + h.tokens.length * 4);
      bytes.set(h.body, 40);
      const view = new DataView(bytes.buffer);
      [0xd00dfeed, bytes.length, h.struct, h.strings, h.memrsv, h.version, 16, 0].forEach(
        (w, i) => {
          view.setUint32(i * 4, w);
        },
      );
      view.setUint32(32, h.stringsSize);
      view.setUint32(36, h.structSize);
      h.tokens.forEach((t, i) => {
        view.setUint32(40 + h.body.length + i * 4, t);
      });
      parsesOrFdtError(bytes);
    }),
    { numRuns: 1500 },
  );
});

test('the dtc decompile of a parsed real blob is stable (sanity for the fuzz seed)', {
  skip,
}, () => {
  assert.equal(decompile(serializeFdt(parseFdt(REAL))), decompile(REAL));
});
