/**
 * Which Linux the subdriver behaves like. 5.12 is the default; older choices change only the
 * documented differences (drivers/vfio/pci/vfio_pci_nvlink2.c history):
 * - 5.0/5.1: a bridge without `memory-region` made the GPU RAM init fail with -EINVAL (the
 *   stable fix in 5.2 made it -ENODEV, a plain device);
 * - 5.2+: the ATSD init also needs `memory-region` on the bridge (-ENODEV without it);
 * - 5.7+: an `ibm,mmio-atsd` without entry `link-index` falls back to entry 0.
 */
export interface KernelBehaviour {
  readonly version: string;
  /** errno of the GPU RAM init when the bridge has no memory-region. */
  readonly gpuMissingMemoryRegion: 'ENODEV' | 'EINVAL';
  readonly atsdNeedsMemoryRegion: boolean;
  readonly atsdFallbackToEntry0: boolean;
}

/** The kernel versions whose NVLink2 behaviour differs and can be chosen (`dt doctor --kernel`). */
export const KERNEL_VERSIONS = ['5.0', '5.1', '5.2', '5.7', '5.12'] as const;
/** One of `KERNEL_VERSIONS`. */
export type KernelVersion = (typeof KERNEL_VERSIONS)[number];

/**
 * How vfio_pci_nvlink2.c of `version` behaves where versions differ (e.g. a GPU without
 * memory-region: EINVAL before 5.2, ENODEV after).
 */
export function kernelBehaviour(version: KernelVersion = '5.12'): KernelBehaviour {
  const minor = Number(version.split('.')[1]);
  return {
    version,
    gpuMissingMemoryRegion: minor < 2 ? 'EINVAL' : 'ENODEV',
    atsdNeedsMemoryRegion: minor >= 2,
    atsdFallbackToEntry0: minor >= 7,
  };
}
