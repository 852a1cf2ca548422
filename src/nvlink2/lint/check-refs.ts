/**
 * Cross references: NV001 (phandles resolve, one cell where one is read), NV002 (GPU ↔ bridge
 * links reciprocal, slot-mates linked), NV013 (P100s on an NPU2 machine) and NV015 (the PCI
 * function nodes Linux must see).
 * Sources: skiboot hw/npu2.c npu2_dn_fixup, npu2_append_phandle; Linux npu-dma.c
 * pnv_pci_get_npu_dev / pnv_pci_get_gpu_dev, pci_dn.c.
 */
import type { FdtNode } from '../../fdt/index.ts';
import { hex } from '../../text/index.ts';
import { type Draft, FixBuilder, type PhandleAllocator } from './draft.ts';
import {
  devfnOf,
  type NvTree,
  PHANDLE_PROPERTIES,
  phandleOf,
  type Reference,
  stringsOf,
  u32s,
} from './tree-view.ts';

/** The node skiboot meant a dangling reference to point at, when the tree tells. */
function intendedTarget(
  tree: NvTree,
  r: Reference,
  dangling: readonly Reference[],
): FdtNode | undefined {
  switch (r.property) {
    case 'ibm,gpu':
      return tree.gpus.find((g) => tree.npuList(g).includes(r.from)) ?? tree.slotMate(r.from);
    case 'ibm,npu': {
      // Bridges naming this GPU that no resolving ibm,npu entry covers, in devfn order,
      // matched to the dangling entries in order.
      const listed = tree.npuList(r.from);
      const missing = tree.bridges
        .filter((b) => tree.target(b, 'ibm,gpu') === r.from && !listed.includes(b))
        .sort((a, b) => (devfnOf(a) ?? 0) - (devfnOf(b) ?? 0));
      const mine = dangling.filter((d) => d.from === r.from && d.property === 'ibm,npu');
      return missing[mine.indexOf(r)];
    }
    case 'ibm,nvlink':
      return tree.expectedLink(r.from);
    case 'memory-region':
      return tree.expectedMemory(r.from);
    case 'ibm,npcq':
      return tree.npuOfPhb(r.from);
    default:
      return undefined;
  }
}

/** NV001: every reference resolves, and one-phandle properties are one cell. */
export function checkPhandles(tree: NvTree, alloc: PhandleAllocator): Draft[] {
  const out: Draft[] = [];
  for (const node of tree.fdt.root.walk()) {
    for (const { name, single } of PHANDLE_PROPERTIES) {
      const p = node.getProperty(name);
      if (!p) continue;
      const bad = single ? p.value.length !== 4 : p.value.length === 0 || p.value.length % 4 !== 0;
      if (bad) {
        out.push({
          ruleId: 'NV001',
          node,
          property: name,
          message: `${name} of ${tree.nameOf(node)} is ${p.value.length} bytes, not ${single ? 'one phandle (4 bytes)' : 'a list of phandles (4 bytes each)'}`,
        });
      }
    }
  }
  const dangling = tree.references.filter((r) => tree.resolve(r.value) === undefined);
  const byValue = new Map<number, Reference[]>();
  for (const r of dangling) byValue.set(r.value, [...(byValue.get(r.value) ?? []), r]);
  for (const [value, refs] of byValue) {
    const first = refs[0]!;
    const where = refs.map((r) => `${r.property} of ${tree.nameOf(r.from)}`);
    const shown =
      where.length > 3
        ? `${where.slice(0, 3).join(', ')} and ${where.length - 3} more`
        : where.join(', ');
    let target: FdtNode | undefined;
    for (const r of refs) {
      target = intendedTarget(tree, r, dangling);
      if (target) break;
    }
    let fix: ReturnType<FixBuilder['build']> | undefined;
    let hint = '';
    if (target) {
      const own = phandleOf(target);
      const b = new FixBuilder(
        alloc,
        own === undefined
          ? `give ${target.path} phandle ${hex(value)}, which ${refs.length === 1 ? 'its reference holds' : 'its references hold'}`
          : `point ${refs.length === 1 ? 'the reference' : 'the references'} at ${target.path} (phandle ${hex(own)})`,
      );
      if (own === undefined) b.givePhandle(target, value);
      // Rewrite each referencing property with the target named by path (an overlay needs that).
      const seen = new Set<string>();
      for (const r of refs) {
        const key = `${r.from.path}\0${r.property}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const to = { ref: target.path, phandle: own ?? value };
        const cells = u32s(r.from, r.property).map((v) => (v === value ? to : v));
        b.cells(r.from, r.property, cells);
      }
      fix = b.build();
      hint =
        own === undefined
          ? `; skiboot's target is ${target.path}, which has no phandle`
          : `; skiboot's target is ${target.path} (phandle ${hex(own)})`;
    }
    const functions = new Set<string>();
    for (const r of refs) for (const f of tree.functionsOf(r.from)) functions.add(f);
    if (target) for (const f of tree.functionsOf(target)) functions.add(f);
    out.push({
      ruleId: 'NV001',
      node: first.from,
      property: first.property,
      message: `phandle ${hex(value)} in ${shown} resolves to no node${hint}`,
      functions: [...functions].sort(),
      ...(fix ? { fix } : {}),
    });
  }
  return out;
}

/** NV002: ibm,npu and ibm,gpu name each other; bridges and GPUs of one slot are linked. */
export function checkReciprocal(tree: NvTree, alloc: PhandleAllocator): Draft[] {
  const out: Draft[] = [];
  const dangles = (node: FdtNode, property: string) =>
    u32s(node, property).some((v) => tree.resolve(v) === undefined);
  for (const gpu of tree.gpus) {
    if (tree.isP100(gpu) || dangles(gpu, 'ibm,npu')) continue;
    for (const b of tree.npuList(gpu)) {
      if (!tree.bridges.includes(b) || dangles(b, 'ibm,gpu')) continue;
      const back = tree.target(b, 'ibm,gpu');
      if (back === gpu) continue;
      if (back === undefined) {
        const fb = new FixBuilder(alloc, `name GPU ${tree.nameOf(gpu)} in ibm,gpu`);
        out.push({
          ruleId: 'NV002',
          node: b,
          property: 'ibm,gpu',
          message: `bridge ${tree.nameOf(b)} has no ibm,gpu, but GPU ${tree.nameOf(gpu)} lists it in ibm,npu`,
          fix: fb.cells(b, 'ibm,gpu', [fb.ref(gpu)]).build(),
        });
      } else {
        out.push({
          ruleId: 'NV002',
          node: b,
          property: 'ibm,gpu',
          message: `bridge ${tree.nameOf(b)} names ${tree.nameOf(back)} in ibm,gpu, but GPU ${tree.nameOf(gpu)} lists it in ibm,npu`,
        });
      }
    }
  }
  // Bridges naming a GPU that does not list them (one finding per GPU), and unlinked slot-mates.
  const unlisted = new Map<FdtNode, FdtNode[]>();
  for (const b of tree.bridges) {
    if (dangles(b, 'ibm,gpu')) continue;
    const gpu = tree.target(b, 'ibm,gpu');
    if (gpu && tree.gpus.includes(gpu)) {
      if (tree.isP100(gpu) || dangles(gpu, 'ibm,npu') || tree.npuList(gpu).includes(b)) continue;
      unlisted.set(gpu, [...(unlisted.get(gpu) ?? []), b]);
      continue;
    }
    if (gpu || tree.gpus.some((g) => tree.npuList(g).includes(b))) continue;
    const mate = tree.slotMate(b);
    if (!mate || tree.isP100(mate) || dangles(mate, 'ibm,npu')) continue;
    const fb = new FixBuilder(
      alloc,
      `link bridge ${tree.nameOf(b)} and GPU ${tree.nameOf(mate)} both ways`,
    );
    const list = [...tree.npuList(mate), b].sort((x, y) => (devfnOf(x) ?? 0) - (devfnOf(y) ?? 0));
    fb.cells(b, 'ibm,gpu', [fb.ref(mate)]).cells(
      mate,
      'ibm,npu',
      list.map((n) => fb.ref(n)),
    );
    out.push({
      ruleId: 'NV002',
      node: b,
      property: 'ibm,gpu',
      message: `bridge ${tree.nameOf(b)} in slot ${stringsOf(b, 'ibm,loc-code')?.[0]} is not linked to that slot's GPU ${tree.nameOf(mate)} (no ibm,gpu, not in its ibm,npu)`,
      fix: fb.build(),
    });
  }
  for (const [gpu, bridges] of unlisted) {
    const fb = new FixBuilder(
      alloc,
      `list every bridge naming GPU ${tree.nameOf(gpu)} in its ibm,npu, in devfn order`,
    );
    const all = [...tree.npuList(gpu), ...bridges].sort(
      (x, y) => (devfnOf(x) ?? 0) - (devfnOf(y) ?? 0),
    );
    fb.cells(
      gpu,
      'ibm,npu',
      all.map((n) => fb.ref(n)),
    );
    const names = bridges.map((b) => tree.nameOf(b)).join(', ');
    out.push({
      ruleId: 'NV002',
      node: gpu,
      property: 'ibm,npu',
      message: gpu.hasProperty('ibm,npu')
        ? `GPU ${tree.nameOf(gpu)}'s ibm,npu leaves out ${names}, whose ibm,gpu names it`
        : `GPU ${tree.nameOf(gpu)} has no ibm,npu, but bridges ${names} name it in ibm,gpu`,
      fix: fb.build(),
    });
  }
  return out;
}

/** NV013: P100 SXM2 GPUs (NVLink1) linked to, or in the slot of, NPU2 bridges. */
export function checkP100(tree: NvTree): Draft[] {
  return tree.gpus
    .filter((g) => tree.isP100(g))
    .map((gpu) => {
      const linked = tree.bridgesOf(gpu);
      const slot = tree.bridges.filter((b) => !linked.includes(b) && tree.slotMate(b) === gpu);
      const how = linked.length
        ? `linked to NPU2 bridges ${linked.map((b) => tree.nameOf(b)).join(', ')}`
        : `in the NVLink slot of NPU2 bridges ${slot.map((b) => tree.nameOf(b)).join(', ')}`;
      return {
        ruleId: 'NV013',
        node: gpu,
        property: 'device-id',
        message: `GPU ${tree.nameOf(gpu)} is a P100 SXM2 (10de:15f9, NVLink1, a POWER8 part) ${how}`,
      };
    });
}

/**
 * NV015: the host model could not be built (the HostError, where it names), or an NVLink node
 * with PCI IDs is no PCI function Linux sees (no reg, or no pci/pciex PHB above it).
 */
export function checkPciNodes(tree: NvTree, alloc: PhandleAllocator): Draft[] {
  if (tree.hostError) {
    const e = tree.hostError;
    const node = tree.fdt.findNode(e.nodePath) ?? tree.fdt.root;
    const fix = e.property ? idFromCompatible(node, e.property, alloc) : undefined;
    return [
      {
        ruleId: 'NV015',
        node,
        ...(e.property ? { property: e.property } : {}),
        message: `Linux cannot read the PCI functions: ${e.message}`,
        functions: [],
        ...(fix ? { fix } : {}),
      },
    ];
  }
  const out: Draft[] = [];
  const orphans = new Map<FdtNode, FdtNode[]>();
  for (const node of [...tree.gpus, ...tree.bridges]) {
    if (tree.pciName(node) !== undefined) continue;
    if (!node.hasProperty('reg')) {
      const fix = regFromUnitAddress(node, alloc);
      out.push({
        ruleId: 'NV015',
        node,
        property: 'reg',
        message: `${node.path} has PCI IDs but no reg: Linux sees no PCI function there`,
        functions: referrers(tree, node),
        ...(fix ? { fix } : {}),
      });
      continue;
    }
    const parent = node.parent;
    if (parent && !tree.pciHostOf(node))
      orphans.set(parent, [...(orphans.get(parent) ?? []), node]);
  }
  for (const [parent, nodes] of orphans) {
    const fb = new FixBuilder(alloc, 'make it a PCI Express host bridge again');
    out.push({
      ruleId: 'NV015',
      node: parent,
      property: 'device_type',
      message: `${parent.path} has no device_type "pciex": Linux finds no PCI host there, so its ${nodes.length} functions (${nodes.map((n) => n.name).join(', ')}) do not exist`,
      functions: nodes.flatMap((n) => referrers(tree, n)),
      fix: fb.strings(parent, 'device_type', 'pciex').build(),
    });
  }
  return out;
}

/**
 * A missing `vendor-id` or `device-id` from the node's `compatible`, "pciex<vendor>,<device>"
 * or "pci<vendor>,<device>" (core/pci.c pci_add_one_device_node; IEEE 1275 PCI binding).
 */
function idFromCompatible(node: FdtNode, property: string, alloc: PhandleAllocator) {
  if (property !== 'vendor-id' && property !== 'device-id') return undefined;
  for (const c of stringsOf(node, 'compatible') ?? []) {
    const m = /^pci(?:ex)?([0-9a-f]{1,4}),([0-9a-f]{1,4})$/i.exec(c);
    if (!m) continue;
    const value = Number.parseInt((property === 'vendor-id' ? m[1] : m[2])!, 16);
    return new FixBuilder(alloc, `from compatible "${c}" (core/pci.c pci_add_one_device_node)`)
      .cells(node, property, [value])
      .build();
  }
  return undefined;
}

/**
 * A function node's `reg` (config space: phys.hi = bus << 16 | devfn << 8, then zeros) from
 * its unit address "dev[,fn]" and the first bus of its parent's `bus-range` (IEEE 1275 PCI
 * binding; skiboot core/pci.c pci_add_one_device_node).
 */
function regFromUnitAddress(node: FdtNode, alloc: PhandleAllocator) {
  const m = /^([0-9a-f]{1,2})(?:,([0-7]))?$/i.exec(node.unitAddress);
  const bus = node.parent ? u32s(node.parent, 'bus-range')[0] : undefined;
  if (!m || bus === undefined || bus > 0xff) return undefined;
  const dev = Number.parseInt(m[1]!, 16);
  const fn = Number(m[2] ?? 0);
  if (dev > 0x1f) return undefined;
  const devfn = (dev << 3) | fn;
  return new FixBuilder(
    alloc,
    `config space of bus ${hex(bus)} devfn ${hex(devfn)}, from its unit address and its parent's bus-range`,
  )
    .cells(node, 'reg', [((bus << 16) | (devfn << 8)) >>> 0, 0, 0, 0, 0])
    .build();
}

/** PCI names of the functions whose ibm,npu / ibm,gpu point at `node`. */
function referrers(tree: NvTree, node: FdtNode): string[] {
  const names = new Set<string>();
  for (const r of tree.references) {
    if ((r.property === 'ibm,npu' || r.property === 'ibm,gpu') && tree.resolve(r.value) === node) {
      for (const f of tree.functionsOf(r.from)) names.add(f);
    }
  }
  return [...names].sort();
}
