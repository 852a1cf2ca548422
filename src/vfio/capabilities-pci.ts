/**
 * Builders for the standard PCI capabilities the emulated functions carry (PM, MSI, PCI
 * Express, MSI-X, vendor-specific), each claiming its bytes in the config-space map with the
 * write and write-1-to-clear masks vfio_pci_config.c gives them (init_pci_cap_pm_perm,
 * init_pci_cap_msi_perm / vfio_msi_cap_len, init_pci_cap_exp_perm; MSI-X as hardware, since
 * vfio-pci passes it through). Layouts: include/uapi/linux/pci_regs.h.
 */
import type { ConfigSpace } from './config-space.ts';
import * as R from './pci-regs.ts';

/** Link capabilities into the chain in order: 0x34 points at the first, each next at the one after. */
export function linkCapabilities(cs: ConfigSpace, offsets: readonly number[]): void {
  cs.define(R.PCI_CAPABILITY_LIST, 1, offsets[0] ?? 0);
  offsets.forEach((at, i) => {
    cs.define(at + 1, 1, offsets[i + 1] ?? 0);
  });
}

/** Power management v3 (8 bytes): PMCSR power state and PME enable writable, PME status RW1C. */
export function addPmCapability(cs: ConfigSpace, at: number): void {
  cs.claim(at, 8, R.PCI_CAP_ID_PM);
  cs.define(at, 1, R.PCI_CAP_ID_PM);
  cs.define(at + 2, 2, 0x0003); // PMC: version 3, no PME support, no D1/D2
  cs.define(
    at + R.PCI_PM_CTRL,
    2,
    0x0008, // NoSoftRst+
    R.PCI_PM_CTRL_STATE_MASK | R.PCI_PM_CTRL_PME_ENABLE,
    R.PCI_PM_CTRL_PME_STATUS,
  );
}

/** The shape of an MSI capability: vectors, 64-bit addresses, per-vector masking. */
export interface MsiLayout {
  /** Vectors the function asks for (a power of two, 1–32): Multiple Message Capable. */
  readonly vectors: number;
  readonly is64: boolean;
  readonly maskable: boolean;
}

/** vfio_pci_config.c vfio_msi_cap_len(): 10 bytes, +4 for 64-bit, +10 for per-vector masking. */
export function msiCapabilityLength(layout: MsiLayout): number {
  let len = 10;
  if (layout.is64) len += 4;
  if (layout.maskable) len += 10;
  return len;
}

/**
 * Writes an MSI capability of `layout` at config offset `at` and makes its control, address and
 * data bytes writable (vfio_pci_config.c vfio_msi_cap_len / init_pci_cap_msi_perm).
 */
export function addMsiCapability(cs: ConfigSpace, at: number, layout: MsiLayout): void {
  const mmc = Math.log2(layout.vectors);
  let flags = mmc << 1;
  if (layout.is64) flags |= R.PCI_MSI_FLAGS_64BIT;
  if (layout.maskable) flags |= R.PCI_MSI_FLAGS_MASKBIT;
  cs.claim(at, msiCapabilityLength(layout), R.PCI_CAP_ID_MSI);
  cs.define(at, 1, R.PCI_CAP_ID_MSI);
  cs.define(at + R.PCI_MSI_FLAGS, 2, flags, R.PCI_MSI_FLAGS_ENABLE | R.PCI_MSI_FLAGS_QSIZE);
  cs.define(at + 4, 4, 0, 0xfffffffc); // message address
  let next = at + 8;
  if (layout.is64) {
    cs.define(next, 4, 0, 0xffffffff); // upper address
    next += 4;
  }
  cs.define(next, 2, 0, 0xffff); // message data
  if (layout.maskable)
    cs.define(next + 4, 4, 0, layout.vectors === 32 ? 0xffffffff : (1 << layout.vectors) - 1);
}

/** The shape of a PCI Express capability: link speed and width, FLR support. */
export interface ExpLayout {
  /** Max link speed (1 = 2.5 GT/s … 3 = 8 GT/s) and width. */
  readonly linkSpeed: number;
  readonly linkWidth: number;
  readonly flr: boolean;
}

/** PCI Express v2 endpoint (0x3c bytes). */
export function addExpCapability(cs: ConfigSpace, at: number, layout: ExpLayout): void {
  cs.claim(at, R.PCI_CAP_EXP_ENDPOINT_SIZEOF_V2, R.PCI_CAP_ID_EXP);
  cs.define(at, 1, R.PCI_CAP_ID_EXP);
  cs.define(at + R.PCI_EXP_FLAGS, 2, 0x2 | (R.PCI_EXP_TYPE_ENDPOINT << 4));
  // DEVCAP: max payload 256 B, extended tags, role-based errors, FLR if the device has it
  const devcap = 0x1 | 0x20 | 0x8000 | (layout.flr ? R.PCI_EXP_DEVCAP_FLR : 0);
  cs.define(at + R.PCI_EXP_DEVCAP, 4, devcap >>> 0);
  // DEVCTL writable (FLR initiate included, handled by the device); DEVSTA error bits RW1C
  cs.define(at + R.PCI_EXP_DEVCTL, 2, 0x2810, 0xffff);
  cs.define(at + R.PCI_EXP_DEVSTA, 2, 0, 0, 0x000f);
  const lnkcap = layout.linkSpeed | (layout.linkWidth << 4);
  cs.define(at + R.PCI_EXP_LNKCAP, 4, lnkcap);
  cs.define(at + R.PCI_EXP_LNKCTL, 2, 0, 0x0fff);
  cs.define(at + R.PCI_EXP_LNKSTA, 2, layout.linkSpeed | (layout.linkWidth << 4));
  cs.define(at + R.PCI_EXP_DEVCTL2, 2, 0, 0xffff);
  cs.define(at + R.PCI_EXP_LNKCTL2, 2, layout.linkSpeed, 0xffff);
}

/**
 * The shape of an MSI-X capability: table size (vectors), and the BAR and byte offset of the table
 * and of the PBA.
 */
export interface MsixLayout {
  readonly tableSize: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

/** MSI-X (12 bytes): enable and function mask writable, table/PBA locations read-only. */
export function addMsixCapability(cs: ConfigSpace, at: number, layout: MsixLayout): void {
  cs.claim(at, 12, R.PCI_CAP_ID_MSIX);
  cs.define(at, 1, R.PCI_CAP_ID_MSIX);
  cs.define(
    at + R.PCI_MSIX_FLAGS,
    2,
    (layout.tableSize - 1) & R.PCI_MSIX_FLAGS_QSIZE,
    R.PCI_MSIX_FLAGS_ENABLE | R.PCI_MSIX_FLAGS_MASKALL,
  );
  cs.define(at + R.PCI_MSIX_TABLE, 4, (layout.tableOffset | layout.tableBar) >>> 0);
  cs.define(at + R.PCI_MSIX_PBA, 4, (layout.pbaOffset | layout.pbaBar) >>> 0);
}

/** Vendor-specific capability: id, next, length, then `body` (read-only). */
export function addVendorCapability(cs: ConfigSpace, at: number, body: readonly number[]): void {
  const length = body.length + 3;
  cs.claim(at, length, R.PCI_CAP_ID_VNDR);
  cs.define(at, 1, R.PCI_CAP_ID_VNDR);
  cs.define(at + 2, 1, length);
  body.forEach((b, i) => {
    cs.define(at + 3 + i, 1, b);
  });
}
