/**
 * GPU memory nodes (skiboot hw/npu2.c npu2_create_memory_dn): NV006 (device_type, compatible,
 * two-u64 reg, linux,usable-memory <base 0>), NV007 (a NUMA id of their own), NV008 (no overlap
 * with each other or with system RAM).
 */
import type { FdtNode } from '../../fdt/index.ts';
import { hex } from '../../text/index.ts';
import { type Draft, FixBuilder, type PhandleAllocator } from './draft.ts';
import {
  COHERENT_MEMORY,
  exactRegion,
  type NvTree,
  stringsOf,
  u32At,
  u32s,
  u64At,
} from './tree-view.ts';

/** NV006: the shape the GPU RAM init and Linux's boot memory scan need. */
export function checkMemoryNodes(tree: NvTree, alloc: PhandleAllocator): Draft[] {
  const out: Draft[] = [];
  for (const mem of tree.gpuMemory) {
    const push = (property: string, message: string, fix?: ReturnType<FixBuilder['build']>) =>
      out.push({ ruleId: 'NV006', node: mem, property, message, ...(fix ? { fix } : {}) });
    if (stringsOf(mem, 'device_type')?.[0] !== 'memory') {
      push(
        'device_type',
        `${mem.path} has no device_type "memory"`,
        new FixBuilder(alloc, 'device_type "memory"').strings(mem, 'device_type', 'memory').build(),
      );
    }
    const compatible = stringsOf(mem, 'compatible');
    if (!compatible?.includes(COHERENT_MEMORY)) {
      push(
        'compatible',
        `${mem.path} is not compatible "${COHERENT_MEMORY}"`,
        new FixBuilder(alloc, `compatible "${COHERENT_MEMORY}"`)
          .strings(mem, 'compatible', ...(compatible ?? []), COHERENT_MEMORY)
          .build(),
      );
    }
    const region = exactRegion(mem);
    const want = tree.expectedMemoryReg(mem);
    if (!region || region[1] === 0n) {
      const p = mem.getProperty('reg');
      push(
        'reg',
        p
          ? `reg of ${mem.path} is ${p.value.length} bytes${region ? ' with size 0' : ''}, not two u64 (base, size): the GPU RAM init fails with EINVAL`
          : `${mem.path} has no reg`,
        want
          ? new FixBuilder(
              alloc,
              `<${hex(want[0])} ${hex(want[1])}>: its base and skiboot's 128 GiB aperture`,
            )
              .u64(mem, 'reg', ...want)
              .build()
          : undefined,
      );
    }
    const base = region?.[0] ?? want?.[0];
    const usable = mem.getProperty('linux,usable-memory');
    const ok =
      usable?.value.length === 16 &&
      u64At(mem, 'linux,usable-memory', 0) === base &&
      u64At(mem, 'linux,usable-memory', 1) === 0n;
    if (!ok) {
      push(
        'linux,usable-memory',
        usable
          ? `linux,usable-memory of ${mem.path} is not <base 0>: Linux onlines that much of the GPU aperture as system RAM at boot`
          : `${mem.path} has no linux,usable-memory <base 0>: Linux onlines the whole GPU aperture as system RAM at boot`,
        base !== undefined
          ? new FixBuilder(alloc, `<${hex(base)} 0> (hw/npu2.c npu2_create_memory_dn)`)
              .u64(mem, 'linux,usable-memory', base, 0n)
              .build()
          : undefined,
      );
    }
  }
  return out;
}

/** The NUMA id of a memory node: the last cell of a well-formed ibm,associativity. */
function numaId(node: FdtNode): number | undefined {
  const a = u32s(node, 'ibm,associativity');
  if (a.length < 2 || a[0] !== a.length - 1) return undefined;
  return a[a.length - 1];
}

/** NV007: a well-formed ibm,associativity with a NUMA id no other memory node has. */
export function checkAssociativity(tree: NvTree, alloc: PhandleAllocator): Draft[] {
  const out: Draft[] = [];
  const all = [...tree.systemMemory, ...tree.gpuMemory];
  const used = new Set(all.map(numaId).filter((n) => n !== undefined));
  const free = () => {
    // skiboot counts chip ids down from 255 for GPU memory.
    for (let id = 255; id > 0; id--) if (!used.has(id)) return id;
    return undefined;
  };
  const fixFor = (mem: FdtNode) => {
    const chip = u32At(mem, 'ibm,chip-id');
    const id = chip !== undefined && !used.has(chip) ? chip : free();
    if (id === undefined) return undefined;
    used.add(id);
    return new FixBuilder(alloc, `NUMA id ${id} (<4 id id id id>, hw/npu2.c npu2_create_memory_dn)`)
      .cells(mem, 'ibm,associativity', [4, id, id, id, id])
      .build();
  };
  const owner = new Map<number, FdtNode>();
  for (const m of tree.systemMemory) {
    const id = numaId(m);
    if (id !== undefined && !owner.has(id)) owner.set(id, m);
  }
  for (const mem of tree.gpuMemory) {
    const p = mem.getProperty('ibm,associativity');
    const id = numaId(mem);
    if (id === undefined) {
      const fix = fixFor(mem);
      out.push({
        ruleId: 'NV007',
        node: mem,
        property: 'ibm,associativity',
        message: p
          ? `ibm,associativity of ${mem.path} is not <n id…> with n the number of ids`
          : `${mem.path} has no ibm,associativity: its GPU RAM gets no NUMA node of its own`,
        ...(fix ? { fix } : {}),
      });
      continue;
    }
    const other = owner.get(id);
    if (other) {
      const fix = fixFor(mem);
      out.push({
        ruleId: 'NV007',
        node: mem,
        property: 'ibm,associativity',
        message: `${mem.path} has NUMA id ${id}, as ${other.path} has`,
        ...(fix ? { fix } : {}),
      });
      continue;
    }
    owner.set(id, mem);
  }
  return out;
}

/** `reg` of a system RAM node as [base, size] pairs with the root's #address-cells/#size-cells. */
function ranges(tree: NvTree, node: FdtNode): [bigint, bigint][] {
  const ac = u32At(tree.fdt.root, '#address-cells') ?? 2;
  const sc = u32At(tree.fdt.root, '#size-cells') ?? 1;
  const cells = u32s(node, 'reg');
  const out: [bigint, bigint][] = [];
  const read = (at: number, n: number) => {
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 32n) | BigInt(cells[at + i] ?? 0);
    return v;
  };
  for (let at = 0; at + ac + sc <= cells.length; at += ac + sc)
    out.push([read(at, ac), read(at + ac, sc)]);
  return out;
}

/** NV008: GPU memory overlaps neither other GPU memory nor system RAM. */
export function checkOverlap(tree: NvTree): Draft[] {
  const out: Draft[] = [];
  const gpu = tree.gpuMemory
    .map((m) => ({ m, r: exactRegion(m) }))
    .filter((x): x is { m: FdtNode; r: [bigint, bigint] } => x.r !== undefined && x.r[1] !== 0n);
  const overlaps = (a: [bigint, bigint], b: [bigint, bigint]) =>
    a[0] < b[0] + b[1] && b[0] < a[0] + a[1];
  const span = (r: [bigint, bigint]) => `${hex(r[0])}..${hex(r[0] + r[1] - 1n)}`;
  gpu.forEach((x, i) => {
    for (const y of gpu.slice(0, i)) {
      if (!overlaps(x.r, y.r)) continue;
      out.push({
        ruleId: 'NV008',
        node: x.m,
        property: 'reg',
        message: `GPU memory ${x.m.path} (${span(x.r)}) overlaps GPU memory ${y.m.path} (${span(y.r)})`,
      });
    }
    for (const s of tree.systemMemory) {
      for (const r of ranges(tree, s)) {
        if (r[1] === 0n || !overlaps(x.r, r)) continue;
        out.push({
          ruleId: 'NV008',
          node: x.m,
          property: 'reg',
          message: `GPU memory ${x.m.path} (${span(x.r)}) overlaps system RAM ${s.path} (${span(r)})`,
        });
      }
    }
  });
  return out;
}
