/**
 * The property readers against the kernel's `of_property_read_*` semantics
 * (drivers/of/property.c, v5.12): EINVAL missing, EOVERFLOW wrong size, ENODATA empty,
 * EILSEQ unterminated string.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FdtPropertyError } from './errors.ts';
import {
  countPhandles,
  findPropertyValueOfSize,
  isCompatible,
  isDeviceType,
  parsePhandle,
  readAllU32,
  readAllU64,
  readPhandleValue,
  readString,
  readStringList,
  readU32,
  readU32Index,
  readU64,
  readU64Array,
  readU64Index,
  readVariableU32Array,
  readVariableU64Array,
  tryRead,
} from './props.ts';
import { cells, Fdt, type FdtNode } from './tree.ts';

function node(): FdtNode {
  const fdt = new Fdt();
  const n = fdt.root.addChild('bridge@1');
  n.setProperty('one', cells.u32(0x8));
  n.setProperty('short', cells.bytes(1, 2));
  n.setProperty('tgt', cells.u64(0x3e000000000n));
  n.setProperty('reg2', cells.u64(0x3e000000000n, 0x2000000000n));
  n.setProperty('reg3', cells.u64(1n, 2n, 3n));
  n.setProperty('compatible', cells.strings('ibm,power9-npu-pciex', 'ibm,ioda2-npu2-phb'));
  n.setProperty('empty', cells.empty());
  n.setProperty('unterminated', cells.bytes(0x61, 0x62));
  return n;
}

function errno(fn: () => unknown, expected: FdtPropertyError['errno'], property: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FdtPropertyError, String(e));
    assert.equal(e.errno, expected, e.message);
    assert.equal(e.nodePath, '/bridge@1');
    assert.equal(e.property, property);
    assert.ok(e.message.startsWith(`${expected}: /bridge@1: ${property}: `), e.message);
    return true;
  });
}

test('readU32 / readU32Index: value, EINVAL when missing, EOVERFLOW when short', () => {
  const n = node();
  assert.equal(readU32(n, 'one'), 8);
  assert.equal(readU32(n, 'tgt'), 0x3e0); // a longer value is fine: the first cell
  assert.equal(readU32Index(n, 'reg2', 3), 0);
  errno(() => readU32(n, 'missing'), 'EINVAL', 'missing');
  errno(() => readU32(n, 'short'), 'EOVERFLOW', 'short');
  errno(() => readU32Index(n, 'one', 1), 'EOVERFLOW', 'one');
});

test('readU64 / readU64Index: value, EINVAL, EOVERFLOW', () => {
  const n = node();
  assert.equal(readU64(n, 'tgt'), 0x3e000000000n);
  assert.equal(readU64Index(n, 'reg3', 2), 3n);
  errno(() => readU64(n, 'one'), 'EOVERFLOW', 'one');
  errno(() => readU64Index(n, 'reg2', 2), 'EOVERFLOW', 'reg2');
  errno(() => readU64(n, 'nope'), 'EINVAL', 'nope');
});

test("readVariableU64Array(node, 'reg', 2, 2): exactly two values", () => {
  const n = node();
  n.setProperty('reg', cells.u64(0x3e000000000n, 0x2000000000n));
  assert.deepEqual(readVariableU64Array(n, 'reg', 2, 2), [0x3e000000000n, 0x2000000000n]);
  n.setProperty('reg', cells.u64(1n, 2n, 3n));
  errno(() => readVariableU64Array(n, 'reg', 2, 2), 'EOVERFLOW', 'reg');
  n.setProperty('reg', cells.u64(1n));
  errno(() => readVariableU64Array(n, 'reg', 2, 2), 'EOVERFLOW', 'reg');
  n.removeProperty('reg');
  errno(() => readVariableU64Array(n, 'reg', 2, 2), 'EINVAL', 'reg');
  // max 0: at least min values, the first min are returned.
  assert.deepEqual(readU64Array(node(), 'reg3', 2), [1n, 2n]);
  assert.deepEqual(readVariableU64Array(node(), 'reg3', 1, 4), [1n, 2n, 3n]);
});

test('findPropertyValueOfSize: size window', () => {
  const n = node();
  assert.equal(findPropertyValueOfSize(n, 'tgt', 8, 8).length, 8);
  errno(() => findPropertyValueOfSize(n, 'reg2', 8, 8), 'EOVERFLOW', 'reg2');
});

test('strings: list, first, ENODATA empty, EILSEQ unterminated, EINVAL missing', () => {
  const n = node();
  assert.deepEqual(readStringList(n, 'compatible'), ['ibm,power9-npu-pciex', 'ibm,ioda2-npu2-phb']);
  assert.equal(readString(n, 'compatible'), 'ibm,power9-npu-pciex');
  errno(() => readString(n, 'empty'), 'ENODATA', 'empty');
  errno(() => readString(n, 'unterminated'), 'EILSEQ', 'unterminated');
  errno(() => readStringList(n, 'missing'), 'EINVAL', 'missing');
  assert.ok(isCompatible(n, 'ibm,ioda2-npu2-phb'));
  assert.ok(!isCompatible(n, 'ibm,ioda2'));
});

test('phandles: parsePhandle, readPhandleValue, countPhandles; display readers', () => {
  const fdt = new Fdt();
  const gpu = fdt.root.addChild('gpu').setProperty('phandle', cells.u32(7));
  const bridge = fdt.root.addChild('bridge').setProperty('ibm,gpu', cells.u32(7));
  gpu.setProperty('ibm,npu', cells.u32(9, 10));
  assert.equal(parsePhandle(fdt, bridge, 'ibm,gpu', 0), gpu);
  assert.equal(parsePhandle(fdt, bridge, 'ibm,gpu', 1), undefined);
  assert.equal(parsePhandle(fdt, gpu, 'ibm,npu', 0), undefined); // dangling
  assert.equal(parsePhandle(fdt, gpu, 'missing', 0), undefined);
  assert.equal(readPhandleValue(gpu, 'ibm,npu', 1), 10);
  assert.equal(countPhandles(gpu, 'ibm,npu'), 2);
  assert.equal(countPhandles(gpu, 'missing'), 0);
  assert.deepEqual(readAllU32(gpu, 'ibm,npu'), [9, 10]);
  assert.deepEqual(readAllU64(gpu, 'ibm,npu'), [0x90000000an]);
  assert.deepEqual(readAllU64(gpu, 'missing'), []);
});

test("readVariableU32Array(node, 'bus-range', 2, 2): exactly two cells; the error carries the size", () => {
  const n = node();
  n.setProperty('bus-range', cells.u32(1, 0xff));
  assert.deepEqual(readVariableU32Array(n, 'bus-range', 2, 2), [1, 0xff]);
  n.setProperty('bus-range', cells.u32(1, 2, 3));
  errno(() => readVariableU32Array(n, 'bus-range', 2, 2), 'EOVERFLOW', 'bus-range');
  const short = tryRead(() => readVariableU32Array(node(), 'one', 2, 2));
  assert.ok(!short.ok);
  assert.equal(short.error.size, 4);
  const missing = tryRead(() => readU32(node(), 'missing'));
  assert.ok(!missing.ok);
  assert.equal(missing.error.errno, 'EINVAL');
  assert.equal(missing.error.size, undefined);
  assert.deepEqual(
    tryRead(() => readU32(node(), 'one')),
    { ok: true, value: 8 },
  );
  assert.deepEqual(readVariableU32Array(node(), 'reg3', 1), [0]);
  assert.throws(() => tryRead(() => JSON.parse('{')), SyntaxError, 'other errors pass through');
});

test('isDeviceType: the first string of device_type (of_node_is_type)', () => {
  const n = node();
  assert.equal(isDeviceType(n, 'pciex'), false);
  n.setProperty('device_type', cells.string('pciex'));
  assert.ok(isDeviceType(n, 'pciex'));
  assert.ok(!isDeviceType(n, 'pci'));
  n.setProperty('device_type', cells.bytes(0x70, 0x63, 0x69)); // "pci" without its NUL
  assert.ok(isDeviceType(n, 'pci'));
  n.setProperty('device_type', cells.empty());
  assert.ok(!isDeviceType(n, 'pci'));
});
