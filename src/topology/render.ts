/**
 * Layout and pictures: Graphviz's `dot` engine (Graphviz compiled to WebAssembly,
 * @hpcc-js/wasm-graphviz) turns the DOT text into SVG; the HTML page is that SVG with a legend
 * and the tables behind it (IOMMU groups, ATSD registers, GPU memory windows).
 */
import { Graphviz } from '@hpcc-js/wasm-graphviz';
import { hex } from '../text/index.ts';
import { gbps, sizeText } from './dot.ts';
import type { LiveState } from './live.ts';
import type { TopologyModel } from './model.ts';

let graphviz: Promise<Graphviz> | undefined;

/** SVG of `dot`, laid out by Graphviz `dot`. @throws Error with Graphviz's message for bad DOT */
export async function renderSvg(dot: string): Promise<string> {
  graphviz ??= Graphviz.load();
  const gv = await graphviz;
  return gv.layout(dot, 'svg', 'dot');
}

function esc(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** The groups with their members, in group order. */
export function groupMembers(model: TopologyModel): Map<number, string[]> {
  const groups = new Map<number, string[]>();
  for (const f of [...model.bridges, ...model.gpus, ...model.others]) {
    if (f.iommuGroup === null) continue;
    groups.set(f.iommuGroup, [...(groups.get(f.iommuGroup) ?? []), f.address]);
  }
  return new Map([...groups.entries()].sort((a, b) => a[0] - b[0]));
}

/** A standalone HTML page: the picture, its legend and the tables behind it. */
export function topologyHtml(model: TopologyModel, svg: string, live?: LiveState): string {
  const svgBody = svg.slice(svg.indexOf('<svg'));
  const gpuName = new Map(model.gpus.map((g) => [g.address, g.label]));
  const groups = table(
    ['IOMMU group', 'members'],
    [...groupMembers(model)].map(([g, m]) => [String(g), m.join(' ')]),
  );
  const atsd = table(
    ['bridge', 'brick', 'GPU', 'ATSD register', 'address', 'tgt', 'speed'],
    model.bridges.map((b) => [
      b.address,
      b.brick === undefined ? '?' : String(b.brick),
      b.gpu ? `${gpuName.get(b.gpu) ?? ''} ${b.gpu}` : '-',
      b.atsd ? String(b.atsd.index) : '-',
      b.atsd ? hex(b.atsd.address) : '-',
      b.tgt === undefined ? '?' : hex(b.tgt),
      gbps(b.speedBps),
    ]),
  );
  const windows = table(
    ['GPU', 'address', 'window', 'size', 'real RAM', 'tgt', 'host NUMA', 'IOMMU group'],
    model.gpus.map((g) => [
      g.label,
      g.address,
      g.window ? hex(g.window.base) : '-',
      g.window ? sizeText(g.window.size) : '-',
      g.ramBytes ? sizeText(g.ramBytes) : '?',
      g.tgt === undefined ? '?' : hex(g.tgt),
      g.window?.numaNode === undefined ? '-' : String(g.window.numaNode),
      g.iommuGroup === null ? '-' : String(g.iommuGroup),
    ]),
  );
  const peers = table(
    ['GPU', 'GPU', 'NVLinks', 'speed'],
    model.peers.map((p) => [
      `${gpuName.get(p.a) ?? ''} ${p.a}`,
      `${gpuName.get(p.b) ?? ''} ${p.b}`,
      String(p.links),
      gbps(p.speedBps),
    ]),
  );
  const title = `${model.machine} topology`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body { font: 14px Helvetica, Arial, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; } h2 { font-size: 15px; margin-top: 24px; }
table { border-collapse: collapse; margin: 6px 0; } th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; font-family: Menlo, Consolas, monospace; font-size: 12px; }
th { background: #f0f0f0; font-family: Helvetica, Arial, sans-serif; }
.legend span { display: inline-block; margin-right: 18px; }
.nv { color: #1f6fb2; font-weight: bold; } .peer { color: #2e8b57; font-weight: bold; } .pcie { color: #777; }
</style></head>
<body>
<h1>${esc(title)}</h1>
<p>${esc(model.source)}${live ? ` · live from ${esc(live.dir)} · ${live.partitions.length} client partitions · ${sizeText(BigInt(live.touched))} device memory touched` : ''}</p>
<p class="legend"><span class="nv">━ NVLink2 CPU↔GPU (NPU brick → GPU)</span><span class="peer">━ NVLink2 GPU↔GPU</span><span class="pcie">╌ PCIe</span><span>fill colour: IOMMU group</span></p>
<div id="picture">${svgBody}</div>
<p>GPU↔GPU speed: the tree gives speeds only for NPU links; a GPU↔GPU link runs at the rate of its GPUs' NVLink bricks.</p>
<h2>IOMMU groups</h2>${groups}
<h2>NVLink bridges and ATSD registers</h2>${atsd}
<h2>GPU memory windows</h2>${windows}
<h2>GPU↔GPU NVLinks</h2>${peers}
</body></html>
`;
}
