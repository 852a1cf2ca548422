/**
 * The doctor's rules: stable IDs (NV001… for the tree's shape and cross references, NV100… for
 * what the replayed kernel init does that no shape rule explains), a default level, the kernels
 * they concern, what goes wrong, the sources, and an example `--explain` runs for real.
 * IDs are never reused or renumbered: CI configurations and SARIF baselines key on them.
 */
import { cells, type Fdt } from '../../fdt/index.ts';
import type { WitherspoonOptions } from '../../platform/index.ts';
import { ALL_KERNELS } from './kernels.ts';
import type { Level } from './types.ts';

/** A tree that shows a rule's fault, for `--explain` and its tests. */
export interface RuleExample {
  /** What the example tree is, as `dt generate` flags or in words. */
  readonly description: string;
  /** The generator options of the example tree. */
  readonly options: Partial<WitherspoonOptions>;
  /** A hand edit after generating, for faults the generator has no flag for. */
  readonly edit?: (fdt: Fdt) => void;
}

/**
 * One lint rule: id (NVnnn), name, default level, what it checks, what happens when it does not
 * hold, the kernels affected, its sources, whether it is fixable, and an example.
 */
export interface Rule {
  readonly id: string;
  /** Short kebab-case name (SARIF reportingDescriptor.name). */
  readonly name: string;
  readonly level: Level;
  /** One line: what the rule checks. */
  readonly summary: string;
  /** What goes wrong when it does not hold, and in which kernels. */
  readonly impact: string;
  /** The kernels 5.0–5.12 the rule concerns (a finding narrows it to what its replay shows). */
  readonly kernels: string;
  /** Primary sources, file and function. */
  readonly sources: readonly string[];
  /** Whether findings can carry a derived fix. */
  readonly fixable: 'yes' | 'some' | 'no';
  readonly example?: RuleExample;
}

const set = (fdt: Fdt, path: string, name: string, value: Uint8Array) => {
  const node = fdt.findNode(path);
  if (!node) throw new Error(`example: no node ${path}`);
  node.setProperty(name, value);
};

const BRIDGE_0_1 = '/pciex@6030200000000/unknown-bridge@0,1';
const BRIDGE_1_0_0 = '/pciex@6230200000000/unknown-bridge@0';

/** Every rule of `dt doctor`, in id order. */
export const RULES: readonly Rule[] = [
  {
    id: 'NV001',
    name: 'dangling-phandle',
    level: 'error',
    summary:
      'ibm,gpu, ibm,npu, ibm,nvlink, memory-region, ibm,npcq and ibm,nvlink-peers hold phandles of nodes that exist (one cell where the kernel reads one), and ibm,gpu/ibm,npu lead to PCI function nodes',
    impact:
      'of_parse_phandle finds nothing: the GPU (ibm,npu[0]) or bridge (ibm,gpu) stays a plain vfio-pci device, memory-region fails GPU RAM init with EINVAL, ibm,nvlink fails ATSD init (WARN_ON, ENODEV)',
    kernels: ALL_KERNELS,
    sources: [
      'Linux drivers/vfio/pci/vfio_pci_nvlink2.c vfio_pci_nvidia_v100_nvlink2_init, vfio_pci_ibm_npu2_init',
      'Linux arch/powerpc/platforms/powernv/npu-dma.c pnv_pci_get_npu_dev, pnv_pci_get_gpu_dev',
      'skiboot hw/npu2.c npu2_dn_fixup, npu2_dn_fixup_gmb (every node skiboot makes has a phandle)',
    ],
    fixable: 'some',
    example: {
      description:
        '--omit phandle@/xscom@603fc00000000/npu@5011000/link@1 (a link node without its phandle)',
      options: {
        omit: [{ property: 'phandle', target: '/xscom@603fc00000000/npu@5011000/link@1' }],
      },
    },
  },
  {
    id: 'NV002',
    name: 'gpu-bridge-link',
    level: 'error',
    summary:
      "a GPU's ibm,npu lists exactly the bridges whose ibm,gpu names it, and a bridge and the GPU of its slot (ibm,loc-code) are linked both ways",
    impact:
      'the GPU RAM init follows ibm,npu[0], the ATSD init follows ibm,gpu: the side that is missing leaves its device a plain vfio-pci device (ENODEV) and the GPU and its bridges fall into different IOMMU groups',
    kernels: ALL_KERNELS,
    sources: [
      'skiboot hw/npu2.c npu2_dn_fixup, npu2_append_phandle',
      'Linux arch/powerpc/platforms/powernv/npu-dma.c pnv_pci_get_npu_dev, pnv_pci_get_gpu_dev',
    ],
    fixable: 'yes',
    example: {
      description: '--omit ibm,gpu@0000:00:00.1',
      options: { omit: [{ property: 'ibm,gpu', target: '0000:00:00.1' }] },
    },
  },
  {
    id: 'NV003',
    name: 'bridges-share-memory',
    level: 'error',
    summary: 'all bridges of a GPU name the same memory node in memory-region',
    impact:
      "the GPU RAM region comes from bridge 0's memory-region, each bridge's tgt from its own: bridges disagreeing map one GPU's RAM at two places, and QEMU groups devices by tgt",
    kernels: ALL_KERNELS,
    sources: [
      'skiboot hw/npu2.c npu2_dn_fixup_gmb (one memory node per GPU group, npu2_get_gpu_base)',
    ],
    fixable: 'yes',
    example: {
      description: "bridge 0000:00:00.1's memory-region and tgt moved to GPU1's memory node",
      options: {},
      edit: (fdt) => {
        const other = fdt.findNode('/pciex@6030200000000/unknown-bridge@1');
        const p = other?.getProperty('memory-region');
        const t = other?.getProperty('ibm,device-tgt-addr');
        if (!p || !t) throw new Error('example: no unknown-bridge@1');
        set(fdt, BRIDGE_0_1, 'memory-region', p.value);
        set(fdt, BRIDGE_0_1, 'ibm,device-tgt-addr', t.value);
      },
    },
  },
  {
    id: 'NV004',
    name: 'bridge-fixups',
    level: 'error',
    summary:
      'every bridge of an NVLink2 GPU has the memory-region, ibm,device-tgt-addr and ibm,nvlink that skiboot adds',
    impact:
      'no memory-region: GPU RAM init ENODEV (EINVAL in 5.0–5.1), ATSD init ENODEV from 5.2; no ibm,device-tgt-addr: "No ibm,device-tgt-addr found", EFAULT (enabling fails); no ibm,nvlink: ATSD init WARN_ON, ENODEV',
    kernels: ALL_KERNELS,
    sources: [
      'skiboot hw/npu2.c npu2_dn_fixup, npu2_dn_fixup_gmb',
      'Linux drivers/vfio/pci/vfio_pci_nvlink2.c (5.0–5.12)',
    ],
    fixable: 'yes',
    example: {
      description: '--omit ibm,device-tgt-addr@0000:00:00.0',
      options: { omit: [{ property: 'ibm,device-tgt-addr', target: '0000:00:00.0' }] },
    },
  },
  {
    id: 'NV005',
    name: 'tgt-compression',
    level: 'error',
    summary:
      "ibm,device-tgt-addr is skiboot's Coral compression of the GPU memory base: (b>>42&1)<<42 | (b>>45&3)<<43 | (b>>49&3)<<45 | b&(2^43-1)",
    impact:
      'the subdriver passes the tgt through unchecked (NVLINK2_SSATGT capability): the GPU translates addresses to the wrong system address, and QEMU puts the GPU and its bridges in different slots',
    kernels: ALL_KERNELS,
    sources: [
      'skiboot hw/npu2.c npu2_dn_fixup_gmb ("Coral mode address compression", NPU2 workbook figure 3.5)',
    ],
    fixable: 'yes',
    example: {
      description: "bridge 0001:00:00.0's tgt set to its memory base 0x23e000000000 uncompressed",
      options: {},
      edit: (fdt) => set(fdt, BRIDGE_1_0_0, 'ibm,device-tgt-addr', cells.u64(0x23e000000000n)),
    },
  },
  {
    id: 'NV006',
    name: 'gpu-memory-node',
    level: 'error',
    summary:
      'a GPU memory node has device_type "memory", compatible "ibm,coherent-device-memory", a reg of exactly two u64 (base, non-zero size) and linux,usable-memory <base 0>',
    impact:
      'reg not two u64: GPU RAM init EINVAL (enabling fails); no linux,usable-memory <base 0>: Linux onlines the GPU aperture as system RAM at boot (drivers/of/fdt.c early_init_dt_scan_memory)',
    kernels: ALL_KERNELS,
    sources: [
      'skiboot hw/npu2.c npu2_create_memory_dn',
      'Linux drivers/vfio/pci/vfio_pci_nvlink2.c of_property_read_variable_u64_array(mem, "reg", …, 2, 2)',
      'Linux drivers/of/fdt.c early_init_dt_scan_memory (linux,usable-memory)',
    ],
    fixable: 'yes',
    example: { description: '--memory-reg-u64s 3', options: { memoryRegU64s: 3 } },
  },
  {
    id: 'NV007',
    name: 'numa-associativity',
    level: 'error',
    summary:
      'every GPU memory node has ibm,associativity <n id…> whose NUMA id (its last cell) no other memory node has',
    impact:
      "two GPUs' RAM in one NUMA node (or in a CPU's): the host onlines them together and NUMA placement of GPU memory breaks",
    kernels: ALL_KERNELS,
    sources: [
      'skiboot hw/npu2.c npu2_create_memory_dn (chip id 255, 254, … and <4 id id id id>)',
      'Linux arch/powerpc/mm/numa.c of_node_to_nid_single',
    ],
    fixable: 'yes',
    example: {
      description: "/memory@3c000000000 given /memory@3e000000000's associativity",
      options: {},
      edit: (fdt) =>
        set(fdt, '/memory@3c000000000', 'ibm,associativity', cells.u32(4, 255, 255, 255, 255)),
    },
  },
  {
    id: 'NV008',
    name: 'memory-overlap',
    level: 'error',
    summary: 'GPU memory ranges (reg) overlap neither each other nor system RAM',
    impact:
      'two owners of one physical range: the GPU RAM region maps memory the host (or another GPU) uses',
    kernels: ALL_KERNELS,
    sources: ['skiboot hw/phys-map.c (GPU_MEM_4T_DOWN/UP windows, one per GPU)'],
    fixable: 'no',
    example: {
      description:
        'a 4 TiB system RAM node memory@0, which the 4T-down GPU windows (from 0x340_0000_0000) overlap',
      options: {},
      edit: (fdt) => {
        const mem = fdt.root.addChild('memory@0');
        mem.setProperty('device_type', cells.string('memory'));
        mem.setProperty('reg', cells.u64(0n, 0x400_0000_0000n));
      },
    },
  },
  {
    id: 'NV009',
    name: 'link-speed',
    level: 'error',
    summary:
      "a bridge's ibm,nvlink-speed, and its link's nvidia,link-speed, are a code skiboot defines (0x3 20 Gbps, 0x8 25.78125 Gbps, 0x9 25 Gbps) and agree, and ibm,link-speed is that code's rate in bps",
    impact:
      'no ibm,nvlink-speed: ATSD init "No ibm,nvlink-speed found", EFAULT (enabling fails); another value goes to the guest unchecked (NVLINK2_LNKSPD capability, the guest driver trains the link with it)',
    kernels: ALL_KERNELS,
    sources: [
      'skiboot hdata/spira.c add_npu (the three codes), hw/npu2.c npu2_dn_fixup (copies nvidia,link-speed)',
      'skiboot platforms/astbmc/*.c NVIDIA_LINK_SPEED_* ("nvidia,link-speed uses a magic driver value")',
    ],
    fixable: 'some',
    example: {
      description: '--omit ibm,nvlink-speed@0001:00:01.1',
      options: { omit: [{ property: 'ibm,nvlink-speed', target: '0001:00:01.1' }] },
    },
  },
  {
    id: 'NV010',
    name: 'mmio-atsd',
    level: 'error',
    summary:
      "an NPU PHB's ibm,mmio-atsd has 1 to 8 u64 (NPU2 has 8 ATSD registers) and every bridge's ibm,npu-link-index has an entry",
    impact:
      'a link index past the list: 5.7–5.12 fall back to entry 0, shared with link 0 ("Using fallback ibm,mmio-atsd[0] for ATSD."), 5.0–5.6 give the bridge a zero-size ATSD region ("No available ATSD found"); no index at all: ATSD init WARN_ON, ENODEV',
    kernels: ALL_KERNELS,
    sources: [
      'Linux drivers/vfio/pci/vfio_pci_nvlink2.c vfio_pci_ibm_npu2_init (5.7: "vfio/spapr_nvlink2: fall back to ATSD 0")',
      'skiboot hw/npu2.c npu2_nvlink_create_phb (MMIO_ATSD_ADDR, 8 registers)',
    ],
    fixable: 'yes',
    example: { description: '--atsd-entries 4', options: { atsdEntries: 4 } },
  },
  {
    id: 'NV011',
    name: 'link-topology',
    level: 'warning',
    summary:
      "link counts match the topology: a GPU's bridges use the links of one ibm,npu-group-id and as many as that group has, its bridge devfns are (group << 3) + n, its ibm,nvlink-peers has 6 entries naming exactly its bridges and other GPUs, and the npu's ibm,npu-links and the PHB's ibm,links count their links",
    impact:
      "the kernel's subdriver reads none of these, but the host NVIDIA driver and skiboot's NPU setup (MRBSP settings, GPU memory BAR mode by link count) do: a miscounted GPU trains or routes the wrong links",
    kernels: ALL_KERNELS,
    sources: [
      'skiboot hw/npu2.c npu_allocate_bdfn, npu2_assign_gmb, npu2_phb_final_fixup',
      'skiboot platforms/astbmc/witherspoon.c npu2_phb_nvlink_dt (ibm,nvlink-peers)',
    ],
    fixable: 'some',
    example: {
      description: '--omit ibm,nvlink-peers@GPU0',
      options: { omit: [{ property: 'ibm,nvlink-peers', target: 'GPU0' }] },
    },
  },
  {
    id: 'NV012',
    name: 'vphb-placement',
    level: 'error',
    summary:
      'every IOMMU group with a GPU fits one QEMU vPHB: at most 6 GPUs (tgts), at most 3 bridges per GPU and at most 8 ATSD registers',
    impact:
      'QEMU 4.1–8.1 needs one vPHB per GPU IOMMU group ("ATSD requires separate vPHB per GPU IOMMU group") and then refuses the rest: "Found too many NVLink bridges per GPU", "Only 8 ATSD registers supported"',
    kernels: ALL_KERNELS,
    sources: [
      'QEMU hw/ppc/spapr_pci_nvlink2.c spapr_phb_pci_collect_nvgpu, spapr_phb_nvgpu_populate_dt (atsd[8])',
      'QEMU include/hw/pci-host/spapr.h NVGPU_MAX_NUM 6, NVGPU_MAX_LINKS 3',
    ],
    fixable: 'no',
    example: {
      description:
        "GPU0 (0002:01:00.0) also claims GPU1's bridges 0000:00:01.0 and 0000:00:01.1 (4 links of one tgt, one IOMMU group)",
      options: {},
      edit: (fdt) => {
        const gpu0 = fdt.findNode('/pciex@600c3c0000000/pci@0/3d-controller@0');
        const gpu1 = fdt.findNode('/pciex@600c3c0100000/pci@0/3d-controller@0');
        const a = fdt.findNode('/pciex@6030200000000/unknown-bridge@1');
        const b = fdt.findNode('/pciex@6030200000000/unknown-bridge@1,1');
        const src = fdt.findNode('/pciex@6030200000000/unknown-bridge@0');
        if (!gpu0 || !gpu1 || !a || !b || !src) throw new Error('example: nodes missing');
        for (const br of [a, b]) {
          for (const p of ['ibm,gpu', 'memory-region', 'ibm,device-tgt-addr'])
            br.setProperty(p, src.getProperty(p)!.value);
        }
        const npu = gpu0.getProperty('ibm,npu')!.value;
        const more = gpu1.getProperty('ibm,npu')!.value;
        gpu0.setProperty('ibm,npu', cells.concat(npu, more));
        gpu1.removeProperty('ibm,npu');
      },
    },
  },
  {
    id: 'NV013',
    name: 'p100-on-npu2',
    level: 'warning',
    summary:
      'no P100 SXM2 (10de:15f9, NVLink1, POWER8) sits in an NVLink slot of a POWER9 NPU2 machine',
    impact:
      'the subdriver matches by vendor: a P100 whose bridges lack NVLink2 fix-ups fails enabling in 5.0–5.1 (EINVAL, no memory-region) and stays plain from 5.2; without ibm,npu it is a plain device everywhere',
    kernels: ALL_KERNELS,
    sources: [
      'Linux drivers/vfio/pci/vfio_pci_nvlink2.c (5.2 stable fix: -ENODEV for a missing memory-region)',
      'skiboot hw/npu.c (POWER8 NVLink1 bridges carry no memory-region or tgt)',
    ],
    fixable: 'no',
    example: { description: '--p100 nvlink1', options: { p100: 'nvlink1' } },
  },
  {
    id: 'NV014',
    name: 'skiboot-shape',
    level: 'warning',
    summary:
      'NVLink2 nodes carry the properties skiboot writes that no other rule covers (compatible, reg, labels, indexes, phandles, PCI identification)',
    impact:
      "tools and later firmware steps key on them (e.g. dtc's unit_address_vs_reg on link@N without reg, skiboot's slot binding by ibm,slot-label and ibm,loc-code)",
    kernels: ALL_KERNELS,
    sources: [
      'skiboot hdata/spira.c add_npu, hw/npu2.c npu2_nvlink_create_phb, npu2_dn_fixup, npu2_create_memory_dn',
      'skiboot core/pci.c pci_add_one_device_node',
    ],
    fixable: 'some',
    example: {
      description: '--omit reg@/xscom@603fc00000000/npu@5011000/link@2',
      options: { omit: [{ property: 'reg', target: '/xscom@603fc00000000/npu@5011000/link@2' }] },
    },
  },
  {
    id: 'NV015',
    name: 'pci-function-node',
    level: 'error',
    summary:
      'the tree describes its PCI functions the way Linux reads them (reg phys.hi, vendor-id, device-id, unique addresses, under a pci/pciex PHB)',
    impact:
      'Linux creates no pci_dn for the node (or the doctor cannot model the host at all): the kernel never binds the device, so nothing of NVLink2 applies',
    kernels: ALL_KERNELS,
    sources: [
      'Linux arch/powerpc/kernel/pci_dn.c pci_add_device_node_info',
      'Open Firmware PCI bus binding (IEEE 1275): reg phys.hi = bus << 16 | devfn << 8',
    ],
    fixable: 'some',
    example: {
      description: '--omit vendor-id@0000:00:00.1',
      options: { omit: [{ property: 'vendor-id', target: '0000:00:00.1' }] },
    },
  },
  {
    id: 'NV100',
    name: 'init-fails',
    level: 'error',
    summary:
      'the replayed init fails a function (enabling it fails) for a reason no NV0xx rule names',
    impact:
      'vfio-pci cannot enable the device: VFIO_GROUP_GET_DEVICE_FD fails and the VMM cannot start',
    kernels: ALL_KERNELS,
    sources: ['Linux drivers/vfio/pci/vfio_pci.c vfio_pci_enable (5.0–5.12)'],
    fixable: 'no',
  },
  {
    id: 'NV101',
    name: 'init-plain',
    level: 'warning',
    summary:
      'an NVLink GPU or bridge stays a plain vfio-pci device (its hook returned ENODEV) for a reason no NV0xx rule names; a note for a bridge of an empty slot',
    impact:
      'no NVLink2 regions: the guest sees the GPU without its coherent RAM, or the bridge without ATSD',
    kernels: ALL_KERNELS,
    sources: [
      'Linux drivers/vfio/pci/vfio_pci.c vfio_pci_enable (-ENODEV from the subdriver is not an error)',
    ],
    fixable: 'no',
  },
  {
    id: 'NV102',
    name: 'init-warning',
    level: 'warning',
    summary: 'the replayed init logs a kernel warning no NV0xx rule names',
    impact: 'the device works in a degraded way (e.g. a shared or missing ATSD register)',
    kernels: ALL_KERNELS,
    sources: ['Linux drivers/vfio/pci/vfio_pci_nvlink2.c dev_warn calls'],
    fixable: 'no',
  },
];

const BY_ID = new Map(RULES.map((r) => [r.id, r]));

/** The rule with this ID (case-insensitive), or undefined. */
export function findRule(id: string): Rule | undefined {
  return BY_ID.get(id.toUpperCase()) ?? RULES.find((r) => r.name === id.toLowerCase());
}

/** The rule with this ID. @throws Error for an unknown ID (a programming error). */
export function rule(id: string): Rule {
  const r = BY_ID.get(id);
  if (!r) throw new Error(`internal: no rule ${id}`);
  return r;
}
