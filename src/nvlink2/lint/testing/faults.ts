/**
 * Test support: every fault `dt generate` can inject into the NVLink2 part of the built-in
 * 6-GPU Witherspoon, as generator options with the CLI spelling: `--omit PROP@NODE` for every
 * property of one node of each NVLink2 kind (bridge 0 and a second-link bridge, GPU, link, npu,
 * NPU PHB, GPU memory), `--omit PROP@*` for the NVLink2 properties, every `--atsd-entries` and
 * `--memory-reg-u64s` short of the right value, both `--p100` styles, `--link-speed none` and
 * codes skiboot does not define. Omits on nodes NVLink2 does not read (xscom, the GPUs' PHB4s
 * and root ports, the root) are not NVLink2 faults: dtc's checks and dt-schema cover those.
 */
import type { Fdt } from '../../../fdt/tree.ts';
import { buildHost } from '../../../platform/host.ts';
import {
  generateWitherspoon,
  resolveFaultTarget,
  type WitherspoonOptions,
} from '../../../platform/witherspoon/index.ts';

export interface GeneratorFault {
  /** The `dt generate` flags. */
  readonly flags: string;
  readonly options: Partial<WitherspoonOptions>;
}

/** Representative nodes by kind: an omit target `dt generate` accepts. */
export const OMIT_TARGETS: readonly { kind: string; target: string }[] = [
  { kind: 'bridge 0 of a GPU', target: '0000:00:00.0' },
  { kind: 'bridge (second link)', target: '0001:00:01.1' },
  { kind: 'GPU', target: 'GPU0' },
  { kind: 'link', target: '/xscom@603fc00000000/npu@5011000/link@1' },
  { kind: 'npu', target: '/xscom@603fc00000000/npu@5011000' },
  { kind: 'NPU PHB', target: '/pciex@6030200000000' },
  { kind: 'GPU memory', target: '/memory@3e000000000' },
];

/** The NVLink2 properties `--omit PROP@*` takes out of every node. */
export const OMIT_EVERYWHERE = [
  'memory-region',
  'ibm,device-tgt-addr',
  'ibm,nvlink',
  'ibm,nvlink-speed',
  'ibm,gpu',
  'ibm,npu',
  'ibm,nvlink-peers',
  'ibm,mmio-atsd',
  'ibm,npu-link-index',
  'ibm,npu-group-id',
  'nvidia,link-speed',
  'ibm,link-speed',
  'linux,usable-memory',
  'ibm,associativity',
] as const;

export function generatorFaults(): GeneratorFault[] {
  const clean: Fdt = generateWitherspoon({});
  const out: GeneratorFault[] = [];
  for (const { target } of OMIT_TARGETS) {
    const [node] = resolveFaultTarget(clean, target, pciOfGenerated(clean));
    if (!node) throw new Error(`no node ${target}`);
    for (const p of node.properties) {
      out.push({
        flags: `--omit ${p.name}@${target}`,
        options: { omit: [{ property: p.name, target }] },
      });
    }
  }
  for (const property of OMIT_EVERYWHERE) {
    if (![...clean.root.walk()].some((n) => n.hasProperty(property))) continue;
    out.push({ flags: `--omit ${property}@*`, options: { omit: [{ property, target: '*' }] } });
  }
  for (let n = 0; n < 8; n++)
    out.push({ flags: `--atsd-entries ${n}`, options: { atsdEntries: n } });
  for (const n of [0, 1, 3, 4, 5, 6, 7, 8])
    out.push({ flags: `--memory-reg-u64s ${n}`, options: { memoryRegU64s: n } });
  out.push({ flags: '--p100 plain', options: { p100: 'plain' } });
  out.push({ flags: '--p100 nvlink1', options: { p100: 'nvlink1' } });
  out.push({ flags: '--link-speed none', options: { linkSpeed: undefined } });
  out.push({ flags: '--link-speed 5', options: { linkSpeed: 5 } });
  out.push({ flags: '--link-speed 0xff', options: { linkSpeed: 0xff } });
  return out;
}

/** The generated tree's functions by PCI name (the host model names them as the generator does). */
function pciOfGenerated(fdt: Fdt) {
  return buildHost(fdt).functions.map((f) => ({
    phb: f.phb.node,
    node: f.node,
    bus: f.address.bus,
    devfn: f.devfn,
    name: f.name,
  }));
}
