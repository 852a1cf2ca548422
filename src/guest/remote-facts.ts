/**
 * DeviceFacts read over vfio-user, the queries QEMU's vfio-pci made at realize
 * (hw/vfio/pci.c vfio_realize; hw/vfio/common.c vfio_get_dev_region_info): vendor, device and
 * class from config space, then GET_REGION_INFO of every region (argsz 32, then the argsz the
 * reply asks for) keeping those with a TYPE capability and their SSATGT/LNKSPD. Regions that
 * fail are skipped, as vfio_get_dev_region_info skips them. The IOMMU group does not cross the
 * wire: it comes from serve's devices.json when the caller has it. BARs as vfio_bar_prepare saw
 * them: each region's size from region info, its type bits from the config-space register; the
 * ROM's size is region 6's (vfio_pci_size_rom sizes it through the ROM register, which the
 * kernel backs with the same resource, so the two agree; the guest command writes nothing).
 */
import { closeFd } from '../native/index.ts';
import { VFIO_PCI_CONFIG_REGION_INDEX } from '../vfio/index.ts';
import type { VfioUserClient } from '../vfio-user/index.ts';
import { ReplyError } from '../vfio-user/index.ts';
import type { BarFacts, DeviceFacts, TypedRegionFacts } from './device-facts.ts';

/** VFIO_PCI_ROM_REGION_INDEX, also QEMU's PCI_ROM_SLOT. */
const ROM_INDEX = 6;
/** PCI_BASE_ADDRESS_0, PCI_HEADER_TYPE, PCI_BASE_ADDRESS_SPACE_IO (include/uapi/linux/pci_regs.h). */
const PCI_BASE_ADDRESS_0 = 0x10;
const PCI_HEADER_TYPE = 0x0e;
const PCI_BASE_ADDRESS_SPACE_IO = 0x1;

interface RegionFacts {
  readonly size: bigint;
  readonly typed: TypedRegionFacts | null;
}

async function regionFacts(client: VfioUserClient, index: number): Promise<RegionFacts | null> {
  let result: Awaited<ReturnType<VfioUserClient['regionInfo']>>;
  try {
    result = await client.regionInfo(index);
  } catch (e) {
    if (e instanceof ReplyError) return null;
    throw e;
  }
  // We only read the info; QEMU would mmap here (pci-quirks.c), the guest command does not.
  if (result.fd !== null) closeFd(result.fd);
  let type: { type: number; subtype: number } | null = null;
  let tgt: bigint | null = null;
  let linkSpeed: number | null = null;
  for (const cap of result.decoded.caps) {
    const v = cap.value;
    if (v.kind === 'type' && type === null) type = { type: v.type, subtype: v.subtype };
    else if (v.kind === 'nvlink2-ssatgt' && tgt === null) tgt = v.tgt;
    else if (v.kind === 'nvlink2-lnkspd' && linkSpeed === null) linkSpeed = v.linkSpeed;
  }
  const size = result.decoded.size;
  return { size, typed: type === null ? null : { index, ...type, size, tgt, linkSpeed } };
}

/** The 32-bit BAR register `index` read alone (pci_default_read_config of 4 bytes). */
async function barRegister(client: VfioUserClient, index: number): Promise<number> {
  const b = await client.regionRead(
    VFIO_PCI_CONFIG_REGION_INDEX,
    BigInt(PCI_BASE_ADDRESS_0 + 4 * index),
    4,
  );
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

/** vfio_bar_prepare: `type = pci_bar & (ioport ? ~PCI_BASE_ADDRESS_IO_MASK : ~PCI_BASE_ADDRESS_MEM_MASK)`. */
function barType(register: number): number {
  return register & PCI_BASE_ADDRESS_SPACE_IO ? register & 0x3 : register & 0xf;
}

/**
 * The facts of the device behind a negotiated `client`.
 * @throws ReplyError when device info or the config-space read fails.
 */
export async function readRemoteFacts(
  client: VfioUserClient,
  address: string,
  iommuGroup: number | null,
): Promise<DeviceFacts> {
  const info = await client.getDeviceInfo();
  // The standard header up to PCI_CAPABILITY_LIST: ids, class, header type, BARs, ROM.
  const config = await client.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 0n, 0x34);
  const view = new DataView(config.buffer, config.byteOffset, config.byteLength);
  const regions: TypedRegionFacts[] = [];
  const bars: BarFacts[] = [];
  for (let index = 0; index < info.numRegions; index++) {
    const r = await regionFacts(client, index);
    if (r?.typed) regions.push(r.typed);
    if (index > ROM_INDEX) continue;
    const size = r?.size ?? 0n;
    // PCI_BASE_ADDRESS_SPACE_MEMORY (0) for the ROM, as vfio_pci_size_rom registers it.
    // Each BAR register read on its own, as QEMU's vfio_bar_prepare does: a variant may emulate
    // BARs per register (nvgrace-gpu patches BAR2/3 only when a read covers them alone).
    const type = index === ROM_INDEX ? 0 : barType(await barRegister(client, index));
    bars.push({ index, size, type });
  }
  return {
    address,
    vendor: view.getUint16(0, true),
    device: view.getUint16(2, true),
    // PCI_CLASS_PROG (0x09) .. PCI_CLASS_DEVICE (0x0b), little-endian.
    classCode: view.getUint32(8, true) >>> 8,
    headerType: view.getUint8(PCI_HEADER_TYPE),
    bars,
    iommuGroup,
    regions,
    barSizes: Array.from({ length: 6 }, (_, i) => bars[i]?.size ?? 0n),
  };
}
