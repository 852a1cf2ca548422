/**
 * Variant hooks: how a subdriver attaches to the vfio-pci core without the core naming it.
 * The 5.x kernel tried the NVLink2 inits by PCI vendor from vfio_pci_enable(); here the core
 * runs every hook registered for the device's vendor when the device is opened.
 */
import type { Host, PciFunction } from '../platform/index.ts';
import type { RegionOps, VfioRegion } from './region.ts';

/** What a hook may use of the device being enabled. */
export interface VariantDevice {
  readonly fn: PciFunction;
  readonly host: Host;
  /** vfio_pci_register_dev_region(): appends a device-specific region (index 9, 10, …). */
  registerDeviceRegion(
    type: number,
    subtype: number,
    ops: RegionOps,
    size: bigint,
    flags: number,
  ): VfioRegion;
  /**
   * The group's "KVM set" notifier (VFIO_GROUP_NOTIFY_SET_KVM): `listener` runs when a guest
   * partition (LPID) is attached to the device, and at once if one already is. Returns a
   * function that unregisters the listener.
   */
  onKvmSet(listener: (lpid: number) => void): () => void;
}

export interface VariantHook {
  /** PCI vendor the hook is tried for (the kernel matched on vendor only). */
  readonly vendor: number;
  /** e.g. 'NVIDIA NV2 RAM' — used in "Failed to setup <name> region". */
  readonly name: string;
  /**
   * Runs at enable. Throw VfioError: ENODEV leaves the device a plain vfio-pci device, any
   * other errno fails enabling the device.
   */
  init(device: VariantDevice): void;
}
