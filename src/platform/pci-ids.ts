/**
 * PCI vendor, device, subsystem and class codes of the functions this project emulates, each
 * defined once. Vendors and classes as the kernel's include/linux/pci_ids.h names them; device
 * and subsystem IDs from pci.ids (https://pci-ids.ucw.cz) and, for the IBM functions skiboot
 * creates, skiboot's hw/npu2.c and hw/phb4.c; reference nvlink2.md section 2.
 */

/** PCI_VENDOR_ID_IBM (include/linux/pci_ids.h). */
export const PCI_VENDOR_ID_IBM = 0x1014;
/** PCI_VENDOR_ID_NVIDIA (include/linux/pci_ids.h). */
export const PCI_VENDOR_ID_NVIDIA = 0x10de;
/** PCI_VENDOR_ID_INTEL (include/linux/pci_ids.h): the IGD OpRegion's vendor type. */
export const PCI_VENDOR_ID_INTEL = 0x8086;

/** pci.ids 10de:1db1 "GV100GL [Tesla V100 SXM2 16GB]". */
export const PCI_DEVICE_ID_NVIDIA_V100_SXM2_16GB = 0x1db1;
/** pci.ids 10de:1db5 "GV100GL [Tesla V100 SXM2 32GB]". */
export const PCI_DEVICE_ID_NVIDIA_V100_SXM2_32GB = 0x1db5;
/** pci.ids 10de:15f9 "GP100GL [Tesla P100 SXM2 16GB]" (POWER8's NVLink1 GPU). */
export const PCI_DEVICE_ID_NVIDIA_P100_SXM2 = 0x15f9;
/** pci.ids 1014:04ea "Nvlink2 Bridge": skiboot hw/npu2.c's emulated NVLink bridge function. */
export const PCI_DEVICE_ID_IBM_NPU2_NVLINK = 0x04ea;
/** pci.ids 1014:04c1 "POWER9 Host Bridge (PHB4)": the root port of a PHB4 (hw/phb4.c). */
export const PCI_DEVICE_ID_IBM_PHB4_ROOT_PORT = 0x04c1;

/** Subsystem IDs (vendor NVIDIA) of the SXM2 boards of a Witherspoon: pci.ids, lspci of real boards. */
export const PCI_SUBSYSTEM_ID_NVIDIA_V100_SXM2_16GB = 0x1212;
/** Subsystem ID of the Tesla V100 SXM2 32GB (pci.ids 10de:1db1 10de:124a). */
export const PCI_SUBSYSTEM_ID_NVIDIA_V100_SXM2_32GB = 0x124a;
/** Subsystem ID of the Tesla P100 SXM2 (pci.ids 10de:15f9 10de:116b). */
export const PCI_SUBSYSTEM_ID_NVIDIA_P100_SXM2 = 0x116b;

/** PCI_BASE_CLASS_DISPLAY (include/linux/pci_ids.h): class code bits 23:16. */
export const PCI_BASE_CLASS_DISPLAY = 0x03;
/** PCI_CLASS_DISPLAY_VGA: class code bits 23:8 of a VGA-compatible function. */
export const PCI_CLASS_DISPLAY_VGA = 0x0300;
/** PCI_CLASS_BRIDGE_PCI: class code bits 23:8 of a PCI-to-PCI bridge. */
export const PCI_CLASS_BRIDGE_PCI = 0x0604;

/** 24-bit class codes (base, sub, prog-if) of the emulated functions. */
export const CLASS_CODE_3D_CONTROLLER = 0x030200;
/** skiboot hw/npu2.c npu2_populate_cfg: PCI_CFG_REV_ID 0x06800101, class 0x068001 ("other bridge"). */
export const CLASS_CODE_NPU2_BRIDGE = 0x068001;
/** Class code of a PCI-to-PCI bridge (0x0604, prog-if 0), the PHB4 root port's. */
export const CLASS_CODE_PCI_BRIDGE = 0x060400;

/**
 * The nvgrace-gpu driver's pci_device_id table (drivers/vfio/pci/nvgrace-gpu/main.c
 * nvgrace_gpu_vfio_pci_table): the Grace Hopper and Grace Blackwell GPUs, names as its comments.
 */
/** 10de:2342 "GH200 120GB". */
export const PCI_DEVICE_ID_NVIDIA_GH200_120GB = 0x2342;
/** 10de:2345 "GH200 480GB". */
export const PCI_DEVICE_ID_NVIDIA_GH200_480GB = 0x2345;
/** 10de:2348 "GH200 SKU". */
export const PCI_DEVICE_ID_NVIDIA_GH200 = 0x2348;
/** 10de:2941 "GB200 SKU". */
export const PCI_DEVICE_ID_NVIDIA_GB200 = 0x2941;
/** 10de:31c2 "GB300 SKU". */
export const PCI_DEVICE_ID_NVIDIA_GB300 = 0x31c2;
