/**
 * Regions 0–8 of a vfio-pci device: BAR0–5, ROM, CONFIG, VGA — what vfio_pci_ioctl's
 * VFIO_DEVICE_GET_REGION_INFO switch reports for them and how vfio_pci_rw / vfio_pci_mmap
 * dispatch to them (drivers/vfio/pci/vfio_pci.c, vfio_pci_rdwr.c, v5.12). Every memory BAR is
 * mmap-able (bar_mmap_supported: page-aligned and ≥ a page, or padded to one); a BAR with
 * register pages (bar-setup.ts) carries SPARSE_MMAP listing the rest; the BAR holding the
 * MSI-X table also carries MSIX_MAPPABLE (msix_mmappable_cap). The expansion ROM is not
 * implemented (size 0, flags 0); VGA exists only for a VGA-class function.
 */
import { hex } from '../text/index.ts';
import type { BarMemory } from './bar-region.ts';
import type { ConfigSpace } from './config-space.ts';
import { VfioError } from './errors.ts';
import { encodeMsixMappableCap, encodeSparseMmapCap } from './info-caps.ts';
import { PCI_CAP_ID_MSIX, PCI_MSIX_TABLE, PCI_MSIX_TABLE_BIR } from './pci-regs.ts';
import { RegionFlag } from './region.ts';
import {
  type RegionDescription,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_ROM_REGION_INDEX,
  VFIO_PCI_VGA_REGION_INDEX,
} from './region-info.ts';

/** Names inspect prints for regions 0–8. */
export const STANDARD_REGION_NAMES = [
  'BAR0',
  'BAR1',
  'BAR2',
  'BAR3',
  'BAR4',
  'BAR5',
  'ROM',
  'CONFIG',
  'VGA',
] as const;

/** VGA legacy range size (vfio_pci.c: 0xc0000 covering 0xa0000–0xbffff and I/O). */
export const VGA_REGION_SIZE = 0xc0000n;

/** What regions 0–8 need of a device: config space, BAR memory and whether it is a VGA function. */
export interface StandardRegions {
  readonly config: ConfigSpace;
  /** BarMemory by BAR index; undefined for unimplemented BARs and upper halves. */
  readonly bars: readonly (BarMemory | undefined)[];
  /** A VGA-class function (class 0x0300): vdev->has_vga. */
  readonly hasVga: boolean;
}

/** The BAR index holding the MSI-X table (vdev->msix_bar), or -1. */
export function msixBar(config: ConfigSpace): number {
  const cap = config.capabilities().find((c) => c.id === PCI_CAP_ID_MSIX);
  return cap ? config.u32(cap.offset + PCI_MSIX_TABLE) & PCI_MSIX_TABLE_BIR : -1;
}

/** vfio_pci_ioctl GET_REGION_INFO cases 0–8. @throws VfioError EINVAL for VGA without VGA */
export function describeStandardRegion(regions: StandardRegions, index: number): RegionDescription {
  if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
    return {
      index,
      flags: RegionFlag.READ | RegionFlag.WRITE,
      size: BigInt(regions.config.size),
      caps: [],
    };
  }
  if (index === VFIO_PCI_ROM_REGION_INDEX) return { index, flags: 0, size: 0n, caps: [] };
  if (index === VFIO_PCI_VGA_REGION_INDEX) {
    if (!regions.hasVga)
      throw new VfioError('EINVAL', 'region 8 (VGA): the function is not a VGA device');
    return { index, flags: RegionFlag.READ | RegionFlag.WRITE, size: VGA_REGION_SIZE, caps: [] };
  }
  const bar = regions.bars[index];
  if (!bar) return { index, flags: 0, size: 0n, caps: [] };
  // A BAR with register pages offers only the rest to map (as the kernel's sparse areas left
  // the MSI-X table out before 4.16: vfio_pci.c msix_sparse_mmap_cap()).
  const sparse =
    bar.registerPages.length > 0
      ? [
          encodeSparseMmapCap(
            bar.mappableAreas().map((a) => ({ offset: a.start, size: a.end - a.start })),
          ),
        ]
      : [];
  const msix = index === msixBar(regions.config) ? [encodeMsixMappableCap()] : [];
  return {
    index,
    flags: RegionFlag.READ | RegionFlag.WRITE | RegionFlag.MMAP,
    size: bar.size,
    caps: [...sparse, ...msix],
    mmap: (request) => bar.mmap(request),
  };
}

/**
 * vfio_pci_rw() for indexes 0–8: returns the bytes done.
 * @throws VfioError EFAULT past config space; EINVAL for the ROM (size 0), VGA on a non-VGA
 *   function or past its end, an unimplemented BAR, or (BarMemory) past the BAR's end.
 */
export function standardRegionRw(
  regions: StandardRegions,
  index: number,
  offset: bigint,
  buf: Uint8Array,
  write: boolean,
): number {
  if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
    if (buf.length > 0 && offset >= BigInt(regions.config.size)) {
      throw new VfioError('EFAULT', `config space offset ${hex(offset)} is past its end`);
    }
    if (write) regions.config.write(Number(offset), buf);
    else regions.config.read(Number(offset), buf);
    return buf.length;
  }
  if (index === VFIO_PCI_ROM_REGION_INDEX) {
    throw new VfioError(
      'EINVAL',
      write ? 'the ROM region is read-only' : 'the ROM region has size 0',
    );
  }
  if (index === VFIO_PCI_VGA_REGION_INDEX) {
    if (!regions.hasVga)
      throw new VfioError('EINVAL', 'region 8 (VGA): the function is not a VGA device');
    if (offset >= VGA_REGION_SIZE)
      throw new VfioError('EINVAL', `VGA offset ${hex(offset)} is past its end`);
    if (!write) buf.fill(0);
    return buf.length;
  }
  const bar = regions.bars[index];
  if (!bar) throw new VfioError('EINVAL', `region ${index} (BAR${index}) is not implemented`);
  return bar.rw(offset, buf, write);
}
