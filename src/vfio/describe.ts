/**
 * A device as a VMM sees it through VFIO, as plain data: device info, every region's info
 * (asked the way QEMU asks — argsz 32 first, then again with the argsz the reply wants), IRQ
 * info, and a config-space summary read from region 7 (BAR types from the BAR registers,
 * sizes from region info, the capability list walked from 0x34). Built from a snapshot of
 * replies so that the in-process device and a vfio-user client produce the same description.
 * JSON-safe: 64-bit values are hex strings.
 */
import { hex, hexDigits } from '../text/index.ts';
import type { DeviceInfo, VfioPciDevice } from './device.ts';
import { errnoName, VfioError } from './errors.ts';
import { type CapabilityValue, decodeCapabilityValue } from './info-caps.ts';
import { IRQ_INDEX_NAMES, type IrqInfo, IrqInfoFlag, VFIO_PCI_NUM_IRQS } from './irqs.ts';
import { PCI_VENDOR_TYPE, RegionCapId } from './region.ts';
import { decodeRegionInfo, regionFlagNames, VFIO_REGION_INFO_SIZE } from './region-info.ts';
import { STANDARD_REGION_NAMES } from './standard-regions.ts';

/** A failed query as a VMM sees it: only an errno comes back (an ioctl's -1, or an error reply). */
export interface QueryError {
  readonly errno: number;
  /** `EINVAL (errno 22)`: the same text in process and over the wire. */
  readonly message: string;
}

/** The QueryError of `errno`: one format, so `inspect --dt` and `inspect SOCKET` agree. */
export function queryErrorOf(errno: number): QueryError {
  return { errno, message: `${errnoName(errno)} (errno ${errno})` };
}

/** The raw replies a description is built from. */
export interface DeviceSnapshot {
  readonly name: string;
  readonly info: DeviceInfo;
  /** Per region index 0 … num_regions-1: the final GET_REGION_INFO reply bytes, or the error. */
  readonly regions: readonly ({ readonly reply: Uint8Array } | { readonly error: QueryError })[];
  readonly irqs: readonly ({ readonly info: IrqInfo } | { readonly error: QueryError })[];
  /** The whole config space (region 7). */
  readonly config: Uint8Array;
}

export interface CapabilityDescription {
  readonly id: number;
  readonly name: string;
  readonly version: number;
  readonly offset: number;
  readonly next: number;
  readonly value: Record<string, string | number | { offset: string; size: string }[]>;
}

export interface RegionDescriptionOut {
  readonly index: number;
  readonly name: string;
  readonly error?: QueryError;
  readonly argsz?: number;
  readonly flags?: number;
  readonly flagNames?: string;
  readonly size?: string;
  readonly offset?: string;
  readonly capOffset?: number;
  readonly caps?: CapabilityDescription[];
  /** The reply bytes as hex. */
  readonly hex?: string;
}

export interface IrqDescription {
  readonly index: number;
  readonly name: string;
  readonly error?: QueryError;
  readonly flags?: number;
  readonly flagNames?: string;
  readonly count?: number;
}

export interface BarSummary {
  readonly index: number;
  readonly type: 'mem32' | 'mem64' | 'io';
  readonly prefetchable: boolean;
  readonly size: string;
  readonly register: string;
}

export interface ConfigSummary {
  readonly size: number;
  readonly vendor: number;
  readonly device: number;
  readonly command: number;
  readonly status: number;
  readonly revision: number;
  readonly classCode: number;
  readonly headerType: number;
  readonly subsystemVendor: number;
  readonly subsystemDevice: number;
  readonly interruptPin: number;
  readonly bars: BarSummary[];
  readonly capabilities: { readonly id: number; readonly name: string; readonly offset: number }[];
}

export interface DeviceDescription {
  readonly name: string;
  readonly model: string;
  readonly info: DeviceInfo & { readonly flagNames: string };
  readonly regions: RegionDescriptionOut[];
  readonly irqs: IrqDescription[];
  readonly config: ConfigSummary;
}

const CAP_NAMES: Record<number, string> = {
  [RegionCapId.SPARSE_MMAP]: 'SPARSE_MMAP',
  [RegionCapId.TYPE]: 'TYPE',
  [RegionCapId.MSIX_MAPPABLE]: 'MSIX_MAPPABLE',
  [RegionCapId.NVLINK2_SSATGT]: 'NVLINK2_SSATGT',
  [RegionCapId.NVLINK2_LNKSPD]: 'NVLINK2_LNKSPD',
};

/** include/uapi/linux/vfio.h region types and subtypes with names. */
const REGION_TYPE_NAMES: Record<string, string> = {
  [`${(PCI_VENDOR_TYPE | 0x10de) >>> 0}:1`]: 'NVLINK2 RAM',
  [`${(PCI_VENDOR_TYPE | 0x1014) >>> 0}:1`]: 'NVLINK2 ATSD',
  [`${(PCI_VENDOR_TYPE | 0x8086) >>> 0}:1`]: 'IGD OPREGION',
};

const PCI_CAP_NAMES: Record<number, string> = {
  1: 'Power Management',
  5: 'MSI',
  9: 'Vendor Specific',
  16: 'PCI Express',
  17: 'MSI-X',
};

/** pci.ids names of the devices this project emulates. */
const MODEL_NAMES: Record<string, string> = {
  '10de:1db1': 'Tesla V100 SXM2 16GB',
  '10de:1db5': 'Tesla V100 SXM2 32GB',
  '10de:15f9': 'Tesla P100 SXM2 16GB',
  '1014:04ea': 'NPU2 NVLink bridge',
};

function capValue(value: CapabilityValue): CapabilityDescription['value'] {
  switch (value.kind) {
    case 'type':
      return { type: hex(value.type, 8), subtype: value.subtype };
    case 'sparse-mmap':
      return { areas: value.areas.map((a) => ({ offset: hex(a.offset), size: hex(a.size) })) };
    case 'nvlink2-ssatgt':
      return { tgt: hex(value.tgt, 16) };
    case 'nvlink2-lnkspd':
      return { linkSpeed: hex(value.linkSpeed) };
    default:
      return {};
  }
}

function regionName(index: number, caps: CapabilityDescription[]): string {
  const standard = STANDARD_REGION_NAMES[index];
  if (standard) return standard;
  const type = caps.find((c) => c.id === RegionCapId.TYPE)?.value;
  if (!type || typeof type.type !== 'string') return `region ${index}`;
  return (
    REGION_TYPE_NAMES[`${Number(type.type)}:${type.subtype}`] ?? `type ${type.type}/${type.subtype}`
  );
}

function describeRegion(
  index: number,
  entry: DeviceSnapshot['regions'][number],
): RegionDescriptionOut {
  if ('error' in entry)
    return { index, name: STANDARD_REGION_NAMES[index] ?? `region ${index}`, error: entry.error };
  const d = decodeRegionInfo(entry.reply);
  const caps = d.caps.map((c) => ({
    id: c.id,
    name: CAP_NAMES[c.id] ?? `cap ${c.id}`,
    version: c.version,
    offset: c.offset,
    next: c.next,
    value: capValue(decodeCapabilityValue(c.id, c.body)),
  }));
  return {
    index,
    name: regionName(index, caps),
    argsz: d.argsz,
    flags: d.flags,
    flagNames: regionFlagNames(d.flags),
    size: hex(d.size),
    offset: hex(d.offset),
    capOffset: d.capOffset,
    caps,
    hex: Buffer.from(entry.reply).toString('hex'),
  };
}

function irqFlagNames(flags: number): string {
  return Object.entries(IrqInfoFlag)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([n]) => n)
    .join('|');
}

function describeIrq(index: number, entry: DeviceSnapshot['irqs'][number]): IrqDescription {
  const name = IRQ_INDEX_NAMES[index] ?? `IRQ ${index}`;
  if ('error' in entry) return { index, name, error: entry.error };
  const { flags, count } = entry.info;
  return { index, name, flags, flagNames: irqFlagNames(flags), count };
}

function regionSize(regions: RegionDescriptionOut[], index: number): bigint {
  const size = regions[index]?.size;
  return size === undefined ? 0n : BigInt(size);
}

function summarizeBars(cfg: DataView, regions: RegionDescriptionOut[]): BarSummary[] {
  const bars: BarSummary[] = [];
  for (let i = 0; i < 6; i++) {
    const reg = cfg.getUint32(0x10 + 4 * i, true);
    const size = regionSize(regions, i);
    if (size === 0n) continue;
    const io = (reg & 1) === 1;
    const mem64 = !io && (reg & 0x6) === 0x4;
    const high = mem64 && i < 5 ? cfg.getUint32(0x14 + 4 * i, true) : 0;
    bars.push({
      index: i,
      type: io ? 'io' : mem64 ? 'mem64' : 'mem32',
      prefetchable: !io && (reg & 0x8) !== 0,
      size: hex(size),
      register: hex((BigInt(high) << 32n) | BigInt(reg), mem64 ? 16 : 8),
    });
    if (mem64) i++;
  }
  return bars;
}

function walkCapabilities(cfg: DataView): ConfigSummary['capabilities'] {
  const caps: ConfigSummary['capabilities'][number][] = [];
  if ((cfg.getUint16(0x06, true) & 0x10) === 0) return caps;
  const seen = new Set<number>();
  let at = cfg.getUint8(0x34) & 0xfc;
  while (at >= 0x40 && at + 2 <= Math.min(cfg.byteLength, 0x100) && !seen.has(at)) {
    seen.add(at);
    const id = cfg.getUint8(at);
    caps.push({ id, name: PCI_CAP_NAMES[id] ?? `cap ${hex(id)}`, offset: at });
    at = cfg.getUint8(at + 1) & 0xfc;
  }
  return caps;
}

function summarizeConfig(config: Uint8Array, regions: RegionDescriptionOut[]): ConfigSummary {
  const full = new Uint8Array(Math.max(config.length, 0x40));
  full.set(config);
  const cfg = new DataView(full.buffer);
  return {
    size: config.length,
    vendor: cfg.getUint16(0x00, true),
    device: cfg.getUint16(0x02, true),
    command: cfg.getUint16(0x04, true),
    status: cfg.getUint16(0x06, true),
    revision: cfg.getUint8(0x08),
    classCode: cfg.getUint32(0x08, true) >>> 8,
    headerType: cfg.getUint8(0x0e),
    subsystemVendor: cfg.getUint16(0x2c, true),
    subsystemDevice: cfg.getUint16(0x2e, true),
    interruptPin: cfg.getUint8(0x3d),
    bars: summarizeBars(cfg, regions),
    capabilities: walkCapabilities(cfg),
  };
}

function deviceFlagNames(flags: number): string {
  const names = [flags & 1 ? 'RESET' : '', flags & 2 ? 'PCI' : ''].filter((s) => s);
  return names.length > 0 ? names.join('|') : '0';
}

/** The description of a snapshot (pure). */
export function describeSnapshot(snapshot: DeviceSnapshot): DeviceDescription {
  const regions = snapshot.regions.map((entry, index) => describeRegion(index, entry));
  const config = summarizeConfig(snapshot.config, regions);
  const ids = `${hexDigits(config.vendor, 4)}:${hexDigits(config.device, 4)}`;
  return {
    name: snapshot.name,
    model: MODEL_NAMES[ids] ?? `PCI device ${ids}`,
    info: { ...snapshot.info, flagNames: deviceFlagNames(snapshot.info.flags) },
    regions,
    irqs: snapshot.irqs.map((entry, index) => describeIrq(index, entry)),
    config,
  };
}

function queryError(err: unknown): QueryError {
  if (err instanceof VfioError) return queryErrorOf(err.errno);
  throw err;
}

/** GET_REGION_INFO as QEMU asks it: argsz 32, then again with the argsz the reply names. */
function regionReply(device: VfioPciDevice, index: number): Uint8Array {
  const first = device.regionInfo(index, VFIO_REGION_INFO_SIZE);
  if (first.info.argsz <= VFIO_REGION_INFO_SIZE) return first.bytes;
  return device.regionInfo(index, first.info.argsz).bytes;
}

/** The replies of an open in-process device. */
export function snapshotDevice(device: VfioPciDevice): DeviceSnapshot {
  const info = device.info();
  const regions = Array.from({ length: info.numRegions }, (_, index) => {
    try {
      return { reply: regionReply(device, index) };
    } catch (err) {
      return { error: queryError(err) };
    }
  });
  const irqs = Array.from({ length: Math.min(info.numIrqs, VFIO_PCI_NUM_IRQS) }, (_, index) => {
    try {
      return { info: device.irqInfo(index) };
    } catch (err) {
      return { error: queryError(err) };
    }
  });
  const config = device.read(7, 0, device.config.size);
  return { name: device.name, info, regions, irqs, config };
}

/** describeSnapshot(snapshotDevice(device)). The device must be open. */
export function describeDevice(device: VfioPciDevice): DeviceDescription {
  return describeSnapshot(snapshotDevice(device));
}
