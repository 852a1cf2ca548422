/**
 * DeviceFacts read over vfio-user, the queries QEMU's vfio-pci made at realize
 * (hw/vfio/pci.c vfio_realize; hw/vfio/common.c vfio_get_dev_region_info): vendor, device and
 * class from config space, then GET_REGION_INFO of every region (argsz 32, then the argsz the
 * reply asks for) keeping those with a TYPE capability and their SSATGT/LNKSPD. Regions that
 * fail are skipped, as vfio_get_dev_region_info skips them. The IOMMU group does not cross the
 * wire: it comes from serve's devices.json when the caller has it.
 */
import { closeFd } from '../native/index.ts';
import { VFIO_PCI_CONFIG_REGION_INDEX } from '../vfio/index.ts';
import type { VfioUserClient } from '../vfio-user/index.ts';
import { ReplyError } from '../vfio-user/index.ts';
import type { DeviceFacts, TypedRegionFacts } from './device-facts.ts';

async function typedRegion(
  client: VfioUserClient,
  index: number,
): Promise<TypedRegionFacts | null> {
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
  if (type === null) return null;
  return { index, ...type, size: result.decoded.size, tgt, linkSpeed };
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
  const config = await client.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 0n, 12);
  const view = new DataView(config.buffer, config.byteOffset, config.byteLength);
  const regions: TypedRegionFacts[] = [];
  for (let index = 0; index < info.numRegions; index++) {
    const r = await typedRegion(client, index);
    if (r) regions.push(r);
  }
  return {
    address,
    vendor: view.getUint16(0, true),
    device: view.getUint16(2, true),
    // PCI_CLASS_PROG (0x09) .. PCI_CLASS_DEVICE (0x0b), little-endian.
    classCode: view.getUint32(8, true) >>> 8,
    iommuGroup,
    regions,
  };
}
