/**
 * The POWER9 Nimbus physical address map pieces a Witherspoon's NVLink2 tree carries: GPU RAM
 * apertures ("4T down" / "4T up"), NPU registers and ATSD blocks, PHB4 register spaces, XSCOM,
 * and the GPU's compressed target address (tgt).
 * Sources: skiboot hw/phys-map.c (p9_phys_map, chip_select_shift 42), hw/npu2.c
 * (npu2_dn_fixup_gmb, MMIO_ATSD_ADDR), reference nvlink2.md section 2.
 */

/** The chip id is shifted into system addresses by this much (hw/phys-map.c chip_select_shift). */
export const CHIP_SELECT_SHIFT = 42n;
/** One GPU RAM aperture: 128 GiB (hw/phys-map.c GPU_MEM_4T_DOWN/UP size). */
export const GPU_APERTURE_SIZE = 0x20_0000_0000n;
/** NPU2 global MMIO registers of chip 0 (hw/phys-map.c NPU_REGS). */
export const NPU_REGS_BASE = 0x0006_0302_0000_0000n;
/** Size of the NPU2 global MMIO register space: 16 MiB (hw/phys-map.c NPU_REGS). */
export const NPU_REGS_SIZE = 0x100_0000n;
/** The NPU PHB's MMIO window: NTL and GENID BARs (hw/phys-map.c NPU_NTL 0 .. NPU_GENID 2). */
export const NPU_MMIO_WINDOW = { base: 0x0006_0302_0160_0000n, size: 0x12_0000n } as const;
/** ATSD register block n of an NPU: regs + 0x800000 + n * 0x10000 (hw/npu2.c MMIO_ATSD_ADDR). */
export const ATSD_OFFSET = 0x80_0000n;
/** Bytes between ATSD register blocks: 64 KiB (hw/npu2.c MMIO_ATSD_ADDR). */
export const ATSD_STRIDE = 0x1_0000n;
/** ATSD register blocks per NPU: 8 (hw/npu2.c npu2_dn_fixup: `ibm,mmio-atsd` entries). */
export const ATSD_COUNT = 8;
/** XSCOM of chip 0 (hw/phys-map.c XSCOM). */
export const XSCOM_BASE = 0x0006_03fc_0000_0000n;
/** Size of chip 0's XSCOM window: 16 GiB (hw/phys-map.c XSCOM). */
export const XSCOM_SIZE = 0x4_0000_0000n;
/** PHB4 register space of chip 0, PHB 0; one MiB per PHB (hw/phys-map.c PHB4_REG_SPC). */
export const PHB4_REG_BASE = 0x0006_00c3_c000_0000n;
/** Size of one PHB4's register space: 1 MiB (hw/phys-map.c PHB4_REG_SPC). */
export const PHB4_REG_SIZE = 0x10_0000n;
/** PHB4 32-bit and 64-bit MMIO windows of chip 0 (hw/phys-map.c PHB4_32BIT_MMIO/64BIT_MMIO). */
export const PHB4_MMIO32_BASE = 0x0006_00c0_0000_0000n;
/** Size of a PHB4's 32-bit MMIO window: 2 GiB (hw/phys-map.c PHB4_32BIT_MMIO). */
export const PHB4_MMIO32_SIZE = 0x8000_0000n;
/** Base of chip 0's PHB4 64-bit MMIO windows (hw/phys-map.c PHB4_64BIT_MMIO). */
export const PHB4_MMIO64_BASE = 0x0006_0000_0000_0000n;
/** Size of a PHB4's 64-bit MMIO window: 256 GiB (hw/phys-map.c PHB4_64BIT_MMIO). */
export const PHB4_MMIO64_SIZE = 0x40_0000_0000n;

/** Where GPU RAM apertures sit: "4T down" (skiboot's default) or "4T up" (nvlink2.md section 2). */
export type MemoryMap = '4t-down' | '4t-up';

/** GPU RAM aperture bases on chip 0 by group index (hw/phys-map.c). 4T up has four entries. */
const GPU_MEM_BASES: Record<MemoryMap, readonly bigint[]> = {
  '4t-down': [
    0x3e0_0000_0000n,
    0x3c0_0000_0000n,
    0x3a0_0000_0000n,
    0x380_0000_0000n,
    0x360_0000_0000n,
    0x340_0000_0000n,
  ],
  '4t-up': [0x400_0000_0000n, 0x420_0000_0000n, 0x440_0000_0000n, 0x460_0000_0000n],
};

/** `address + (chip << 42)` (hw/phys-map.c __phys_map_get). */
export function onChip(address: bigint, chipId: number): bigint {
  return address + (BigInt(chipId) << CHIP_SELECT_SHIFT);
}

/**
 * The GPU RAM aperture base of GPU `group` (its `ibm,npu-group-id`) on `chipId`
 * (hw/npu2.c npu2_get_gpu_base → phys_map_get(chip, gpu_map_type, group)).
 * @throws RangeError when the map has no such entry.
 */
export function gpuMemoryBase(map: MemoryMap, chipId: number, group: number): bigint {
  const base = GPU_MEM_BASES[map][group];
  if (base === undefined) throw new RangeError(`${map} map has no GPU memory entry ${group}`);
  return onChip(base, chipId);
}

/** NPU registers of `chipId`. */
export function npuRegsBase(chipId: number): bigint {
  return onChip(NPU_REGS_BASE, chipId);
}

/** ATSD register block `n` of the NPU of `chipId` (hw/npu2.c MMIO_ATSD_ADDR). */
export function atsdAddress(chipId: number, n: number): bigint {
  return npuRegsBase(chipId) + ATSD_OFFSET + BigInt(n) * ATSD_STRIDE;
}

/**
 * The "compressed" GPU target address of a system address: Coral mode address compression
 * (hw/npu2.c npu2_dn_fixup_gmb, NPU2 workbook figure 3.5).
 */
export function tgtFromSystemAddress(b: bigint): bigint {
  return (
    (((b >> 42n) & 1n) << 42n) |
    (((b >> 45n) & 3n) << 43n) |
    (((b >> 49n) & 3n) << 45n) |
    (b & ((1n << 43n) - 1n))
  );
}
