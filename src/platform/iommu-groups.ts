/**
 * The IOMMU groups Linux 5.12 on PowerNV gave a POWER9 host's PCI functions, replayed step by
 * step from the kernel's boot order, group numbers included (iommu_group_alloc takes the lowest
 * free id, ida_simple_get(&iommu_group_ida, 0, 0), and gives it back when the group dies):
 *
 * 1. Device add (arch/powerpc/kernel/pci_64.c pcibios_init: "Add devices." before
 *    ppc_md.pcibios_fixup), per IODA PHB in probe order (powernv/pci.c pnv_pci_init: PHB3/PHB4
 *    before NPU PHBs): pnv_pci_ioda_dma_dev_setup puts each function in its bus's PE; the first
 *    non-bridge function of a PE sets up its DMA and registers the PE's group ("We assume that
 *    bridges *probably* don't need to do any DMA"; "PEs with a DMA weight of zero won't have a
 *    group"), and every function of a PE with a group joins it. NPU PHBs have no dma_dev_setup.
 * 2. pnv_pci_ioda_fixup → pnv_pci_ioda_setup_nvlink → pnv_pci_npu_setup_iommu_groups
 *    (powernv/npu-dma.c): for every PE of every IODA PHB, pnv_try_setup_npu_table_group finds
 *    the first function on the PE's bus whose `ibm,npu[0]` is a PCI function; on POWER9
 *    ("P9 case: compound group is per-NPU (all gpus, all links)", struct npu_comp "up to
 *    3 x (GPU + 2xNPUs)") the group is the NPU PHB's one compound group, registered on first
 *    use; on POWER8 one per GPU PE. That GPU leaves its PE's group (iommu_del_device, then
 *    iommu_group_put drops the PE's reference, so an emptied group dies and frees its id) and
 *    joins the compound group.
 * 3. Then per NPU PHB and NPU PE (bridges of one GPU share a PE, pnv_ioda_setup_npu_PE),
 *    pnv_npu_compound_attach adds every bridge on the NPU PHB's root bus whose `ibm,gpu` is that
 *    GPU to the GPU's group.
 *
 * A function none of this reaches has no group (null): root ports, bridges with no `ibm,gpu`.
 * On the 6-GPU Witherspoon the six GPU PE groups take ids 0–5, chip 0's compound group takes 6
 * and frees 0–2, chip 8's takes 0: {3 GPUs + 6 bridges} per chip as groups 6 and 0. Pure.
 */

export interface GroupingPhb {
  /** An NPU PHB (no DMA setup at device add; its functions are NVLink bridges). */
  readonly npu: boolean;
  /** hose->npu is set (pnv_npu2_init): an NPU2 (POWER9) PHB, one compound group for all its GPUs. */
  readonly npu2: boolean;
  /** The PHB's root bus number (its `bus-range` start). */
  readonly rootBus: number;
}

/** A PCI function as the grouping sees it: its PHB, bus, devfn, whether it is a bridge, and its NVLink partners. */
export interface GroupingFunction {
  /** Index into the PHB list (tree order). */
  readonly phb: number;
  readonly bus: number;
  readonly devfn: number;
  /** pci_is_bridge(): a PCI-to-PCI bridge (root ports included). */
  readonly isBridge: boolean;
  /** The function `ibm,npu[0]` resolves to (pnv_pci_get_npu_dev(dev, 0)), if any. */
  readonly npu0: number | undefined;
  /** The function `ibm,gpu` resolves to (pnv_pci_get_gpu_dev), if any. */
  readonly gpu: number | undefined;
}

interface Pe {
  readonly devices: number[];
  group: number | null;
}

/**
 * The kernel's IOMMU group of every function (null: none), in the functions' order.
 * @throws RangeError when a function names a PHB that is not in `phbs`.
 */
export function kernelIommuGroups(
  phbs: readonly GroupingPhb[],
  functions: readonly GroupingFunction[],
): (number | null)[] {
  for (const f of functions)
    if (phbs[f.phb] === undefined) throw new RangeError(`function on unknown PHB ${f.phb}`);
  const groupOf: (number | null)[] = functions.map(() => null);
  const members = new Map<number, Set<number>>();
  const alloc = (): number => {
    let id = 0;
    while (members.has(id)) id++;
    members.set(id, new Set());
    return id;
  };
  const add = (fn: number, group: number): void => {
    groupOf[fn] = group;
    members.get(group)?.add(fn);
  };
  // iommu_del_device; a PE's group whose PE reference was dropped dies with its last member.
  const released = new Set<number>();
  const remove = (fn: number): void => {
    const group = groupOf[fn];
    if (group === null || group === undefined) return;
    members.get(group)?.delete(fn);
    groupOf[fn] = null;
    if (released.has(group) && members.get(group)?.size === 0) members.delete(group);
  };

  const byAddress = (a: number, b: number) =>
    functions[a]!.bus - functions[b]!.bus || functions[a]!.devfn - functions[b]!.devfn;
  const onPhb = (phb: number) =>
    functions
      .map((_, i) => i)
      .filter((i) => functions[i]!.phb === phb)
      .sort(byAddress);
  const iodaPhbs = phbs.map((_, i) => i).filter((i) => !phbs[i]!.npu);
  const npuPhbs = phbs.map((_, i) => i).filter((i) => phbs[i]!.npu);

  // 1. Device add: PEs per (PHB, bus) in creation order.
  const pes = new Map<string, Pe>();
  const peOrder = new Map<number, string[]>();
  for (const phb of iodaPhbs) {
    const order: string[] = [];
    for (const i of onPhb(phb)) {
      const key = `${phb}:${functions[i]!.bus}`;
      let pe = pes.get(key);
      if (!pe) {
        pe = { devices: [], group: null };
        pes.set(key, pe);
        order.push(key);
      }
      pe.devices.push(i);
      if (pe.group === null && !functions[i]!.isBridge) pe.group = alloc();
      if (pe.group !== null) add(i, pe.group);
    }
    peOrder.set(phb, order);
  }

  // 2. pnv_try_setup_npu_table_group for every PE of every IODA PHB.
  const compound = new Map<string, number>();
  for (const phb of iodaPhbs) {
    for (const key of peOrder.get(phb) ?? []) {
      const pe = pes.get(key)!;
      const gpdev = pe.devices.find((i) => functions[i]!.npu0 !== undefined);
      if (gpdev === undefined) continue;
      const npdev = functions[gpdev]!.npu0!;
      const npuPhb = functions[npdev]!.phb;
      const ckey = phbs[npuPhb]!.npu2 ? `npu ${npuPhb}` : `pe ${key}`;
      let group = compound.get(ckey);
      if (group === undefined) {
        group = alloc();
        compound.set(ckey, group);
      }
      // iommu_group_put(pe->table_group.group), then iommu_del_device's effect on the group.
      if (pe.group !== null) released.add(pe.group);
      remove(gpdev);
      add(gpdev, group);
    }
  }

  // 3. pnv_npu_compound_attach for every NPU PE (one per GPU) of every NPU PHB.
  for (const phb of npuPhbs) {
    const root = onPhb(phb).filter((i) => functions[i]!.bus === phbs[phb]!.rootBus);
    const npuPes: { gpu: number | undefined }[] = [];
    for (const i of root) {
      const gpu = functions[i]!.gpu;
      if (!npuPes.some((p) => p.gpu === gpu)) npuPes.push({ gpu });
    }
    for (const { gpu } of npuPes) {
      // get_gpu_pci_dev_and_pe: no GPU, or a GPU without an IODA PE, attaches nothing.
      if (gpu === undefined || phbs[functions[gpu]!.phb]!.npu) continue;
      const group = groupOf[gpu];
      if (group === null || group === undefined) continue;
      for (const i of root) {
        if (functions[i]!.gpu === gpu && groupOf[i] === null) add(i, group);
      }
    }
  }
  return groupOf;
}
