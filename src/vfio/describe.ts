/**
 * A device as a VMM sees it through VFIO, as plain data: device info, every region's info
 * (asked the way QEMU asks — argsz 32 first, then again with the argsz the reply wants), IRQ
 * info, and a config-space summary read from region 7 (BAR types from the BAR registers,
 * sizes from region info, the capability list walked from 0x34). Built from a snapshot of
 * replies so that the in-process device and a vfio-user client produce the same description.
 * JSON-safe: 64-bit values are hex strings.
 */
import { PCI_VENDOR_ID_INTEL } from '../platform/index.ts';
import { hex, hexDigits } from '../text/index.ts';
import type { DeviceInfo, VfioPciDevice } from './device.ts';
import { errnoName, VfioError } from './errors.ts';
import { type DecodedCapability, decodeCapabilityValue } from './info-caps.ts';
import { IRQ_INDEX_NAMES, type IrqInfo, IrqInfoFlag, VFIO_PCI_NUM_IRQS } from './irqs.ts';
import { decodePciCapabilities } from './pci-capabilities.ts';
import { PCI_BASE_ADDRESS_0 } from './pci-regs.ts';
import { PCI_VENDOR_TYPE, RegionCapId } from './region.ts';
import { decodeRegionInfo, regionFlagNames, VFIO_REGION_INFO_SIZE } from './region-info.ts';
import { STANDARD_REGION_NAMES } from './standard-regions.ts';
import { regionTypeName, type VariantVocabulary } from './variant.ts';

/** A failed query as a VMM sees it: only an errno comes back (an ioctl's -1, or an error reply). */
export interface QueryError {
  /** The errno's name ("EINVAL"), as devices.json and `dt doctor --json` name errnos. */
  readonly errno: string;
  /** `EINVAL (errno 22)`: the same text in process and over the wire. */
  readonly message: string;
}

/** The QueryError of `errno`: one format, so `inspect --dt` and `inspect SOCKET` agree. */
export function queryErrorOf(errno: number): QueryError {
  return { errno: errnoName(errno), message: `${errnoName(errno)} (errno ${errno})` };
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

/** One region-info capability: its id, name and version, and its decoded fields. */
export interface CapabilityDescription {
  readonly id: number;
  readonly name: string;
  readonly version: number;
  readonly offset: number;
  readonly next: number;
  readonly value: Record<string, string | number | { offset: string; size: string }[]>;
}

/**
 * One region as described: index, name, the region info or the errno of its query, and its
 * capabilities.
 */
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

/** One IRQ index as described: index, name, the IRQ info or the errno of its query. */
export interface IrqDescription {
  readonly index: number;
  readonly name: string;
  readonly error?: QueryError;
  readonly flags?: number;
  readonly flagNames?: string;
  readonly count?: number;
}

/** One implemented BAR from config space: index, type, prefetchable, size in bytes. */
export interface BarSummary {
  readonly index: number;
  readonly type: 'mem32' | 'mem64' | 'io';
  readonly prefetchable: boolean;
  readonly size: string;
  readonly register: string;
}

/**
 * The config-space header as read back, in the JSON vocabulary of every command: IDs and
 * registers as hex strings of their width ("0x10de", class "0x030200"), size in bytes, the
 * interrupt pin (1 = INTA), BARs and the capability list (offsets as hex strings).
 */
export interface ConfigSummary {
  readonly size: number;
  readonly vendor: string;
  readonly device: string;
  readonly command: string;
  readonly status: string;
  readonly revision: string;
  readonly classCode: string;
  readonly headerType: string;
  readonly subsystemVendor: string;
  readonly subsystemDevice: string;
  readonly interruptPin: number;
  readonly bars: BarSummary[];
  /** The capability list, each with its registers (pci-capabilities.ts: as lspci -vvv reads them). */
  readonly capabilities: {
    readonly id: number;
    readonly name: string;
    readonly offset: string;
    readonly registers: Readonly<Record<string, string>>;
  }[];
  /** The whole config space as read (region 7), as hex: what `inspect --hex` dumps as lspci -xxx. */
  readonly hex: string;
}

/**
 * A device as `inspect` shows it: device info, every region with its capabilities, every IRQ index,
 * and a config-space summary.
 */
export interface DeviceDescription {
  readonly name: string;
  readonly model: string;
  readonly info: DeviceInfo & { readonly flagNames: string };
  readonly regions: RegionDescriptionOut[];
  readonly irqs: IrqDescription[];
  readonly config: ConfigSummary;
}

/** The core's region capabilities (include/uapi/linux/vfio.h VFIO_REGION_INFO_CAP_*). */
const CAP_NAMES: Record<number, string> = {
  [RegionCapId.SPARSE_MMAP]: 'SPARSE_MMAP',
  [RegionCapId.TYPE]: 'TYPE',
  [RegionCapId.MSIX_MAPPABLE]: 'MSIX_MAPPABLE',
};

/** The core's own device-specific region (vfio_pci_igd.c), named as the variants name theirs. */
const CORE_VOCABULARY: VariantVocabulary = {
  name: 'vfio-pci',
  regions: [
    {
      type: (PCI_VENDOR_TYPE | PCI_VENDOR_ID_INTEL) >>> 0,
      subtype: 1, // VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION
      name: 'IGD OPREGION',
    },
  ],
  regionCapabilities: [],
  modelName: () => undefined,
};

/** A capability's name and value: the core's three, else the kind of a variant that has it. */
function describeCap(
  cap: DecodedCapability,
  vocabularies: readonly VariantVocabulary[],
): CapabilityDescription {
  const base = { id: cap.id, version: cap.version, offset: cap.offset, next: cap.next };
  const core = decodeCapabilityValue(cap.id, cap.body);
  if (core.kind === 'type') {
    return { ...base, name: 'TYPE', value: { type: hex(core.type, 8), subtype: core.subtype } };
  }
  if (core.kind === 'sparse-mmap') {
    const areas = core.areas.map((a) => ({ offset: hex(a.offset), size: hex(a.size) }));
    return { ...base, name: 'SPARSE_MMAP', value: { areas } };
  }
  const kind = vocabularies.flatMap((v) => v.regionCapabilities).find((k) => k.id === cap.id);
  const value = kind?.decode(cap.body);
  const name = CAP_NAMES[cap.id] ?? kind?.name ?? `cap ${cap.id}`;
  return { ...base, name, value: kind && value ? kind.describe(value) : {} };
}

function regionName(
  index: number,
  caps: CapabilityDescription[],
  vocabularies: readonly VariantVocabulary[],
): string {
  const standard = STANDARD_REGION_NAMES[index];
  if (standard) return standard;
  const type = caps.find((c) => c.id === RegionCapId.TYPE)?.value;
  if (!type || typeof type.type !== 'string' || typeof type.subtype !== 'number')
    return `region ${index}`;
  const named = regionTypeName([CORE_VOCABULARY, ...vocabularies], Number(type.type), type.subtype);
  return named ?? `type ${type.type}/${type.subtype}`;
}

function describeRegion(
  index: number,
  entry: DeviceSnapshot['regions'][number],
  vocabularies: readonly VariantVocabulary[],
): RegionDescriptionOut {
  if ('error' in entry)
    return { index, name: STANDARD_REGION_NAMES[index] ?? `region ${index}`, error: entry.error };
  const d = decodeRegionInfo(entry.reply);
  const caps = d.caps.map((c) => describeCap(c, vocabularies));
  return {
    index,
    name: regionName(index, caps, vocabularies),
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

function summarizeConfig(config: Uint8Array, regions: RegionDescriptionOut[]): ConfigSummary {
  const full = new Uint8Array(Math.max(config.length, 0x40));
  full.set(config);
  const cfg = new DataView(full.buffer);
  return {
    size: config.length,
    vendor: hex(cfg.getUint16(0x00, true), 4),
    device: hex(cfg.getUint16(0x02, true), 4),
    command: hex(cfg.getUint16(0x04, true), 4),
    status: hex(cfg.getUint16(0x06, true), 4),
    revision: hex(cfg.getUint8(0x08), 2),
    classCode: hex(cfg.getUint32(0x08, true) >>> 8, 6),
    headerType: hex(cfg.getUint8(0x0e), 2),
    subsystemVendor: hex(cfg.getUint16(0x2c, true), 4),
    subsystemDevice: hex(cfg.getUint16(0x2e, true), 4),
    interruptPin: cfg.getUint8(0x3d),
    bars: summarizeBars(cfg, regions),
    capabilities: decodePciCapabilities(config).map(({ id, name, offset, registers }) => ({
      id,
      name,
      offset: hex(offset, 2),
      registers,
    })),
    hex: Buffer.from(config).toString('hex'),
  };
}

function deviceFlagNames(flags: number): string {
  const names = [flags & 1 ? 'RESET' : '', flags & 2 ? 'PCI' : ''].filter((s) => s);
  return names.length > 0 ? names.join('|') : '0';
}

/**
 * The description of a snapshot (pure), naming what the core and `vocabularies` (the variants
 * the reader knows) name: device-specific regions, their capabilities, the model.
 */
export function describeSnapshot(
  snapshot: DeviceSnapshot,
  vocabularies: readonly VariantVocabulary[] = [],
): DeviceDescription {
  const regions = snapshot.regions.map((entry, index) =>
    describeRegion(index, entry, vocabularies),
  );
  const config = summarizeConfig(snapshot.config, regions);
  const vendor = Number(config.vendor);
  const device = Number(config.device);
  const ids = `${hexDigits(vendor, 4)}:${hexDigits(device, 4)}`;
  const model = vocabularies.map((v) => v.modelName(vendor, device)).find((m) => m !== undefined);
  return {
    name: snapshot.name,
    model: model ?? `PCI device ${ids}`,
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
  // Each BAR register on its own, as QEMU reads them (hw/vfio/pci.c vfio_bar_prepare): a
  // variant may emulate them only for accesses that touch no other register of its own.
  for (let at = PCI_BASE_ADDRESS_0; at < PCI_BASE_ADDRESS_0 + 24; at += 4)
    config.set(device.read(7, at, 4), at);
  return { name: device.name, info, regions, irqs, config };
}

/** describeSnapshot(snapshotDevice(device)) in the device's variant's words. Open it first. */
export function describeDevice(device: VfioPciDevice): DeviceDescription {
  return describeSnapshot(snapshotDevice(device), device.variant ? [device.variant] : []);
}
