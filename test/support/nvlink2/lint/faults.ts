/**
 * Test support: every fault `dt generate` can inject into the NVLink2 part of the built-in
 * 6-GPU Witherspoon, as generator options with the CLI spelling: `--omit PROP@NODE` for every
 * property of one node of each NVLink2 kind (bridge 0 and a second-link bridge, GPU, link, npu,
 * NPU PHB, GPU memory), `--omit PROP@*` for the NVLink2 properties, every `--atsd-entries` and
 * `--memory-reg-u64s` short of the right value, both `--p100` styles, `--link-speed none` and
 * codes skiboot does not define. Omits on nodes NVLink2 does not read (xscom, the GPUs' PHB4s
 * and root ports, the root) are not NVLink2 faults: dtc's checks and dt-schema cover those.
 * Each fault carries the one rule that must explain it (the coverage table, `npm run
 * doctor-coverage`, README "Coverage").
 */
import type { Fdt } from '../../../../src/fdt/index.ts';
import {
  buildHost,
  generateWitherspoon,
  resolveFaultTarget,
  type WitherspoonOptions,
} from '../../../../src/platform/index.ts';

export interface GeneratorFault {
  /** The `dt generate` flags (without those of the clean variant it is injected into). */
  readonly flags: string;
  /** The clean variant's options with the fault added. */
  readonly options: Partial<WitherspoonOptions>;
  /** The one rule that finds it. */
  readonly rule: string;
}

/** Which rule explains each generator fault: the first pattern its flags match. */
export const FAULT_RULES: readonly (readonly [RegExp, string])[] = [
  [/^--omit (memory-region|ibm,device-tgt-addr|ibm,nvlink)@/, 'NV004'],
  [/^--omit (ibm,nvlink-speed|nvidia,link-speed|ibm,link-speed)@|^--link-speed/, 'NV009'],
  [/^--omit (ibm,gpu|ibm,npu)@/, 'NV002'],
  [/^--omit phandle@(?!\/pciex@)/, 'NV001'],
  [/^--omit (vendor-id|device-id|reg)@([0-9a-f]{4}:|GPU)/, 'NV015'],
  // Without its linux,pci-domain, a PHB's domain (its index) is another PHB's skiboot id.
  [/^--omit (device_type|linux,pci-domain)@\/pciex@/, 'NV015'],
  [/^--omit (ibm,npu-link-index|ibm,mmio-atsd)@|^--atsd-entries/, 'NV010'],
  [/^--omit (ibm,nvlink-peers|ibm,npu-group-id|ibm,npu-links|ibm,links)@/, 'NV011'],
  [
    /^--omit (device_type|compatible|reg)@\/memory|^--omit linux,usable-memory@|^--memory-reg/,
    'NV006',
  ],
  [/^--omit ibm,associativity@/, 'NV007'],
  [/^--p100/, 'NV013'],
  [/./, 'NV014'],
];

/** The rule FAULT_RULES names for `flags`. */
export function faultRule(flags: string): string {
  return FAULT_RULES.find(([re]) => re.test(flags))![1];
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

/**
 * Every fault `dt generate` can inject into the clean variant `base` (default: the built-in
 * 6-GPU tree). The GPU memory target is GPU0's memory node, whose address the memory map moves.
 */
export function generatorFaults(base: Partial<WitherspoonOptions> = {}): GeneratorFault[] {
  const clean: Fdt = generateWitherspoon(base);
  const pci = pciOfGenerated(clean);
  const out: GeneratorFault[] = [];
  const add = (flags: string, fault: Partial<WitherspoonOptions>) =>
    out.push({ flags, options: { ...base, ...fault }, rule: faultRule(flags) });
  for (const { target } of representativeTargets(clean, pci)) {
    const [node] = resolveFaultTarget(clean, target, pci);
    if (!node) throw new Error(`no node ${target}`);
    for (const p of node.properties)
      add(`--omit ${p.name}@${target}`, { omit: [{ property: p.name, target }] });
  }
  for (const property of OMIT_EVERYWHERE) {
    if (![...clean.root.walk()].some((n) => n.hasProperty(property))) continue;
    add(`--omit ${property}@*`, { omit: [{ property, target: '*' }] });
  }
  for (let n = 0; n < 8; n++) add(`--atsd-entries ${n}`, { atsdEntries: n });
  for (const n of [0, 1, 3, 4, 5, 6, 7, 8]) add(`--memory-reg-u64s ${n}`, { memoryRegU64s: n });
  add('--p100 plain', { p100: 'plain' });
  add('--p100 nvlink1', { p100: 'nvlink1' });
  add('--link-speed none', { linkSpeed: undefined });
  add('--link-speed 5', { linkSpeed: 5 });
  add('--link-speed 0xff', { linkSpeed: 0xff });
  return out;
}

/**
 * OMIT_TARGETS as this tree names them: the bridges by their PCI names (`--pci-domains` makes
 * the domain skiboot's PHB id), the GPU memory node by its address (the memory map moves it).
 */
function representativeTargets(
  fdt: Fdt,
  pci: ReturnType<typeof pciOfGenerated>,
): { kind: string; target: string }[] {
  const bridges = pci.filter((f) => f.node.hasProperty('ibm,gpu'));
  const [first] = bridges;
  const second = bridges.find((f) => f.phb !== first?.phb && f.name.endsWith(':00:01.1'));
  const ref = first?.node.getProperty('memory-region');
  const memory =
    ref && fdt.findByPhandle(new DataView(ref.value.buffer, ref.value.byteOffset).getUint32(0));
  if (!first || !second || !memory) throw new Error('no bridges or GPU memory node to aim at');
  const targets: Record<string, string> = {
    'bridge 0 of a GPU': first.name,
    'bridge (second link)': second.name,
    'GPU memory': memory.path,
  };
  return OMIT_TARGETS.map((t) => ({ ...t, target: targets[t.kind] ?? t.target }));
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
