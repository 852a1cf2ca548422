/**
 * The topology picture against the host model: the DOT text and the SVG Graphviz lays out from
 * it hold every GPU and NVLink bridge, every CPU↔GPU NVLink with the speed of its bridge's
 * `ibm,nvlink-speed` (read here from the tree, not from the model), every GPU↔GPU NVLink of
 * the Witherspoon wiring (skiboot witherspoon.c, written out by hand below) with a drawn path,
 * tgt addresses, ATSD registers and IOMMU groups.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readU32, readU64 } from '../fdt/index.ts';
import type { Host } from '../platform/index.ts';
import { buildHost, generateWitherspoon } from '../platform/index.ts';
import { deviceId, topologyDot } from './dot.ts';
import { buildTopology } from './model.ts';
import { renderSvg, topologyHtml } from './render.ts';

interface SvgItem {
  readonly id: string;
  readonly kind: 'node' | 'edge';
  readonly texts: string[];
  readonly hasPath: boolean;
}

/** Graphviz's SVG: every <g id=… class="node|edge"> with its text lines and whether it drew a path. */
function parseSvg(svg: string): Map<string, SvgItem> {
  const decode = (s: string) =>
    s
      .replaceAll('&#45;', '-')
      .replaceAll('&gt;', '>')
      .replaceAll('&lt;', '<')
      .replaceAll('&#160;', ' ')
      .replaceAll('&amp;', '&');
  const items = new Map<string, SvgItem>();
  const groups = svg.split(/(?=<g id=")/);
  for (const g of groups) {
    const head = /^<g id="([^"]+)" class="(node|edge)">/.exec(g);
    if (!head) continue;
    const body = g.slice(0, g.indexOf('</g>'));
    const texts = [...body.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => decode(m[1]!));
    items.set(decode(head[1]!), {
      id: decode(head[1]!),
      kind: head[2] as 'node' | 'edge',
      texts,
      hasPath: /<path /.test(body),
    });
  }
  return items;
}

const hex = (n: bigint | number) => `0x${n.toString(16)}`;
const edgeId = (prefix: string, a: string) => `${prefix}-${a.replaceAll(':', '-')}`;

/** Witherspoon GPU↔GPU NVLinks per socket (witherspoon.c, nvlink2.md §2 link tables). */
const PEERS_6GPU: [string, string, number][] = [
  ['0002:01:00.0', '0003:02:00.0', 2],
  ['0002:01:00.0', '0004:03:00.0', 2],
  ['0003:02:00.0', '0004:03:00.0', 2],
  ['0005:01:00.0', '0006:02:00.0', 2],
  ['0005:01:00.0', '0007:03:00.0', 2],
  ['0006:02:00.0', '0007:03:00.0', 2],
];
const PEERS_4GPU: [string, string, number][] = [
  ['0002:01:00.0', '0003:02:00.0', 3],
  ['0004:01:00.0', '0005:02:00.0', 3],
];

function expectations(host: Host) {
  const bridges = host.functions.filter((f) => f.role === 'bridge');
  const gpus = host.functions.filter((f) => f.role === 'gpu');
  return { bridges, gpus };
}

for (const [name, gpuCount, peers] of [
  ['6-GPU', 6, PEERS_6GPU],
  ['4-GPU', 4, PEERS_4GPU],
] as const) {
  describe(`topology of the ${name} Witherspoon`, async () => {
    const host = buildHost(generateWitherspoon({ gpus: gpuCount }));
    const model = buildTopology(host);
    const dot = topologyDot(model);
    const svg = parseSvg(await renderSvg(dot));
    const { bridges, gpus } = expectations(host);

    it('every GPU and bridge is a node, with its address, tgt and IOMMU group', () => {
      assert.equal(gpus.length, gpuCount);
      assert.equal(bridges.length, 12);
      for (const f of [...gpus, ...bridges]) {
        const node = svg.get(deviceId(f.name));
        assert.ok(node && node.kind === 'node', `${f.name} drawn`);
        const text = node.texts.join('\n');
        assert.match(text, new RegExp(f.name.replaceAll('.', '\\.')));
        if (f.role === 'bridge') {
          assert.match(text, new RegExp(`tgt ${hex(readU64(f.node, 'ibm,device-tgt-addr'))}`));
          const brick = readU32(host.nvlinkOfBridge(f).link!, 'ibm,npu-link-index');
          // vfio_pci_ibm_npu2_init: the ATSD register is ibm,mmio-atsd[link index].
          assert.match(text, new RegExp(`ATSD ${brick} ${hex(host.atsdAddresses(f.phb)[brick]!)}`));
        } else {
          assert.match(text, new RegExp(`IOMMU group ${f.iommuGroup}`));
          assert.match(text, /RAM window 0x[0-9a-f]+ \+ 128 GiB/);
        }
      }
    });

    it('every CPU↔GPU NVLink: bridge to its ibm,gpu, drawn, labelled with its ibm,nvlink-speed', () => {
      for (const b of bridges) {
        const gpu = host.gpuOfBridge(b)!;
        const code = readU32(b.node, 'ibm,nvlink-speed');
        assert.equal(code, 0x8);
        const line = `"${deviceId(b.name)}" -> "${deviceId(gpu.name)}"`;
        assert.ok(dot.includes(line), `${line} in the DOT`);
        const edge = svg.get(edgeId('nvlink', b.name));
        assert.ok(edge?.hasPath, `${b.name} → ${gpu.name} drawn`);
        assert.deepEqual(edge.texts, ['25.78125 Gb/s (0x8)']);
      }
    });

    it('every GPU↔GPU NVLink, drawn, with its count and speed', () => {
      assert.equal(model.peers.length, peers.length);
      for (const [a, b, links] of peers) {
        const edge = svg.get(`peer-${a.replaceAll(':', '-')}-${b.replaceAll(':', '-')}`);
        assert.ok(edge?.hasPath, `${a} ↔ ${b} drawn`);
        assert.deepEqual(edge.texts, [`${links} × NVLink2`, '25.78125 Gb/s']);
      }
    });

    it('the NPU PHBs with their ATSD registers, and the PHB4s', () => {
      for (const phb of host.phbs) {
        const id = phb.isNpu ? `npu-${phb.domain}` : `phb-${phb.domain}`;
        assert.ok(svg.get(id)?.kind === 'node', `${id} drawn`);
      }
      const html = topologyHtml(model, '<svg></svg>');
      for (const b of bridges) assert.match(html, new RegExp(b.name.replaceAll('.', '\\.')));
    });
  });
}
