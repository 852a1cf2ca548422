/**
 * How a variant driver attaches to the vfio-pci core without the core naming it, as
 * include/linux/vfio_pci_core.h lets drivers/vfio/pci/<variant>/main.c do: the variant embeds
 * the core device and supplies what differs — the functions it drives (its pci_device_id
 * table), their config-space profile, the device-specific regions it registers at enable (its
 * hooks) and the names of those regions and capabilities — and the core's defaults do the rest.
 * Linux 5.0–5.12 tried the NVLink2 inits by PCI vendor from vfio_pci_enable(); the hooks keep
 * that vendor match inside a variant. A variant is complete when constructed: nothing is
 * patched into it, or into the ops it registers, afterwards.
 */
import type { Host, PciFunction } from '../platform/index.ts';
import type { ConfigSpace } from './config-space.ts';
import type { DeviceProfile } from './device-profile.ts';
import type { RegionCapabilityKind, VariantCapabilityValue } from './info-caps.ts';
import type { RegionOps, VfioRegion } from './region.ts';
import type { RegionDescription } from './region-info.ts';
import type { SharedMemory } from './shared-memory.ts';

/** What a hook may use of the device being enabled. */
export interface VariantDevice {
  readonly fn: PciFunction;
  readonly host: Host;
  /**
   * vfio_pci_register_dev_region(): appends a device-specific region (index 9, 10, …) whose
   * ops `makeOps` builds knowing that index, so they are complete before anyone calls them.
   */
  registerDeviceRegion(
    type: number,
    subtype: number,
    size: bigint,
    flags: number,
    makeOps: (index: number) => RegionOps,
  ): VfioRegion;
  /**
   * The group's "KVM set" notifier (VFIO_GROUP_NOTIFY_SET_KVM): `listener` runs when a guest
   * partition (LPID) is attached to the device, and at once if one already is. Returns a
   * function that unregisters the listener.
   */
  onKvmSet(listener: (lpid: number) => void): () => void;
  /** The core's config space (what pci_read_config_* of the physical function reads). */
  readonly config: ConfigSpace;
  /**
   * Up to `length` bytes of region `index` through the core's ops (a probe reading BAR0
   * registers, as pci_iomap + ioread32 do). @throws VfioError as a region read
   */
  read(index: number, offset: bigint | number, length: number): Uint8Array;
}

/**
 * The vfio_device_ops a variant puts in place of the core's for one device
 * (include/linux/vfio_pci_core.h: a variant's read, write, mmap, ioctl and get_region_info
 * take their own cases and call vfio_pci_core_* for the rest). Each member answers only for
 * what the variant emulates and returns undefined to leave an access to the core.
 */
export interface VariantDeviceOps {
  /** open_device, after the core's enable (vfio_pci_core_enable). */
  open?(): void;
  /** VFIO_DEVICE_RESET, before the core resets the function. */
  reset?(): void;
  /** GET_REGION_INFO of a standard region (0–8) the variant fakes, or undefined. */
  describeRegion?(index: number): RegionDescription | undefined;
  /** The ops behind a standard region the variant fakes (rw, readView, mmap), or undefined. */
  regionOps?(index: number): RegionOps | undefined;
  /** A config-space read: runs after the core filled `buf` from `offset`; patches what it emulates. */
  afterConfigRead?(offset: number, buf: Uint8Array): void;
  /**
   * A config-space write: the bytes taken (a short count is the kernel's too), or undefined
   * to hand the write to the core.
   */
  configWrite?(offset: number, data: Uint8Array): number | undefined;
}

/**
 * A variant's init for functions of one PCI vendor (vfio_pci_enable's vendor checks): ENODEV leaves
 * a plain device, any other errno fails the open.
 */
export interface VariantHook {
  /** PCI vendor the hook is tried for (the kernel matched on vendor only). */
  readonly vendor: number;
  /** The region's name in "Failed to setup <name> region". */
  readonly name: string;
  /**
   * Runs at enable. Throw VfioError: ENODEV leaves the device a plain vfio-pci device, any
   * other errno fails enabling the device.
   */
  init(device: VariantDevice): void;
  /**
   * The memory the region `init` registers maps, when it exists before the device's first open
   * (kept in a state directory, or made for another device sharing it), found without logging
   * or registering anything; undefined when there is none yet, or the hook would decline. The
   * core asks it before the first open, so that what holds the memory is known before the
   * device opens, as the kernel refuses a group's open (a hook registers one region).
   */
  memoryBeforeOpen?(device: VariantDevice): SharedMemory | undefined;
}

/** A device-specific region type a variant registers, with the name inspect shows for it. */
export interface VariantRegionType {
  /** VFIO_REGION_TYPE_PCI_VENDOR_TYPE | vendor. */
  readonly type: number;
  readonly subtype: number;
  readonly name: string;
}

/**
 * What a reader of a variant's devices needs to name what it reads (a VMM, inspect, the
 * tests): its region types, its region capabilities and its functions' model names. Pure
 * data: no host, no device.
 */
export interface VariantVocabulary<V extends VariantCapabilityValue = VariantCapabilityValue> {
  /** The variant's name, e.g. the kernel module's. */
  readonly name: string;
  readonly regions: readonly VariantRegionType[];
  readonly regionCapabilities: readonly RegionCapabilityKind<V>[];
  /** A function's model by its PCI ids (pci.ids names), or undefined for ids not its own. */
  modelName(vendor: number, device: number): string | undefined;
}

/** A variant driver bound to one emulated host: its vocabulary, its functions and its ops. */
export interface VfioPciVariant<V extends VariantCapabilityValue = VariantCapabilityValue>
  extends VariantVocabulary<V> {
  /** Whether the variant drives `fn` (the driver's pci_device_id table). */
  matches(fn: PciFunction): boolean;
  /** `fn`'s config space, BARs and capabilities; undefined leaves the core's generic profile. */
  profile(fn: PciFunction): DeviceProfile | undefined;
  /** Run in order at enable, each for the functions of its vendor. */
  readonly hooks: readonly VariantHook[];
  /**
   * false: the driver sets no mig_ops/log_ops (e.g. nvgrace-gpu main.c), so the migration and
   * DMA-logging features are ENOTTY (vfio_main.c); undefined or true: the device migrates.
   */
  readonly migrates?: boolean;
  /**
   * The driver's probe of one device (pci_driver.probe), once the core device exists: the ops
   * replacing the core's, or undefined to drive the device with the core's ops alone.
   * @throws VfioError when the probe fails: the function is then no vfio device (every open
   *   fails with that errno)
   */
  probe?(device: VariantDevice): VariantDeviceOps | undefined;
}

/** The variant that drives `fn`: the first that matches it, as driver binding picks one. */
export function variantFor<T extends VfioPciVariant>(
  variants: readonly T[],
  fn: PciFunction,
): T | undefined {
  return variants.find((v) => v.matches(fn));
}

/** The name of a device-specific region type among `vocabularies`, if one of them has it. */
export function regionTypeName(
  vocabularies: readonly VariantVocabulary[],
  type: number,
  subtype: number,
): string | undefined {
  for (const v of vocabularies) {
    const r = v.regions.find((x) => x.type === type && x.subtype === subtype);
    if (r) return r.name;
  }
  return undefined;
}
