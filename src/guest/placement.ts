/**
 * Where QEMU 4.1–8.1 put NVLink2 GPUs and bridges in a pseries guest (hw/ppc/spapr_pci_nvlink2.c
 * spapr_phb_nvgpu_setup / spapr_phb_nvgpu_populate_dt; hw/ppc/spapr.c spapr_phb_placement):
 * devices of a virtual PHB are walked in devfn order and grouped into "slots" by equal tgt (a
 * GPU and its bridges share one); a GPU's RAM goes at the vPHB's RAM window (64 TiB + 2 TiB per
 * vPHB index), GPUs back to back at their region size; a bridge's ATSD page at the vPHB's ATSD
 * window (128 TiB + 6×3×64 KiB per index), back to back. Each GPU gets the next NUMA node id
 * (machine-wide, from max(1, guest NUMA nodes)). Errors are QEMU's own sentences: the ones that
 * make it drop the vPHB's NVLink2 setup, and the ones it only reports (then `ibm,mmio-atsd` is
 * left out). Pure.
 *
 * Guest devfns: given per device, or slot k -> devfn k<<3 in the order the devices are listed.
 */
import { CodedError } from '../errors/index.ts';
import { hex } from '../text/index.ts';
import {
  type BarFacts,
  classifyDevice,
  type DeviceFacts,
  type DeviceRole,
} from './device-facts.ts';

/** SPAPR_PCI_NV2RAM64_WIN_BASE = SPAPR_PCI_LIMIT (include/hw/pci-host/spapr.h): 64 TiB. */
export const NV2RAM64_WIN_BASE = 1n << 46n;
/** SPAPR_PCI_NV2RAM64_WIN_SIZE: 2 TiB ("For up to 6 GPUs 256GB each"). */
export const NV2RAM64_WIN_SIZE = 2n << 40n;
/** SPAPR_PCI_NV2ATSD_WIN_BASE: 128 TiB. */
export const NV2ATSD_WIN_BASE = 128n << 40n;
/** NVGPU_MAX_NUM (include/hw/ppc/spapr.h) and NVGPU_MAX_LINKS (include/hw/pci-host/spapr.h). */
export const NVGPU_MAX_NUM = 6;
/** NVGPU_MAX_LINKS (include/hw/pci-host/spapr.h): links per GPU QEMU keeps. */
export const NVGPU_MAX_LINKS = 3;
/** SPAPR_PCI_NV2ATSD_WIN_SIZE = NVGPU_MAX_NUM * NVGPU_MAX_LINKS * 64 KiB. */
export const NV2ATSD_WIN_SIZE = BigInt(NVGPU_MAX_NUM * NVGPU_MAX_LINKS * 64 * 1024);
/** spapr_phb_nvgpu_populate_dt: uint64_t atsd[8], "The existing limitation of known guests". */
export const MAX_MMIO_ATSD = 8;
/** SPAPR_PCI_BASE_BUID; a vPHB's BUID is this + index (spapr_phb_placement). */
export const SPAPR_PCI_BASE_BUID = 0x800000020000000n;
/** SPAPR_MAX_PHBS - 1, SPAPR_MAX_PHBS = (SPAPR_PCI_LIMIT - SPAPR_PCI_BASE) / 1 TiB - 1 (spapr.c). */
export const SPAPR_MAX_PHB_INDEX = 30;

/** PHANDLE_PCIDEV(phb, pdev) (spapr_pci_nvlink2.c). */
export function phandlePciDev(phb: number, devfn: number): number {
  return (0x12000000 | (phb << 16) | devfn) >>> 0;
}
/** PHANDLE_GPURAM(phb, n). */
export function phandleGpuRam(phb: number, n: number): number {
  return (0x110000ff | (n << 8) | (phb << 16)) >>> 0;
}
/** PHANDLE_NVLINK(phb, gn, nn). */
export function phandleNvlink(phb: number, gpu: number, link: number): number {
  return (0x00130000 | (phb << 8) | (gpu << 4) | link) >>> 0;
}

/** Devices that cannot be placed in the guest as asked (code PLACEMENT): names the vPHB or device. */
export class GuestPlacementError extends CodedError<'PLACEMENT'> {
  override readonly name: string = 'GuestPlacementError';
  constructor(message: string) {
    super('PLACEMENT', message);
  }
}

/** A device to put on a vPHB: what its socket reported, and its guest devfn. */
export interface GuestDeviceRequest {
  readonly facts: DeviceFacts;
  /** Guest devfn on the vPHB's root bus; default slot k -> k << 3 by list position. */
  readonly devfn?: number;
}

/** A vPHB to build: its index and its devices, in slot order. */
export interface VphbRequest {
  /** The spapr-pci-host-bridge index (0 is the default PHB). */
  readonly index: number;
  readonly devices: readonly GuestDeviceRequest[];
}

/**
 * An NVLink bridge on a vPHB: address, devfn, its link position j, `ibm,npu-link-index`, tgt, its
 * ATSD window (guest physical, or null), link speed and phandles.
 */
export interface PlacedLink {
  readonly address: string;
  readonly devfn: number;
  /** j: the bridge's position among its GPU's links. */
  readonly link: number;
  /** `ibm,npu-link-index` of its `link@` node. */
  readonly npuLinkIndex: number;
  readonly tgt: bigint;
  /** Guest address of its ATSD page, or null when the bridge has none (empty region). */
  readonly atsdGpa: bigint | null;
  readonly atsdSize: bigint;
  readonly linkSpeed: number;
  readonly phandle: number;
  readonly nvlinkPhandle: number;
}

/**
 * A GPU on a vPHB: address, devfn, tgt, the guest physical address and size (bytes) of its RAM, its
 * NUMA id and phandles.
 */
export interface PlacedGpu {
  readonly address: string;
  readonly devfn: number;
  readonly tgt: bigint;
  readonly gpa: bigint;
  readonly size: bigint;
  readonly numaId: number;
  readonly phandle: number;
  readonly ramPhandle: number;
}

/** One SpaprPhbPciNvGpuSlot: a tgt with its GPU and up to 3 bridges. */
export interface GpuSlot {
  readonly index: number;
  readonly tgt: bigint;
  readonly gpu: PlacedGpu | null;
  readonly links: readonly PlacedLink[];
}

/**
 * A device on a vPHB as QEMU placed it: address, guest devfn, IOMMU group, IDs and its NVLink2
 * role.
 */
export interface PlacedDevice {
  readonly address: string;
  readonly devfn: number;
  readonly iommuGroup: number | null;
  readonly classCode: number;
  readonly vendor: number;
  readonly device: number;
  readonly headerType: number;
  readonly bars: readonly BarFacts[];
  readonly role: DeviceRole;
}

/**
 * One vPHB as QEMU's spapr_phb_placement and spapr_phb_nvgpu_setup built it: index, BUID, GPU RAM
 * and ATSD windows (guest physical), devices, GPU slots, `ibm,mmio-atsd`, QEMU's errors and our
 * notes.
 */
export interface VphbPlacement {
  readonly index: number;
  readonly buid: bigint;
  readonly ramWindow: bigint;
  readonly atsdWindow: bigint;
  /** Every device in devfn order. */
  readonly devices: readonly PlacedDevice[];
  /** Slots with a GPU (empty when QEMU dropped the vPHB's NVLink2 setup). */
  readonly slots: readonly GpuSlot[];
  /** `ibm,mmio-atsd`, or null when QEMU left it out. */
  readonly mmioAtsd: readonly bigint[] | null;
  /** QEMU's error messages for this vPHB. */
  readonly errors: readonly string[];
  /** Where this model departs from QEMU (which would abort). */
  readonly notes: readonly string[];
}

/** The whole guest: NUMA nodes and every vPHB. */
export interface GuestPlacement {
  readonly numaNodes: number;
  readonly vphbs: readonly VphbPlacement[];
}

interface SlotBuilder {
  index: number;
  tgt: bigint;
  gpu: PlacedGpu | null;
  links: Omit<PlacedLink, 'npuLinkIndex'>[];
}

function assignDevfns(request: VphbRequest): PlacedDevice[] {
  const used = new Map<number, string>();
  const placed = request.devices.map((d, k) => {
    const devfn = d.devfn ?? k << 3;
    if (!Number.isInteger(devfn) || devfn < 0 || devfn > 0xff)
      throw new GuestPlacementError(`${d.facts.address}: guest devfn ${devfn} is not 0..255`);
    const other = used.get(devfn);
    if (other !== undefined)
      throw new GuestPlacementError(
        `${d.facts.address}: guest devfn ${hex(devfn)} already taken by ${other} on vPHB ${request.index}`,
      );
    used.set(devfn, d.facts.address);
    const { address, iommuGroup, classCode, vendor, device, headerType, bars } = d.facts;
    const role = classifyDevice(d.facts);
    return { address, devfn, iommuGroup, classCode, vendor, device, headerType, bars, role };
  });
  // pci_for_each_device_under_bus walks devfn 0..255.
  return placed.sort((a, b) => a.devfn - b.devfn);
}

/** The IOMMU groups sharing the vPHB's container; unknown groups count per tgt (or device). */
function groupKeys(devices: readonly PlacedDevice[]): Set<string> {
  return new Set(
    devices.map((d) => {
      if (d.iommuGroup !== null) return `group ${d.iommuGroup}`;
      return d.role.role === 'plain' ? `device ${d.address}` : `tgt ${d.role.tgt}`;
    }),
  );
}

interface Collected {
  slots: SlotBuilder[];
  error: string | null;
  notes: string[];
}

/** spapr_phb_pci_collect_nvgpu over the bus; `numa` is the machine's gpu_numa_id counter. */
function collect(phb: number, devices: readonly PlacedDevice[], numa: { next: number }): Collected {
  const slots: SlotBuilder[] = [];
  const notes: string[] = [];
  let error: string | null = null;
  let ram = NV2RAM64_WIN_BASE + BigInt(phb) * NV2RAM64_WIN_SIZE;
  let atsd = NV2ATSD_WIN_BASE + BigInt(phb) * NV2ATSD_WIN_SIZE;
  const slotFor = (tgt: bigint): SlotBuilder | null => {
    const found = slots.find((s) => s.tgt === tgt);
    if (found) return found;
    if (slots.length === NVGPU_MAX_NUM) return null;
    const slot: SlotBuilder = { index: slots.length, tgt, gpu: null, links: [] };
    slots.push(slot);
    return slot;
  };
  for (const d of devices) {
    const r = d.role;
    if (r.role === 'plain') continue;
    const slot = slotFor(r.tgt);
    if (r.role === 'gpu') {
      if (!slot) {
        error ??= 'Found too many GPUs per vPHB';
        continue;
      }
      if (slot.gpu) {
        error ??= `${d.address}: a second GPU with tgt ${hex(r.tgt)} (QEMU asserts !nvslot->gpdev)`;
        continue;
      }
      slot.gpu = {
        address: d.address,
        devfn: d.devfn,
        tgt: r.tgt,
        gpa: ram,
        size: r.size,
        numaId: numa.next++,
        phandle: phandlePciDev(phb, d.devfn),
        ramPhandle: phandleGpuRam(phb, slot.index),
      };
      ram += r.size;
      continue;
    }
    if (!slot) {
      error ??= 'Found too many NVLink bridges per vPHB';
      continue;
    }
    if (slot.links.length === NVGPU_MAX_LINKS) {
      error ??= 'Found too many NVLink bridges per GPU';
      continue;
    }
    const j = slot.links.length;
    if (!r.mapped)
      notes.push(
        `${d.address}: empty ATSD region, so no ATSD window (QEMU 4.1–8.1 asserts mr_gpu || mr_npu here)`,
      );
    slot.links.push({
      address: d.address,
      devfn: d.devfn,
      link: j,
      tgt: r.tgt,
      atsdGpa: r.mapped ? atsd : null,
      atsdSize: r.size,
      linkSpeed: r.linkSpeed,
      phandle: phandlePciDev(phb, d.devfn),
      nvlinkPhandle: phandleNvlink(phb, slot.index, j),
    });
    atsd += r.size;
  }
  return { slots, error, notes };
}

/**
 * spapr_phb_nvgpu_populate_dt (QEMU 8.1 hw/ppc/spapr_pci_nvlink2.c:277-296): the ATSD addresses
 * and QEMU's complaints about them. The outer loop stops once 8 are taken (line 277), so
 * "Only 8 ATSD registers supported" (289) is printed only when the 9th link is in the same
 * slot as the 8th: with 2 links per GPU never, with 3 (the 4-GPU machine) at the third GPU.
 */
function mmioAtsdOf(
  slots: readonly GpuSlot[],
  devices: readonly PlacedDevice[],
): { mmioAtsd: bigint[] | null; errors: string[] } {
  const atsd: bigint[] = [];
  const errors: string[] = [];
  for (let i = 0; i < slots.length && atsd.length < MAX_MMIO_ATSD; i++) {
    for (const link of slots[i]?.links ?? []) {
      if (link.atsdGpa === null) continue;
      if (atsd.length === MAX_MMIO_ATSD) {
        errors.push(`Only ${MAX_MMIO_ATSD} ATSD registers supported`);
        break;
      }
      atsd.push(link.atsdGpa);
    }
  }
  if (atsd.length === 0) return { mmioAtsd: null, errors: [...errors, 'No ATSD registers found'] };
  // spapr_phb_eeh_available -> vfio_eeh_as_ok: one container with exactly one group.
  if (groupKeys(devices).size > 1)
    return {
      mmioAtsd: null,
      errors: [...errors, 'ATSD requires separate vPHB per GPU IOMMU group'],
    };
  return { mmioAtsd: atsd, errors };
}

function placeVphb(request: VphbRequest, numa: { next: number }): VphbPlacement {
  const phb = request.index;
  if (!Number.isInteger(phb) || phb < 0 || phb > SPAPR_MAX_PHB_INDEX)
    throw new GuestPlacementError(
      `vPHB ${phb}: "index" for PAPR PHB is too large (max ${SPAPR_MAX_PHB_INDEX})`,
    );
  const devices = assignDevfns(request);
  const base = {
    index: phb,
    buid: SPAPR_PCI_BASE_BUID + BigInt(phb),
    ramWindow: NV2RAM64_WIN_BASE + BigInt(phb) * NV2RAM64_WIN_SIZE,
    atsdWindow: NV2ATSD_WIN_BASE + BigInt(phb) * NV2ATSD_WIN_SIZE,
    devices,
  };
  const { slots: built, error, notes } = collect(phb, devices, numa);
  // On a collection error spapr_phb_nvgpu_setup frees the whole config (cleanup_exit).
  if (error !== null) return { ...base, slots: [], mmioAtsd: null, errors: [error], notes };
  for (const s of built.filter((x) => x.gpu === null))
    notes.push(
      `${s.links.map((l) => l.address).join(', ')}: no GPU with tgt ${hex(s.tgt)} on vPHB ${phb}, left out (QEMU 4.1–8.1 dereferences the missing GPU)`,
    );
  let linkIndex = 0;
  const slots: GpuSlot[] = built
    .filter((s) => s.gpu !== null)
    .map((s) => ({
      index: s.index,
      tgt: s.tgt,
      gpu: s.gpu,
      links: s.links.map((l) => ({ ...l, npuLinkIndex: linkIndex++ })),
    }));
  // No GPU with RAM: "We did not find any interesting GPU", nothing NVLink2 on this vPHB.
  if (slots.length === 0) return { ...base, slots, mmioAtsd: null, errors: [], notes };
  const { mmioAtsd, errors } = mmioAtsdOf(slots, devices);
  return { ...base, slots, mmioAtsd, errors, notes };
}

/**
 * The order QEMU reset the vPHBs, which is the order their GPUs took NUMA ids: the machine
 * reset resets the system bus's children in list order (hw/core/bus.c bus_reset_child_foreach,
 * QTAILQ_FOREACH), and bus_add_child (hw/core/qdev.c) puts every new child at the head
 * (QTAILQ_INSERT_HEAD_RCU), so the newest vPHB is reset first. The default PHB (index 0) is
 * created by spapr_machine_init before any `-device spapr-pci-host-bridge`; the others are
 * created in the order given.
 */
export function resetOrder(vphbs: readonly VphbRequest[]): VphbRequest[] {
  const created = [...vphbs.filter((v) => v.index === 0), ...vphbs.filter((v) => v.index !== 0)];
  return created.reverse();
}

/**
 * The guest placement of every vPHB, listed as given (the default PHB, index 0, and then the
 * `-device` vPHBs in command-line order). NUMA ids are handed out in reset order (resetOrder):
 * spapr_phb_reset (QEMU 8.1 hw/ppc/spapr_pci.c:2069-2080) runs spapr_phb_nvgpu_setup, whose
 * spapr_pci_collect_nvgpu takes `spapr->gpu_numa_id++` (spapr_pci_nvlink2.c:101-102) for each
 * GPU in devfn order, so vPHB 0 gets the last ids.
 * @throws GuestPlacementError for a vPHB index past 30, a devfn out of range or used twice.
 */
export function placeGuest(
  vphbs: readonly VphbRequest[],
  options: { numaNodes?: number } = {},
): GuestPlacement {
  const numaNodes = options.numaNodes ?? 0;
  // spapr_numa_initial_nvgpu_numa_id: MAX(1, machine->numa_state->num_nodes), set once by
  // spapr_machine_init (spapr.c:2878), so a guest reboot would hand out further ids.
  const numa = { next: Math.max(1, numaNodes) };
  const seen = new Set<number>();
  for (const v of vphbs) {
    if (seen.has(v.index)) throw new GuestPlacementError(`vPHB index ${v.index} given twice`);
    seen.add(v.index);
  }
  const placed = new Map<VphbRequest, VphbPlacement>();
  for (const v of resetOrder(vphbs)) placed.set(v, placeVphb(v, numa));
  return { numaNodes, vphbs: vphbs.map((v) => placed.get(v)!) };
}

/** FORM1 `ibm,associativity` of a GPU's RAM: {4, n, n, n, n} (QEMU 5.2+; {4,1,1,1,n} before). */
export function gpuAssociativity(numaId: number): number[] {
  return [4, numaId, numaId, numaId, numaId];
}
