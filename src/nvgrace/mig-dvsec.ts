/**
 * Whether a Grace GPU has the MIG hardware bug: nvgrace_gpu_has_mig_hw_bug()
 * (drivers/vfio/pci/nvgrace-gpu/main.c:826-844, constants :25-28) finds NVIDIA's DVSEC with id GPU_CAP_DVSEC_REGISTER (3)
 * (pci_find_dvsec_capability, drivers/pci/pci.c: the extended capability list walked from
 * 0x100, DVSEC header 1 vendor, header 2 id) and reads the 16-bit bitmap at +0xA: bit 0
 * MIG_SUPPORTED_WITH_CACHED_RESMEM means fixed. No DVSEC, or the bit clear, means the bug.
 */
import { PCI_VENDOR_ID_NVIDIA } from '../platform/index.ts';
import type { ConfigSpace } from '../vfio/index.ts';
import {
  PCI_CFG_SPACE_SIZE,
  PCI_DVSEC_HEADER1,
  PCI_DVSEC_HEADER2,
  PCI_EXT_CAP_ID_DVSEC,
} from '../vfio/index.ts';

/** GPU_CAP_DVSEC_REGISTER: the DVSEC id (header 2) of NVIDIA's GPU-capability DVSEC. */
export const GPU_CAP_DVSEC_REGISTER = 3;
/** DVSEC_BITMAP_OFFSET: byte offset of the 16-bit capability bitmap from the DVSEC's start. */
export const DVSEC_BITMAP_OFFSET = 0xa;
/** MIG_SUPPORTED_WITH_CACHED_RESMEM: bitmap bit 0, set when the MIG hardware bug is fixed. */
export const MIG_SUPPORTED_WITH_CACHED_RESMEM = 1 << 0;
/** The DVSEC's length in header 1: headers, the bitmap and a reserved dword. */
export const GPU_CAP_DVSEC_LENGTH = 0x10;

/** pci_find_dvsec_capability(): the DVSEC's offset, or 0. Bounded like pci_find_next_ext_capability. */
export function findDvsec(config: ConfigSpace, vendor: number, id: number): number {
  if (config.size <= PCI_CFG_SPACE_SIZE) return 0;
  // (PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / 8: the most headers the space can hold
  let ttl = (config.size - PCI_CFG_SPACE_SIZE) / 8;
  let pos = PCI_CFG_SPACE_SIZE;
  while (pos >= PCI_CFG_SPACE_SIZE && ttl-- > 0) {
    const header = config.u32(pos);
    if (header === 0) return 0;
    if (
      (header & 0xffff) === PCI_EXT_CAP_ID_DVSEC &&
      (config.u32(pos + PCI_DVSEC_HEADER1) & 0xffff) === vendor &&
      (config.u32(pos + PCI_DVSEC_HEADER2) & 0xffff) === id
    )
      return pos;
    pos = header >>> 20;
  }
  return 0;
}

/** nvgrace_gpu_has_mig_hw_bug(). */
export function hasMigHwBug(config: ConfigSpace): boolean {
  const dvsec = findDvsec(config, PCI_VENDOR_ID_NVIDIA, GPU_CAP_DVSEC_REGISTER);
  if (dvsec === 0) return true;
  return (config.u16(dvsec + DVSEC_BITMAP_OFFSET) & MIG_SUPPORTED_WITH_CACHED_RESMEM) === 0;
}

/** The DVSEC's body after its 4-byte extended header: header 1, header 2 (id), bitmap, reserved. */
export function gpuCapDvsecBody(migFixed: boolean): number[] {
  const body = new Array<number>(GPU_CAP_DVSEC_LENGTH - 4).fill(0);
  const header1 = (PCI_VENDOR_ID_NVIDIA | (GPU_CAP_DVSEC_LENGTH << 20)) >>> 0;
  for (let i = 0; i < 4; i++) body[i] = (header1 >>> (8 * i)) & 0xff;
  body[4] = GPU_CAP_DVSEC_REGISTER;
  body[DVSEC_BITMAP_OFFSET - 4] = migFixed ? MIG_SUPPORTED_WITH_CACHED_RESMEM : 0;
  return body;
}
