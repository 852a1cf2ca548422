/**
 * Test support: deeply nested trees packed token by token (Devicetree Specification v0.3,
 * 5.4 structure block), independently of `serialize.ts`: a chain of nested nodes, spliced into
 * any blob laid out as dtc lays it out (struct before strings, ending END_NODE END), optionally
 * with a PHB holding one NVIDIA GPU function at a chosen depth of the chain.
 */
import { ascii, be32, beginNode, END, END_NODE, pack, prop } from './pack.ts';

/** Concatenation of any number of parts (a spread of 100,000 arguments overflows the stack). */
export function catAll(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface DeepChainOptions {
  /** Nesting levels of the chain below the root (the first chain node is at depth 1). */
  readonly depth: number;
  /** Name of every chain node. */
  readonly name?: string;
  /**
   * Depth (root = 0) of a `pciex@…` PHB node added beside the chain node of that depth, with
   * an NVIDIA 3D-controller function below it, in domain `linux,pci-domain` 0x42.
   */
  readonly phbAt?: number;
}

/** Header fields at their offsets (struct fdt_header). */
function u32(blob: Uint8Array, offset: number): number {
  return new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(offset);
}

/**
 * `blob` with a chain of `depth` nested nodes appended to the root's children.
 * `blob` must be a v17 blob whose structure block ends with the root's END_NODE and END.
 */
export function withDeepChain(blob: Uint8Array, options: DeepChainOptions): Uint8Array {
  const structOff = u32(blob, 8);
  const stringsOff = u32(blob, 12);
  const memOff = u32(blob, 16);
  const stringsSize = u32(blob, 32);
  const structSize = u32(blob, 36);
  const struct = blob.subarray(structOff, structOff + structSize);
  const tail = struct.subarray(struct.length - 8);
  if (u32(tail, 0) !== 2 || u32(tail, 4) !== 9) throw new Error('blob must end END_NODE END');

  // Property names are added to the strings block only when the PHB needs them.
  const names =
    options.phbAt === undefined
      ? []
      : ['device_type', 'reg', 'vendor-id', 'device-id', 'class-code', 'linux,pci-domain'];
  const nameoff = new Map<string, number>();
  let stringsEnd = stringsSize;
  for (const n of names) {
    nameoff.set(n, stringsEnd);
    stringsEnd += n.length + 1;
  }
  const strings = catAll([
    blob.subarray(stringsOff, stringsOff + stringsSize),
    ascii(names.map((n) => `${n}\0`).join('')),
  ]);
  const p = (name: string, value: Uint8Array) => prop(nameoff.get(name)!, value);

  const parts: Uint8Array[] = [struct.subarray(0, struct.length - 8)];
  const chainNode = beginNode(options.name ?? 'c');
  for (let depth = 1; depth <= options.depth; depth++) {
    if (depth === options.phbAt) {
      parts.push(
        beginNode('pciex@42'),
        p('device_type', ascii('pciex\0')),
        p('linux,pci-domain', be32(0x42)),
        beginNode('gpu@0'),
        p('reg', be32(0, 0, 0, 0, 0)),
        p('vendor-id', be32(0x10de)),
        p('device-id', be32(0x1db1)),
        p('class-code', be32(0x030200)),
        END_NODE,
        END_NODE,
      );
    }
    parts.push(chainNode);
  }
  for (let depth = 1; depth <= options.depth; depth++) parts.push(END_NODE);
  parts.push(END_NODE, END);

  const memrsv: [bigint, bigint][] = [];
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let at = memOff; ; at += 16) {
    const address = view.getBigUint64(at);
    const size = view.getBigUint64(at + 8);
    if (address === 0n && size === 0n) break;
    memrsv.push([address, size]);
  }
  return pack({ struct: catAll(parts), strings, memrsv, bootCpu: u32(blob, 28) });
}

/** A blob whose root holds only the chain: `/ { c { c { … } } }`. */
export function deepChainBlob(options: DeepChainOptions): Uint8Array {
  return withDeepChain(
    pack({ struct: catAll([beginNode(''), END_NODE, END]), strings: new Uint8Array(0) }),
    options,
  );
}
