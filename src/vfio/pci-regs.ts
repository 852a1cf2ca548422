/**
 * PCI configuration-space offsets, bits and capability ids the vfio-pci core emulates
 * (include/uapi/linux/pci_regs.h, v5.12). Numbers only; no behaviour.
 */

// include/uapi/linux/pci_regs.h: standard type-0 header
/** pci_regs.h PCI_VENDOR_ID: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_VENDOR_ID = 0x00;
/** pci_regs.h PCI_DEVICE_ID: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_DEVICE_ID = 0x02;
/** pci_regs.h PCI_COMMAND: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_COMMAND = 0x04;
/** pci_regs.h PCI_STATUS: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_STATUS = 0x06;
/** pci_regs.h PCI_CLASS_REVISION: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_CLASS_REVISION = 0x08;
/** pci_regs.h PCI_CACHE_LINE_SIZE: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_CACHE_LINE_SIZE = 0x0c;
/** pci_regs.h PCI_LATENCY_TIMER: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_LATENCY_TIMER = 0x0d;
/** pci_regs.h PCI_HEADER_TYPE: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_HEADER_TYPE = 0x0e;
/** pci_regs.h PCI_BASE_ADDRESS_0: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_BASE_ADDRESS_0 = 0x10;
/** pci_regs.h PCI_SUBSYSTEM_VENDOR_ID: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
/** pci_regs.h PCI_SUBSYSTEM_ID: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_SUBSYSTEM_ID = 0x2e;
/** pci_regs.h PCI_ROM_ADDRESS: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_ROM_ADDRESS = 0x30;
/** pci_regs.h PCI_CAPABILITY_LIST: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_CAPABILITY_LIST = 0x34;
/** pci_regs.h PCI_INTERRUPT_LINE: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_INTERRUPT_LINE = 0x3c;
/** pci_regs.h PCI_INTERRUPT_PIN: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_INTERRUPT_PIN = 0x3d;
/** PCI_STD_HEADER_SIZEOF: the standard header is 64 bytes. */
export const PCI_STD_HEADER_SIZEOF = 0x40;
/** PCI_CFG_SPACE_SIZE / PCI_CFG_SPACE_EXP_SIZE (include/linux/pci.h). */
export const PCI_CFG_SPACE_SIZE = 0x100;
/** pci_regs.h PCI_CFG_SPACE_EXP_SIZE: config-space offset (bytes) of a register of the standard type-0 header. */
export const PCI_CFG_SPACE_EXP_SIZE = 0x1000;

// pci_regs.h: PCI_COMMAND bits
/** pci_regs.h PCI_COMMAND_IO: a bit of the Command register (PCI_COMMAND). */
export const PCI_COMMAND_IO = 0x1;
/** pci_regs.h PCI_COMMAND_MEMORY: a bit of the Command register (PCI_COMMAND). */
export const PCI_COMMAND_MEMORY = 0x2;
/** pci_regs.h PCI_COMMAND_MASTER: a bit of the Command register (PCI_COMMAND). */
export const PCI_COMMAND_MASTER = 0x4;
/** pci_regs.h PCI_COMMAND_PARITY: a bit of the Command register (PCI_COMMAND). */
export const PCI_COMMAND_PARITY = 0x40;
/** pci_regs.h PCI_COMMAND_SERR: a bit of the Command register (PCI_COMMAND). */
export const PCI_COMMAND_SERR = 0x100;
/** pci_regs.h PCI_COMMAND_INTX_DISABLE: a bit of the Command register (PCI_COMMAND). */
export const PCI_COMMAND_INTX_DISABLE = 0x400;

// pci_regs.h: PCI_STATUS bits
/** pci_regs.h PCI_STATUS_INTERRUPT: a bit of the Status register (PCI_STATUS). */
export const PCI_STATUS_INTERRUPT = 0x08;
/** pci_regs.h PCI_STATUS_CAP_LIST: a bit of the Status register (PCI_STATUS). */
export const PCI_STATUS_CAP_LIST = 0x10;
/** Error bits that are write-1-to-clear: PARITY, SIG/REC_TARGET_ABORT, REC_MASTER_ABORT, SIG_SYSTEM_ERROR, DETECTED_PARITY. */
export const PCI_STATUS_RW1C = 0xf900;

// pci_regs.h: BAR type bits
/** pci_regs.h PCI_BASE_ADDRESS_SPACE_IO: a type bit in the low bits of a BAR. */
export const PCI_BASE_ADDRESS_SPACE_IO = 0x01;
/** pci_regs.h PCI_BASE_ADDRESS_MEM_TYPE_64: a type bit in the low bits of a BAR. */
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04;
/** pci_regs.h PCI_BASE_ADDRESS_MEM_PREFETCH: a type bit in the low bits of a BAR. */
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08;
/** pci_regs.h PCI_ROM_ADDRESS_ENABLE: the ROM BAR's enable bit. */
export const PCI_ROM_ADDRESS_ENABLE = 0x01;

// pci_regs.h: capability ids
/** pci_regs.h PCI_CAP_ID_PM: a capability ID (the byte at the capability's offset 0). */
export const PCI_CAP_ID_PM = 0x01;
/** pci_regs.h PCI_CAP_ID_MSI: a capability ID (the byte at the capability's offset 0). */
export const PCI_CAP_ID_MSI = 0x05;
/** pci_regs.h PCI_CAP_ID_VNDR: a capability ID (the byte at the capability's offset 0). */
export const PCI_CAP_ID_VNDR = 0x09;
/** pci_regs.h PCI_CAP_ID_EXP: a capability ID (the byte at the capability's offset 0). */
export const PCI_CAP_ID_EXP = 0x10;
/** pci_regs.h PCI_CAP_ID_MSIX: a capability ID (the byte at the capability's offset 0). */
export const PCI_CAP_ID_MSIX = 0x11;
/** vfio_pci_config.c: PCI_CAP_ID_BASIC, the owner of the standard header. */
export const PCI_CAP_ID_BASIC = 0x00;
/** vfio_pci_config.c: PCI_CAP_ID_INVALID, bytes no capability owns (read-only). */
export const PCI_CAP_ID_INVALID = 0xff;

// pci_regs.h: MSI
/** pci_regs.h PCI_MSI_FLAGS: offset (bytes) of a register from the MSI capability's start. */
export const PCI_MSI_FLAGS = 0x02;
/** pci_regs.h PCI_MSI_FLAGS_ENABLE: a field mask of the MSI Message Control register. */
export const PCI_MSI_FLAGS_ENABLE = 0x0001;
/** pci_regs.h PCI_MSI_FLAGS_QMASK: a field mask of the MSI Message Control register. */
export const PCI_MSI_FLAGS_QMASK = 0x000e;
/** pci_regs.h PCI_MSI_FLAGS_QSIZE: a field mask of the MSI Message Control register. */
export const PCI_MSI_FLAGS_QSIZE = 0x0070;
/** pci_regs.h PCI_MSI_FLAGS_64BIT: a field mask of the MSI Message Control register. */
export const PCI_MSI_FLAGS_64BIT = 0x0080;
/** pci_regs.h PCI_MSI_FLAGS_MASKBIT: a field mask of the MSI Message Control register. */
export const PCI_MSI_FLAGS_MASKBIT = 0x0100;

// pci_regs.h: MSI-X
/** pci_regs.h PCI_MSIX_FLAGS: offset (bytes) of a register from the MSI-X capability's start. */
export const PCI_MSIX_FLAGS = 0x02;
/** pci_regs.h PCI_MSIX_FLAGS_QSIZE: a field mask of the MSI-X Message Control register. */
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff;
/** pci_regs.h PCI_MSIX_FLAGS_MASKALL: a field mask of the MSI-X Message Control register. */
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
/** pci_regs.h PCI_MSIX_FLAGS_ENABLE: a field mask of the MSI-X Message Control register. */
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
/** pci_regs.h PCI_MSIX_TABLE: offset (bytes) of a register from the MSI-X capability's start. */
export const PCI_MSIX_TABLE = 0x04;
/** pci_regs.h PCI_MSIX_PBA: offset (bytes) of a register from the MSI-X capability's start. */
export const PCI_MSIX_PBA = 0x08;
/** pci_regs.h PCI_MSIX_TABLE_BIR: the BAR indicator (BIR) bits of the MSI-X Table/PBA register. */
export const PCI_MSIX_TABLE_BIR = 0x7;

// pci_regs.h: power management
/** pci_regs.h PCI_PM_CTRL: offset (bytes) of PM Control/Status from the PM capability's start. */
export const PCI_PM_CTRL = 0x04;
/** pci_regs.h PCI_PM_CTRL_STATE_MASK: a field mask of the PM Control/Status register. */
export const PCI_PM_CTRL_STATE_MASK = 0x0003;
/** pci_regs.h PCI_PM_CTRL_PME_ENABLE: a field mask of the PM Control/Status register. */
export const PCI_PM_CTRL_PME_ENABLE = 0x0100;
/** pci_regs.h PCI_PM_CTRL_PME_STATUS: a field mask of the PM Control/Status register. */
export const PCI_PM_CTRL_PME_STATUS = 0x8000;

// pci_regs.h: PCI Express
/** pci_regs.h PCI_EXP_FLAGS: offset (bytes) of a register from the PCI Express capability's start. */
export const PCI_EXP_FLAGS = 0x02;
/** pci_regs.h PCI_EXP_DEVCAP: offset (bytes) of a register from the PCI Express capability's start. */
export const PCI_EXP_DEVCAP = 0x04;
/** pci_regs.h PCI_EXP_DEVCAP_FLR: a bit of a PCI Express capability register. */
export const PCI_EXP_DEVCAP_FLR = 0x10000000;
/** pci_regs.h PCI_EXP_DEVCTL: offset (bytes) of a register from the PCI Express capability's start. */
export const PCI_EXP_DEVCTL = 0x08;
/** pci_regs.h PCI_EXP_DEVCTL_BCR_FLR: a bit of a PCI Express capability register. */
export const PCI_EXP_DEVCTL_BCR_FLR = 0x8000;
/** pci_regs.h PCI_EXP_DEVSTA: offset (bytes) of a register from the PCI Express capability's start. */
export const PCI_EXP_DEVSTA = 0x0a;
/** pci_regs.h PCI_EXP_LNKCAP: offset (bytes) of a register from the PCI Express capability's start. */
export const PCI_EXP_LNKCAP = 0x0c;
/** pci_regs.h PCI_EXP_LNKCTL: offset (bytes) of a register from the PCI Express capability's start. */
export const PCI_EXP_LNKCTL = 0x10;
/** pci_regs.h PCI_EXP_LNKSTA: offset (bytes) of a register from the PCI Express capability's start. */
export const PCI_EXP_LNKSTA = 0x12;
/** pci_regs.h PCI_EXP_DEVCTL2: offset (bytes) of a register from the PCI Express capability's start. */
export const PCI_EXP_DEVCTL2 = 0x28;
/** pci_regs.h PCI_EXP_LNKCTL2: offset (bytes) of a register from the PCI Express capability's start. */
export const PCI_EXP_LNKCTL2 = 0x30;
/** PCI_CAP_EXP_ENDPOINT_SIZEOF_V2. */
export const PCI_CAP_EXP_ENDPOINT_SIZEOF_V2 = 0x3c;
/** pci_regs.h PCI_EXP_TYPE_ENDPOINT: the device/port type of an endpoint (PCI_EXP_FLAGS bits 7:4). */
export const PCI_EXP_TYPE_ENDPOINT = 0x0;

/** Extended capability header (include/uapi/linux/pci_regs.h): id 15:0, version 19:16, next 31:20. */
export const PCI_EXT_CAP_ID_DVSEC = 0x23;
/** DVSEC header 1 (vendor 15:0, revision 19:16, length 31:20) and header 2 (DVSEC id 15:0). */
export const PCI_DVSEC_HEADER1 = 0x4;
/** PCI_DVSEC_HEADER2: offset of DVSEC header 2 (DVSEC id 15:0). */
export const PCI_DVSEC_HEADER2 = 0x8;
