/**
 * Test support: one small blob packed by hand (Devicetree Specification v0.3, chapter 5) with
 * every offset written down, shared by the parser and serializer tests.
 */
import { ascii, beginNode, cat, END, END_NODE, pack, prop } from './pack.ts';

// Strings: "compatible" at 0, "reg" at 11.
export const STRINGS = ascii('compatible\0reg\0');
// Struct at 72 (40-byte header + one memrsv entry + terminator). Offsets in the comments.
export const STRUCT = cat(
  beginNode(''), // 72, name at 76
  prop(0, ascii('a\0')), // 80: len at 84, nameoff at 88, value at 92
  beginNode('c@1'), // 96, name at 100
  prop(11, new Uint8Array(0)), // 104: len at 108, nameoff at 112
  END_NODE, // 116
  END_NODE, // 120
  END, // 124
);
export const MEMRSV = [[0x1000n, 0x2000n]] as const;
export const GOOD = pack({ struct: STRUCT, strings: STRINGS, memrsv: MEMRSV, bootCpu: 3 });
