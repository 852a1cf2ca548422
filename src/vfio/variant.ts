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
import type { DeviceProfile } from './device-profile.ts';
import type { RegionCapabilityKind, VariantCapabilityValue } from './info-caps.ts';
import type { RegionOps, VfioRegion } from './region.ts';

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
