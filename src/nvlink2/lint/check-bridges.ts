/**
 * The bridge fix-ups skiboot writes (hw/npu2.c npu2_dn_fixup, npu2_dn_fixup_gmb) and what the
 * subdriver reads of them: NV003 (one memory node per GPU), NV004 (memory-region,
 * ibm,device-tgt-addr, ibm,nvlink present), NV005 (tgt = compressed memory base), NV009 (link
 * speed codes), NV010 (ibm,mmio-atsd entries for every link index).
 */
import type { FdtNode } from '../../fdt/index.ts';
import { tgtFromSystemAddress } from '../../platform/index.ts';
import { hex } from '../../text/index.ts';
import { type Draft, FixBuilder, type PhandleAllocator } from './draft.ts';
import { LINK_SPEEDS, type NvTree, u32At, u32s, u64At } from './tree-view.ts';

const dangles = (tree: NvTree, node: FdtNode, property: string) =>
  u32s(node, property).some((v) => tree.resolve(v) === undefined);

/** NV003: the bridges of one GPU name one memory node. */
export function checkSharedMemory(tree: NvTree, alloc: PhandleAllocator): Draft[] {
  const out: Draft[] = [];
  for (const gpu of tree.gpus) {
    if (tree.isP100(gpu)) continue;
    const bridges = tree.bridgesOf(gpu);
    const named = bridges
      .map((b) => ({ b, m: tree.target(b, 'memory-region') }))
      .filter((x): x is { b: FdtNode; m: FdtNode } => x.m !== undefined);
    const distinct = [...new Set(named.map((x) => x.m))];
    if (distinct.length < 2) continue;
    // The majority; on a tie, what bridge 0 names (the GPU RAM region's).
    const count = (m: FdtNode) => named.filter((x) => x.m === m).length;
    const best = distinct.sort(
      (a, b) => count(b) - count(a) || (a === named[0]!.m ? -1 : b === named[0]!.m ? 1 : 0),
    )[0]!;
    const base = tree.memoryRegion(best)?.[0];
    for (const { b, m } of named) {
      if (m === best) continue;
      const fb = new FixBuilder(
        alloc,
        `name ${best.path} like the GPU's other bridges${base !== undefined ? ', with its tgt' : ''}`,
      );
      fb.cells(b, 'memory-region', [fb.ref(best)]);
      if (base !== undefined) fb.u64(b, 'ibm,device-tgt-addr', tgtFromSystemAddress(base));
      out.push({
        ruleId: 'NV003',
        node: b,
        property: 'memory-region',
        message: `bridge ${tree.nameOf(b)} names ${m.path} in memory-region, the other bridges of GPU ${tree.nameOf(gpu)} ${best.path}`,
        fix: fb.build(),
      });
    }
  }
  return out;
}

/** NV004: memory-region, ibm,device-tgt-addr and ibm,nvlink on every bridge of an NVLink2 GPU. */
export function checkBridgeFixups(tree: NvTree, alloc: PhandleAllocator): Draft[] {
  const out: Draft[] = [];
  for (const b of tree.nvlink2Bridges()) {
    const name = tree.nameOf(b);
    if (!b.hasProperty('memory-region')) {
      const m = tree.expectedMemory(b);
      const fb = new FixBuilder(
        alloc,
        `name ${m?.path} as the GPU's other bridges do (or as its tgt says)`,
      );
      out.push({
        ruleId: 'NV004',
        node: b,
        property: 'memory-region',
        message: `bridge ${name} has no memory-region`,
        ...(m ? { fix: fb.cells(b, 'memory-region', [fb.ref(m)]).build() } : {}),
      });
    }
    if (!b.hasProperty('ibm,device-tgt-addr')) {
      const m = tree.target(b, 'memory-region') ?? tree.expectedMemory(b);
      const base = m ? tree.memoryBase(m) : undefined;
      const fb = new FixBuilder(
        alloc,
        `the compressed base of ${m?.path} (hw/npu2.c npu2_dn_fixup_gmb)`,
      );
      out.push({
        ruleId: 'NV004',
        node: b,
        property: 'ibm,device-tgt-addr',
        message: `bridge ${name} has no ibm,device-tgt-addr`,
        ...(base !== undefined
          ? { fix: fb.u64(b, 'ibm,device-tgt-addr', tgtFromSystemAddress(base)).build() }
          : {}),
      });
    }
    if (!b.hasProperty('ibm,nvlink')) {
      const link = tree.expectedLink(b);
      const fb = new FixBuilder(
        alloc,
        `the link skiboot binds devfn ${b.unitAddress} to (hw/npu2.c npu_allocate_bdfn)`,
      );
      out.push({
        ruleId: 'NV004',
        node: b,
        property: 'ibm,nvlink',
        message: `bridge ${name} has no ibm,nvlink`,
        ...(link ? { fix: fb.cells(b, 'ibm,nvlink', [fb.ref(link)]).build() } : {}),
      });
    }
  }
  return out;
}

/** NV005: each bridge's tgt is the compression of its GPU memory base. */
export function checkTgt(tree: NvTree, alloc: PhandleAllocator): Draft[] {
  const out: Draft[] = [];
  for (const gpu of tree.gpus) {
    if (tree.isP100(gpu)) continue;
    const bridges = tree.bridgesOf(gpu);
    const mems = new Set(
      bridges.map((b) => tree.target(b, 'memory-region')).filter((m) => m !== undefined),
    );
    if (mems.size !== 1) continue; // none, or NV003's disagreement
    const mem = [...mems][0]!;
    const region = tree.memoryRegion(mem);
    if (!region) continue; // NV006
    const want = tgtFromSystemAddress(region[0]);
    for (const b of bridges) {
      const p = b.getProperty('ibm,device-tgt-addr');
      if (!p) continue; // NV004
      const have = u64At(b, 'ibm,device-tgt-addr');
      if (p.value.length === 8 && have === want) continue;
      const what =
        p.value.length !== 8
          ? `is ${p.value.length} bytes, not one u64`
          : `is ${hex(have!)}, not ${hex(want)}, skiboot's compression of ${mem.path}'s base ${hex(region[0])}`;
      out.push({
        ruleId: 'NV005',
        node: b,
        property: 'ibm,device-tgt-addr',
        message: `ibm,device-tgt-addr of bridge ${tree.nameOf(b)} ${what}`,
        fix: new FixBuilder(alloc, `compress ${hex(region[0])} as hw/npu2.c npu2_dn_fixup_gmb does`)
          .u64(b, 'ibm,device-tgt-addr', want)
          .build(),
      });
    }
  }
  return out;
}

const speedName = (code: number) => `${hex(code)}`;
const DEFINED = [...LINK_SPEEDS.keys()].map(speedName).join(', ');

/** NV009: link speed codes on bridges and links are skiboot's, agree, and match ibm,link-speed. */
export function checkLinkSpeed(tree: NvTree, alloc: PhandleAllocator): Draft[] {
  const out: Draft[] = [];
  for (const b of tree.nvlink2Bridges()) {
    const link = tree.target(b, 'ibm,nvlink') ?? tree.expectedLink(b);
    const want = tree.expectedSpeed(link, undefined);
    const fix = (why: string) =>
      want === undefined
        ? {}
        : { fix: new FixBuilder(alloc, why).cells(b, 'ibm,nvlink-speed', [want]).build() };
    const p = b.getProperty('ibm,nvlink-speed');
    const name = tree.nameOf(b);
    const from = `copy ${speedName(want ?? 0)} from ${link?.path} (hw/npu2.c npu2_dn_fixup)`;
    if (!p) {
      out.push({
        ruleId: 'NV009',
        node: b,
        property: 'ibm,nvlink-speed',
        message: `bridge ${name} has no ibm,nvlink-speed${want === undefined ? ' (and its link has no speed to copy)' : ''}`,
        ...fix(from),
      });
      continue;
    }
    const code = u32At(b, 'ibm,nvlink-speed');
    if (p.value.length !== 4 || code === undefined || !LINK_SPEEDS.has(code)) {
      out.push({
        ruleId: 'NV009',
        node: b,
        property: 'ibm,nvlink-speed',
        message: `ibm,nvlink-speed of bridge ${name} is ${p.value.length !== 4 ? `${p.value.length} bytes` : speedName(code!)}, not a code skiboot defines (${DEFINED})`,
        ...fix(from),
      });
      continue;
    }
    const linkCode = link ? u32At(link, 'nvidia,link-speed') : undefined;
    if (linkCode !== undefined && LINK_SPEEDS.has(linkCode) && linkCode !== code) {
      out.push({
        ruleId: 'NV009',
        node: b,
        property: 'ibm,nvlink-speed',
        message: `ibm,nvlink-speed of bridge ${name} is ${speedName(code)}, its link ${link!.path} says ${speedName(linkCode)}`,
        ...fix(from),
      });
    }
  }
  for (const link of tree.links) {
    const p = link.getProperty('nvidia,link-speed');
    const code = u32At(link, 'nvidia,link-speed');
    const fromBridges = tree.bridgesOfLink(link).map((b) => u32At(b, 'ibm,nvlink-speed'));
    const want =
      tree.expectedSpeed(link, undefined) ??
      fromBridges.find((c) => c !== undefined && LINK_SPEEDS.has(c));
    if (p?.value.length !== 4 || code === undefined || !LINK_SPEEDS.has(code)) {
      const fb = new FixBuilder(
        alloc,
        `the code of ${want === undefined ? '' : speedName(want)} (from ibm,link-speed or the bridge)`,
      );
      out.push({
        ruleId: 'NV009',
        node: link,
        property: 'nvidia,link-speed',
        message: p
          ? `nvidia,link-speed of ${link.path} is ${p.value.length !== 4 ? `${p.value.length} bytes` : speedName(code!)}, not a code skiboot defines (${DEFINED})`
          : `${link.path} has no nvidia,link-speed${want === undefined ? ' (and nothing in the tree says which)' : ''}`,
        ...(want !== undefined ? { fix: fb.cells(link, 'nvidia,link-speed', [want]).build() } : {}),
      });
      continue;
    }
    const bps = LINK_SPEEDS.get(code)!;
    const have = link.getProperty('ibm,link-speed');
    if (have?.value.length === 8 && u64At(link, 'ibm,link-speed') === bps) continue;
    out.push({
      ruleId: 'NV009',
      node: link,
      property: 'ibm,link-speed',
      message: have
        ? `ibm,link-speed of ${link.path} is not ${bps} bps, the rate of nvidia,link-speed ${speedName(code)}`
        : `${link.path} has no ibm,link-speed (${bps} bps for nvidia,link-speed ${speedName(code)})`,
      fix: new FixBuilder(
        alloc,
        `${bps} bps, the rate of code ${speedName(code)} (hdata/spira.c add_npu)`,
      )
        .u64(link, 'ibm,link-speed', bps)
        .build(),
    });
  }
  return out;
}

/** NV010: ibm,mmio-atsd has 1..8 entries, every link index an entry; links have their index. */
export function checkAtsd(tree: NvTree, alloc: PhandleAllocator): Draft[] {
  const out: Draft[] = [];
  const nvBridges = tree.nvlink2Bridges();
  for (const phb of tree.npuPhbs) {
    const bridges = nvBridges.filter((b) => tree.phbOf(b) === phb);
    if (bridges.length === 0) continue;
    const expected = tree.expectedAtsd(phb);
    const p = phb.getProperty('ibm,mmio-atsd');
    const entries = p ? Math.floor(p.value.length / 8) : 0;
    const have = Array.from({ length: entries }, (_, i) => u64At(phb, 'ibm,mmio-atsd', i)!);
    const prefixOk = expected !== undefined && have.every((a, i) => a === expected[i]);
    const fix = (why: string) =>
      expected && prefixOk
        ? { fix: new FixBuilder(alloc, why).u64(phb, 'ibm,mmio-atsd', ...expected).build() }
        : {};
    const all8 =
      'all 8 NPU2 ATSD registers (hw/npu2.c MMIO_ATSD_ADDR: regs + 0x800000 + n * 0x10000)';
    const indexes = bridges.map((b) => {
      const link = tree.target(b, 'ibm,nvlink');
      return { b, index: link ? tree.linkIndexOf(link) : undefined };
    });
    const outside = indexes.filter((x) => x.index !== undefined && x.index >= entries);
    const list = (xs: typeof outside) =>
      xs.map((x) => `${tree.nameOf(x.b)} (link ${x.index})`).join(', ');
    if (!p) {
      out.push({
        ruleId: 'NV010',
        node: phb,
        property: 'ibm,mmio-atsd',
        message: `NPU PHB ${phb.path} has no ibm,mmio-atsd: bridges ${list(outside)} get no ATSD register`,
        functions: bridges.flatMap((b) => tree.pciName(b) ?? []),
        ...fix(all8),
      });
    } else if (p.value.length % 8 !== 0 || entries > 8) {
      out.push({
        ruleId: 'NV010',
        node: phb,
        property: 'ibm,mmio-atsd',
        message: `ibm,mmio-atsd of ${phb.path} is ${p.value.length} bytes: not 1 to 8 u64 (NPU2 has 8 ATSD registers)`,
        functions: bridges.flatMap((b) => tree.pciName(b) ?? []),
        ...(expected
          ? { fix: new FixBuilder(alloc, all8).u64(phb, 'ibm,mmio-atsd', ...expected).build() }
          : {}),
      });
    } else if (outside.length > 0) {
      out.push({
        ruleId: 'NV010',
        node: phb,
        property: 'ibm,mmio-atsd',
        message: `ibm,mmio-atsd of ${phb.path} has ${entries} ${entries === 1 ? 'entry' : 'entries'}, none for ${list(outside)}`,
        functions: outside.flatMap((x) => tree.pciName(x.b) ?? []),
        ...fix(all8),
      });
    } else if (entries < 8) {
      out.push({
        ruleId: 'NV010',
        node: phb,
        property: 'ibm,mmio-atsd',
        level: 'warning',
        message: `ibm,mmio-atsd of ${phb.path} has ${entries} entries, skiboot writes all 8 of the NPU2's ATSD registers (every link index in use has one)`,
        functions: [],
        ...fix(all8),
      });
    }
  }
  // Links the bridges use, without their index (the ATSD init reads it).
  const seen = new Set<FdtNode>();
  for (const b of nvBridges) {
    const link = tree.target(b, 'ibm,nvlink');
    if (!link || seen.has(link) || dangles(tree, b, 'ibm,nvlink')) continue;
    seen.add(link);
    const p = link.getProperty('ibm,npu-link-index');
    if (p?.value.length === 4) continue;
    const index = tree.linkIndexOf(link, true);
    out.push({
      ruleId: 'NV010',
      node: link,
      property: 'ibm,npu-link-index',
      message: p
        ? `ibm,npu-link-index of ${link.path} is ${p.value.length} bytes, not one u32`
        : `${link.path} has no ibm,npu-link-index (bridge ${tree.nameOf(b)}'s ATSD init needs it)`,
      ...(index !== undefined
        ? {
            fix: new FixBuilder(alloc, `index ${index}, from its reg / unit address`)
              .cells(link, 'ibm,npu-link-index', [index])
              .build(),
          }
        : {}),
    });
  }
  return out;
}
