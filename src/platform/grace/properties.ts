/**
 * The properties a Grace GPU's PCI function node carries. `nvidia,gpu-mem-base-pa` and
 * `nvidia,gpu-mem-size` are the two device properties nvgrace-gpu reads
 * (drivers/vfio/pci/nvgrace-gpu/main.c nvgrace_gpu_fetch_memory_property; ACPI _DSD on real
 * machines, device_property_read_u64 reads the same names from a device-tree node). The
 * `vfio-nvlink2,` ones are this emulator's hardware state, not firmware: the values of the two
 * BAR0 readiness registers and which GPU-capability DVSEC the function has.
 */
export const GPU_MEM_BASE_PA = 'nvidia,gpu-mem-base-pa';
/** The u64 size in bytes of the GPU's coherent memory (0: the C2C link is down). */
export const GPU_MEM_SIZE = 'nvidia,gpu-mem-size';
/** u32: BAR0 + 0x1498 (C2C link status; 0xff ready). */
export const C2C_LINK_STATUS_PROP = 'vfio-nvlink2,c2c-link-status';
/** u32: BAR0 + 0x200bc (HBM training status; 0xff done). */
export const HBM_TRAINING_STATUS_PROP = 'vfio-nvlink2,hbm-training-status';
/** u32: 0 a DVSEC saying the MIG bug is there, 1 fixed, 2 no DVSEC; absent: by the model. */
export const MIG_DVSEC_PROP = 'vfio-nvlink2,mig-dvsec';
/** The values of MIG_DVSEC_PROP. */
export const MigDvsec = { BUG: 0, FIXED: 1, ABSENT: 2 } as const;
