/**
 * The live page's HTML: the topology picture, a device table, a heat strip per GPU, the NPU
 * tables and the trace tail, filled and updated by a few lines of script from /events
 * (EventSource). Element ids: row-<address> (data-client="none" | "pid:lpid"; cells .client,
 * .mapped, .dma, .irqs), strip-<address>
 * with one <i> per bucket (data-bytes), gpu-<address> totals, npu-tables-<domain>, trace.
 */

import { hex } from '../text/index.ts';
import type { TopologyModel } from '../topology/index.ts';
import { sizeText } from '../topology/index.ts';
import { HEAT_BUCKETS } from './snapshot.ts';

function esc(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

const SCRIPT = `
const fmt = (n) => n >= 1 << 30 ? (n / (1 << 30)).toFixed(1) + ' GiB' : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + ' MiB' : n >= 1024 ? (n / 1024).toFixed(1) + ' KiB' : n + ' B';
function render(s) {
  document.getElementById('status').textContent = 'live: serve pid ' + s.pid + ' · LPIDs in use ' + s.lpidsInUse.join(', ') +
    ' · device memory ' + fmt(s.memory.touched) + (s.memory.budget === null ? '' : ' of ' + fmt(s.memory.budget)) +
    (s.memory.refused ? ' · ' + s.memory.refused + ' writes refused' : '');
  const budget = document.getElementById('budget');
  budget.max = s.memory.budget ?? Math.max(1, s.memory.touched);
  budget.value = s.memory.touched;
  document.getElementById('budget-text').textContent = fmt(s.memory.touched) + ' populated' +
    (s.memory.budget === null ? ' (no budget)' : ' of the ' + fmt(s.memory.budget) + ' budget') +
    (s.memory.refused ? ' · ' + s.memory.refused + ' writes refused' : '');
  for (const d of s.devices) {
    const row = document.getElementById('row-' + d.address);
    if (!row) continue;
    row.dataset.client = d.client ? d.client.pid + ':' + d.client.lpid : 'none';
    row.querySelector('.client').textContent = d.client ? 'connected · pid ' + d.client.pid + ' · LPID ' + d.client.lpid : (d.served ? 'no client' : 'not served');
    row.querySelector('.mapped').textContent = d.mapped.length ? 'regions ' + d.mapped.join(', ') : '-';
    row.querySelector('.dma').textContent = d.dmaMaps ? d.dmaMaps + ' · ' + fmt(d.dmaBytes) : '-';
    row.querySelector('.irqs').textContent = d.interrupts ? d.interrupts + (d.interruptsDelivered !== d.interrupts ? ' (' + d.interruptsDelivered + ' signalled)' : '') : '-';
    const node = document.getElementById('dev-' + d.address.replaceAll(':', '-'));
    if (node) node.classList.toggle('held', !!d.client);
  }
  for (const g of s.gpus) {
    const t = document.getElementById('gpu-' + g.address);
    if (t) t.textContent = 'GPU RAM ' + fmt(g.gpuRam) + ' · BARs ' + fmt(g.bars);
    const strip = document.getElementById('strip-' + g.address);
    if (!strip) continue;
    g.strip.forEach((bytes, i) => {
      const cell = strip.children[i];
      cell.dataset.bytes = String(bytes);
      const f = g.bucketBytes ? bytes / g.bucketBytes : 0;
      cell.style.background = bytes === 0 ? '#eee' : 'hsl(' + (50 - 50 * Math.min(1, f * 50)) + ',90%,' + (70 - 30 * Math.min(1, f * 50)) + '%)';
      cell.title = fmt(bytes) + ' touched';
    });
  }
  for (const n of s.npus) {
    const el = document.getElementById('npu-tables-' + n.domain);
    if (el) el.textContent = 'ATSD [index:LPID ×launches]: ' + n.atsd.map((a) => a.index + ':' + a.lpid + (a.msrHv ? 'h' : '') + ' ×' + a.launches).join(' ') +
      ' · XTS BDF→LPID: ' + (n.bdfMap.map((e) => e.bdf.toString(16).padStart(4, '0') + '→' + e.lpid).join(' ') || '-') +
      ' · XTS PID map: ' + (n.pidMap.map((p) => '[' + p.index + '] LPAR ' + p.lparShort + ' ' + p.msr + ' refs ' + p.refs).join(' ') || '-');
  }
  document.getElementById('trace').textContent = s.trace.join('\\n') || '(no tracepoints yet)';
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}
const events = new EventSource('/events');
events.onmessage = (e) => render(JSON.parse(e.data));
events.onerror = () => { document.getElementById('status').textContent = 'disconnected from serve'; };
`;

/** The page for `topology`, with `svg` its picture. */
export function livePageHtml(topology: TopologyModel, svg: string): string {
  const label = new Map(topology.gpus.map((g) => [g.address, g.label]));
  const rows = [...topology.gpus, ...topology.bridges]
    .sort((a, b) => a.address.localeCompare(b.address))
    .map((d) => {
      const isGpu = label.has(d.address);
      const what = isGpu
        ? `GPU ${esc(label.get(d.address) ?? '')}`
        : `bridge → ${esc(label.get((d as { gpu?: string }).gpu ?? '') ?? '-')}`;
      return `<tr id="row-${d.address}" data-client="none"><td>${d.address}</td><td>${what}</td><td class="client">…</td><td class="mapped"></td><td class="dma"></td><td class="irqs"></td></tr>`;
    })
    .join('');
  const strips = topology.gpus
    .map(
      (g) =>
        `<div class="gpu"><b>${esc(g.label)}</b> ${g.address} · ${g.ramBytes ? sizeText(g.ramBytes) : '?'} in ${HEAT_BUCKETS} buckets · <span id="gpu-${g.address}"></span><div class="strip" id="strip-${g.address}">${'<i data-bytes="0"></i>'.repeat(HEAT_BUCKETS)}</div></div>`,
    )
    .join('');
  const npus = topology.chips
    .flatMap((c) => c.npus)
    .map(
      (n) =>
        `<p><b>NPU PHB ${hex(n.domain).slice(2).padStart(4, '0')}</b> <span id="npu-tables-${n.domain}"></span></p>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vfio-nvlink2 live: ${esc(topology.machine)}</title>
<style>
body { font: 14px Helvetica, Arial, sans-serif; margin: 16px; color: #222; }
h2 { font-size: 15px; margin-top: 20px; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 2px 8px; font-family: Menlo, monospace; font-size: 12px; }
tr[data-client]:not([data-client="none"]) td { background: #e3f5e1; }
.strip { display: flex; height: 16px; margin: 2px 0 8px; border: 1px solid #ccc; width: 640px; }
.strip i { flex: 1; background: #eee; border-right: 1px solid #fff; }
#picture svg { max-width: 100%; height: auto; }
g.held > path, g.held > polygon { stroke: #d62728; stroke-width: 4; }
pre { background: #f7f7f7; padding: 8px; font-size: 11px; max-height: 320px; overflow: auto; }
</style></head>
<body>
<h1>${esc(topology.machine)} · live</h1>
<p id="status">connecting…</p>
<div id="picture">${svg.slice(svg.indexOf('<svg'))}</div>
<h2>Devices</h2>
<table><thead><tr><th>device</th><th>what</th><th>client (partition)</th><th>mmap given</th><th>DMA maps</th><th>interrupts</th></tr></thead><tbody>${rows}</tbody></table>
<h2>GPU RAM touched (heat strip over the real RAM)</h2>
<p>Device memory: <meter id="budget" min="0" max="1" value="0" style="width: 320px"></meter> <span id="budget-text"></span></p>${strips}
<h2>NPUs</h2>${npus}
<h2>Trace (newest last)</h2><pre id="trace"></pre>
<script>${SCRIPT}</script>
</body></html>
`;
}
