/**
 * The topology as a Graphviz DOT graph (laid out by Graphviz's `dot`, never by hand): one
 * cluster per chip with the CPU, its NPU (a table with one row per brick: bridge, GPU, ATSD
 * register, tgt) and its GPUs; NVLink edges CPU↔GPU from each brick to its GPU and GPU↔GPU
 * between peers, labelled with their speed; PCIe edges from the PHB4 root port; fill colour by
 * IOMMU group. Every node and edge carries an `id` (dev-…, nvlink-…, peer-…, pcie-…) that
 * Graphviz copies into the SVG, so tests and the live page find them. Pure.
 */

import { hex } from '../text/index.ts';
import { atsdLpid, type LiveState } from './live.ts';
import type { TopologyBridge, TopologyGpu, TopologyModel } from './model.ts';

/** Fill colours for IOMMU groups, in the order groups first appear (colour-blind safe pastels). */
const GROUP_COLOURS = ['#cfe2f3', '#fde9c9', '#d9ead3', '#ead1dc', '#fff2cc', '#d0e0e3', '#e6d5f5'];
const NO_GROUP = '#f3f3f3';
const NVLINK = '#1f6fb2';
const PEER = '#2e8b57';

/** "25.78125 Gb/s" from bits per second. */
export function gbps(bps: bigint | undefined): string {
  if (bps === undefined) return 'speed ?';
  const whole = bps / 1_000_000_000n;
  const frac = (bps % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${whole}${frac ? `.${frac}` : ''} Gb/s`;
}

/** `n` bytes in the largest binary unit that divides it ("16 GiB"), else "N B". */
export function sizeText(n: bigint): string {
  for (const [unit, name] of [
    [1n << 40n, 'TiB'],
    [1n << 30n, 'GiB'],
    [1n << 20n, 'MiB'],
    [1n << 10n, 'KiB'],
  ] as const)
    if (n >= unit && n % unit === 0n) return `${n / unit} ${name}`;
  return `${n} B`;
}

/** A DOT/SVG-safe id for a PCI function: dev-0002-01-00.0. */
export function deviceId(address: string): string {
  return `dev-${address.replaceAll(':', '-')}`;
}

function esc(s: string): string {
  return s
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

/** A DOT quoted string; a line break becomes DOT's centred-line escape `\n`. */
function quote(s: string): string {
  return `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`;
}

function groupColours(model: TopologyModel): Map<number, string> {
  const order = [
    ...model.bridges.map((b) => b.iommuGroup),
    ...model.gpus.map((g) => g.iommuGroup),
  ].filter((g): g is number => g !== null);
  const colours = new Map<number, string>();
  for (const g of order)
    if (!colours.has(g)) colours.set(g, GROUP_COLOURS[colours.size % GROUP_COLOURS.length]!);
  return colours;
}

function groupText(g: number | null): string {
  return g === null ? 'no IOMMU group' : `IOMMU group ${g}`;
}

function liveGpuRows(live: LiveState | undefined, address: string): string[] {
  if (!live) return [];
  const rows: string[] = [];
  const owner = live.partitions.find((p) => p.devices.includes(address));
  const device = live.devices.get(address);
  if (owner) rows.push(`client pid ${owner.pid} · LPID ${owner.lpid}`);
  else if (device?.socket) rows.push('no client');
  const mem = live.memory.get(address);
  if (mem) rows.push(`GPU RAM touched ${sizeText(BigInt(mem.gpuRam))}`);
  return rows;
}

function gpuNode(g: TopologyGpu, colour: string, live: LiveState | undefined): string {
  const rows = [
    `<B>${esc(g.label)}</B>  ${esc(g.address)}`,
    esc(g.model),
    g.window
      ? `RAM window ${hex(g.window.base)} + ${sizeText(g.window.size)}${g.ramBytes ? ` (${sizeText(g.ramBytes)} real)` : ''}`
      : 'no memory window',
    `tgt ${g.tgt === undefined ? '?' : hex(g.tgt)}${g.window?.numaNode === undefined ? '' : ` · host NUMA ${g.window.numaNode}`}`,
    esc(groupText(g.iommuGroup)),
    ...liveGpuRows(live, g.address).map(esc),
  ];
  const table = `<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">${rows
    .map((r) => `<TR><TD>${r}</TD></TR>`)
    .join('')}</TABLE>`;
  return `    ${quote(deviceId(g.address))} [id=${quote(deviceId(g.address))}, shape=box, style="rounded,filled", fillcolor=${quote(colour)}, label=<${table}>];`;
}

function bridgeNode(
  b: TopologyBridge,
  npuPath: string,
  colour: string,
  live: LiveState | undefined,
): string {
  const lpid = live && b.atsd ? atsdLpid(live, npuPath, b.atsd.index) : undefined;
  const rows = [
    `<B>brick ${b.brick ?? '?'}</B>  ${esc(b.address)}`,
    b.atsd ? `ATSD ${b.atsd.index} ${hex(b.atsd.address)}` : 'no ATSD register',
    `tgt ${b.tgt === undefined ? '?' : hex(b.tgt)}`,
    ...(lpid === undefined ? [] : [`ATSD LPID ${lpid}`]),
    ...(b.iommuGroup === null ? ['no IOMMU group'] : []),
  ];
  const table = `<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">${rows
    .map((r) => `<TR><TD>${r}</TD></TR>`)
    .join('')}</TABLE>`;
  const id = deviceId(b.address);
  return `    ${quote(id)} [id=${quote(id)}, shape=box, style="filled", fillcolor=${quote(colour)}, fontsize=9, margin="0.06,0.03", label=<${table}>];`;
}

/** Left-to-right order within a rank: invisible flat edges between neighbours. */
function chain(ids: readonly string[]): string[] {
  return ids.slice(1).map((id, i) => `    ${quote(ids[i]!)} -> ${quote(id)} [style=invis];`);
}

/**
 * DOT text of `model` (with `live`, the connected clients, LPIDs, ATSD bindings and touched
 * GPU RAM of a running serve).
 */
export function topologyDot(model: TopologyModel, live?: LiveState): string {
  const colours = groupColours(model);
  const colourOf = (g: number | null) => (g === null ? NO_GROUP : (colours.get(g) ?? NO_GROUP));
  const out: string[] = [
    'digraph topology {',
    `  graph [id="topology", rankdir=TB, newrank=true, remincross=false, forcelabels=true, nodesep=0.45, ranksep=0.6, fontname="Helvetica", fontsize=12, label=${quote(`${model.machine} · ${model.source}${live ? ` · live from ${live.dir}` : ''}`)}, labelloc=t];`,
    '  node [fontname="Helvetica", fontsize=10];',
    '  edge [fontname="Helvetica", fontsize=9];',
  ];
  // Chips stacked: each chip's CPU under the previous chip's lowest GPU (invisible edges).
  const tops: string[] = [];
  const flat = new Set<string>();
  const bottoms: string[] = [];
  model.chips.forEach((chip, c) => {
    const chipName = chip.id === undefined ? 'chip ?' : `chip ${chip.id}`;
    const chipGroups = [
      ...new Set(
        [...chip.npus.flatMap((n) => n.bridges), ...chip.gpus].map(
          (a) => [...model.bridges, ...model.gpus].find((f) => f.address === a)?.iommuGroup,
        ),
      ),
    ];
    const groupsLabel =
      chipGroups.length === 1 && typeof chipGroups[0] === 'number'
        ? ` · IOMMU group ${chipGroups[0]}`
        : '';
    out.push(`  subgraph cluster_${c} {`, `    id=${quote(`chip-${c}`)};`);
    out.push(
      `    label=${quote(`POWER9 ${chipName}${groupsLabel}`)}; style="rounded"; color="#999999"; fontsize=12;`,
    );
    const cpu = `cpu-${c}`;
    out.push(
      `    ${quote(cpu)} [id=${quote(cpu)}, shape=box3d, label=${quote(`POWER9 ${chipName}`)}];`,
    );
    // The middle rank, left to right: each GPU's bridges with its PHB4 amid them.
    const middle: string[] = [];
    const placed = new Set<string>();
    for (const npu of chip.npus) {
      const id = `npu-${npu.domain}`;
      const first = npu.atsd[0];
      const last = npu.atsd.at(-1);
      const atsdText =
        first === undefined || last === undefined
          ? 'no ibm,mmio-atsd'
          : `ibm,mmio-atsd: ${npu.atsd.length} registers ${hex(first)}…${hex(last)}`;
      out.push(
        `    ${quote(id)} [id=${quote(id)}, shape=box, style="rounded", label=${quote(`NPU2 PHB ${hex(npu.domain).slice(2).padStart(4, '0')}\n${atsdText}`)}];`,
        `    ${quote(cpu)} -> ${quote(id)} [id=${quote(`${cpu}-${id}`)}, color="#999999", arrowhead=none];`,
      );
      for (const a of npu.bridges) {
        const b = model.bridges.find((x) => x.address === a);
        if (!b) continue;
        out.push(bridgeNode(b, npu.path, colourOf(b.iommuGroup), live));
      }
    }
    const bridgesOf = (gpu: string) =>
      chip.npus
        .flatMap((n) => n.bridges)
        .filter((a) => model.bridges.find((b) => b.address === a)?.gpu === gpu);
    for (const address of chip.gpus) {
      const g = model.gpus.find((x) => x.address === address)!;
      out.push(gpuNode(g, colourOf(g.iommuGroup), live));
      const phb = `phb-${g.domain}`;
      out.push(
        `    ${quote(phb)} [id=${quote(phb)}, shape=box, style="rounded,dashed", color="#777777", fontsize=9, label=${quote(`PHB4 ${hex(g.domain).slice(2).padStart(4, '0')}\nroot port ${g.rootPort ?? '?'}\n(no IOMMU group)`)}];`,
        `    ${quote(cpu)} -> ${quote(phb)} [id=${quote(`${cpu}-${phb}`)}, color="#cccccc", arrowhead=none];`,
        `    ${quote(phb)} -> ${quote(deviceId(g.address))} [id=${quote(`pcie-${g.address.replaceAll(':', '-')}`)}, color="#777777", style=dashed, arrowhead=none, label="PCIe", fontcolor="#777777"];`,
      );
      const own = bridgesOf(address).map(deviceId);
      const half = Math.ceil(own.length / 2);
      middle.push(...own.slice(0, half), phb, ...own.slice(half));
      for (const a of bridgesOf(address)) placed.add(a);
    }
    // Bridges with no GPU on this chip go last.
    for (const a of chip.npus.flatMap((n) => n.bridges))
      if (!placed.has(a)) middle.push(deviceId(a));
    out.push(`    { rank=same; ${middle.map(quote).join('; ')} }`, ...chain(middle));
    for (const npu of chip.npus) {
      const id = `npu-${npu.domain}`;
      const mine = new Set(npu.bridges.map(deviceId));
      for (const m of middle.filter((x) => mine.has(x)))
        out.push(
          `    ${quote(id)} -> ${quote(m)} [id=${quote(`${id}-${m}`)}, color="#bbbbbb", arrowhead=none];`,
        );
    }
    // GPUs in a row; when GPU peers are not neighbours in it (three GPUs all linked to each
    // other), every second GPU one rank lower, so that each NVLink is drawn between neighbours.
    const peersHere = model.peers.filter((p) => chip.gpus.includes(p.a) && chip.gpus.includes(p.b));
    const at = (a: string) => chip.gpus.indexOf(a);
    const stagger = peersHere.some((p) => Math.abs(at(p.a) - at(p.b)) > 1);
    const top = chip.gpus.filter((_, i) => !stagger || i % 2 === 0).map(deviceId);
    const low = chip.gpus.filter((_, i) => stagger && i % 2 === 1).map(deviceId);
    out.push(`    { rank=same; ${top.map(quote).join('; ')} }`, ...chain(top));
    for (const row of [top, low])
      for (const p of peersHere)
        if (row.includes(deviceId(p.a)) && row.includes(deviceId(p.b))) flat.add(`${p.a} ${p.b}`);
    if (low.length > 0) {
      out.push(`    { rank=same; ${low.map(quote).join('; ')} }`, ...chain(low));
      for (const l of low) out.push(`    ${quote(top[0]!)} -> ${quote(l)} [style=invis];`);
    }
    bottoms.push(low[0] ?? top[0] ?? cpu);
    tops.push(cpu);
    out.push('  }');
  });
  for (let c = 1; c < tops.length; c++)
    out.push(`  ${quote(bottoms[c - 1]!)} -> ${quote(tops[c]!)} [style=invis];`);
  // NVLink CPU↔GPU: from each brick's bridge to its GPU.
  for (const b of model.bridges) {
    if (!b.gpu || !model.gpus.some((g) => g.address === b.gpu)) continue;
    out.push(
      `  ${quote(deviceId(b.address))} -> ${quote(deviceId(b.gpu))} [id=${quote(`nvlink-${b.address.replaceAll(':', '-')}`)}, color=${quote(NVLINK)}, penwidth=2.5, arrowhead=none, label=${quote(`${gbps(b.speedBps)}${b.speedCode === undefined ? '' : ` (${hex(b.speedCode)})`}`)}, fontcolor=${quote(NVLINK)}];`,
    );
  }
  // NVLink GPU↔GPU. Between GPUs on one rank the label is an xlabel: dot cannot route a
  // labelled flat edge inside a cluster (it drops the path).
  for (const p of model.peers) {
    const kind = flat.has(`${p.a} ${p.b}`) ? 'xlabel' : 'label';
    out.push(
      `  ${quote(deviceId(p.a))} -> ${quote(deviceId(p.b))} [id=${quote(`peer-${p.a.replaceAll(':', '-')}-${p.b.replaceAll(':', '-')}`)}, color=${quote(PEER)}, penwidth=2.5, dir=none, ${kind}=${quote(`${p.links} × NVLink2\n${gbps(p.speedBps)}`)}, fontcolor=${quote(PEER)}];`,
    );
  }
  out.push('}');
  return `${out.join('\n')}\n`;
}
