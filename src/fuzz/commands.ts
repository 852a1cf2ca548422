/**
 * Payloads of every vfio-user command as a fuzzer builds them (vfio-user.rst, one section per
 * command; layouts packed by hand in wire.ts): mostly what a VMM would send, with fields drawn
 * from the device's real regions and IRQs, so that messages reach deep into the handlers
 * before the mutator (mutate.ts) bends them.
 */

import { hex } from '../text/index.ts';
import { Command } from '../vfio-user/index.ts';
import type { FdKind, FuzzDevice } from './plan.ts';
import type { Random } from './random.ts';
import { accessCount, edgeU32, edgeU64, regionOffset } from './values.ts';
import { type Field, pack, u16, u32, u64 } from './wire.ts';

/** A command before framing: its number, payload, fds, and a label for reports. */
export interface Draft {
  command: number;
  payload: Uint8Array;
  fds: FdKind[];
  label: string;
  /** Offsets of the payload's fields (for field-level mutation): [offset, width in bytes]. */
  fields: [number, 1 | 2 | 4 | 8][];
}

/** What a connection remembers while it is planned: DMA ranges it mapped (for unmaps). */
export interface DraftContext {
  readonly device: FuzzDevice;
  readonly maxDataXferSize: number;
  readonly dmaMapped: { address: bigint; size: bigint }[];
}

const SET_IRQS = { NONE: 0x1, BOOL: 0x2, EVENTFD: 0x4, MASK: 0x8, UNMASK: 0x10, TRIGGER: 0x20 };
const DMA_PAGE = 0x1000n;

/** Packs `fields`, recording where each number sits for the mutator. */
function draft(command: number, label: string, fields: Field[], fds: FdKind[] = []): Draft {
  const offsets: [number, 1 | 2 | 4 | 8][] = [];
  let at = 0;
  for (const f of fields) {
    if (f instanceof Uint8Array) {
      at += f.length;
      continue;
    }
    const width = 'u8' in f ? 1 : 'u16' in f ? 2 : 'u32' in f ? 4 : 8;
    offsets.push([at, width]);
    at += width;
  }
  return { command, payload: pack(fields), fds, label, fields: offsets };
}

const CAPABILITY_JSON: readonly string[] = [
  '{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576,"pgsizes":4096,"max_dma_maps":65535,"write_multiple":true}}',
  '{"capabilities":{}}',
  '{}',
  '{"capabilities":{"max_msg_fds":1}}',
  '{"capabilities":{"max_data_xfer_size":0}}',
  '{"capabilities":{"max_data_xfer_size":18446744073709551615}}',
  '{"capabilities":{"max_msg_fds":-1,"pgsizes":3}}',
  '{"capabilities":{"migration":{"pgsize":4096,"max_bitmap_size":1e300}}}',
  '{"capabilities":{"twin_socket":{"supported":true,"fd_index":9}}}',
  '{"capabilities":{"write_multiple":"yes","unknown":[1,2,3]}}',
  '{"capabilities":null}',
  '[]',
  '"capabilities"',
  '{"capabilities":{"max_msg_fds":16',
  '\u0000{}',
  '{"capabilities":{"\u00e9\ud83d\ude00":1}}',
];

function versionJson(rng: Random, maxBytes: number): Uint8Array {
  const enc = new TextEncoder();
  const kind = rng.u32() % 10;
  if (kind < 7) return enc.encode(`${rng.pick(CAPABILITY_JSON)}\0`);
  if (kind === 7) return new Uint8Array(0); // no JSON at all
  if (kind === 8) {
    // Deep nesting, as deep as the message allows.
    const depth = rng.pick([64, 1000, 100_000, Math.floor((maxBytes - 64) / 2)]);
    return enc.encode(`{"capabilities":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}\0`);
  }
  return rng.bytes(rng.int(1, 512)); // not JSON, maybe no NUL
}

/**
 * A VERSION payload: major 0, a minor (usually 0), and capabilities JSON from well-formed to
 * broken.
 */
export function draftVersion(rng: Random, ctx: DraftContext): Draft {
  const json = versionJson(rng, ctx.maxDataXferSize);
  return draft(Command.VERSION, 'VERSION', [u16(0), u16(rng.pick([0, 0, 1, 2, 0xffff])), json]);
}

/** The VERSION a well-behaved client sends (QEMU's capabilities). */
export function draftGoodVersion(): Draft {
  const json = new TextEncoder().encode(`${CAPABILITY_JSON[0]}\0`);
  return draft(Command.VERSION, 'VERSION good', [u16(0), u16(0), json]);
}

function regionIndex(rng: Random, device: FuzzDevice): number {
  if (rng.chance(0.88)) return rng.below(device.regionSizes.length);
  return rng.pick([device.regionSizes.length, 8, 10, 31, 0xffff, 0x80000000, 0xffffffff]);
}

function irqIndex(rng: Random, device: FuzzDevice): number {
  return rng.chance(0.9) ? rng.below(device.irqCounts.length) : edgeU32(rng);
}

function sizeOf(device: FuzzDevice, region: number): bigint {
  return device.regionSizes[region] ?? 0n;
}

/** A REGION_READ of one of the device's regions, mostly within it. */
export function draftRegionRead(rng: Random, ctx: DraftContext): Draft {
  const region = regionIndex(rng, ctx.device);
  const count = accessCount(rng, ctx.maxDataXferSize);
  const offset = regionOffset(rng, sizeOf(ctx.device, region), count);
  return draft(Command.REGION_READ, `REGION_READ r${region} n${count}`, [
    u64(offset),
    u32(region),
    u32(count),
  ]);
}

/**
 * A REGION_WRITE of one of the device's regions, mostly within it; its count is sometimes a lie the
 * server must catch.
 */
export function draftRegionWrite(rng: Random, ctx: DraftContext): Draft {
  const region = regionIndex(rng, ctx.device);
  const length = accessCount(rng, ctx.maxDataXferSize);
  const offset = regionOffset(rng, sizeOf(ctx.device, region), length);
  // count is the data length, except sometimes (a lie the server must catch).
  const count = rng.chance(0.95) ? length : edgeU32(rng);
  return draft(Command.REGION_WRITE, `REGION_WRITE r${region} n${length}`, [
    u64(offset),
    u32(region),
    u32(count),
    rng.bytes(length),
  ]);
}

/**
 * A REGION_WRITE_MULTI of 0 to 400 entries (QEMU sends at most 200), its entry count sometimes a
 * lie.
 */
export function draftWriteMulti(rng: Random, ctx: DraftContext): Draft {
  const entries = rng.weighted<number>([
    [50, rng.int(1, 8)],
    [40, rng.int(9, 200)],
    [5, 0],
    [5, rng.int(201, 400)],
  ]);
  const fields: Field[] = [u64(rng.chance(0.95) ? BigInt(entries) : edgeU64(rng))];
  for (let i = 0; i < entries; i++) {
    const region = regionIndex(rng, ctx.device);
    const count = rng.chance(0.9) ? rng.pick([1, 2, 4, 8]) : edgeU32(rng);
    fields.push(
      u64(regionOffset(rng, sizeOf(ctx.device, region), Math.min(count, 8))),
      u32(region),
      u32(count),
      rng.bytes(8),
    );
  }
  return draft(Command.REGION_WRITE_MULTI, `REGION_WRITE_MULTI x${entries}`, fields);
}

/**
 * A DMA_MAP, with a memfd 40% of the time, mostly page-sized, sometimes with edge sizes, offsets or
 * flags.
 */
export function draftDmaMap(rng: Random, ctx: DraftContext): Draft {
  const withFd = rng.chance(0.4);
  const address = BigInt(rng.below(64)) * 0x10000n;
  const size = rng.chance(0.9) ? BigInt(rng.int(1, 64)) * DMA_PAGE : edgeU64(rng);
  const offset = withFd && rng.chance(0.8) ? BigInt(rng.below(32)) * DMA_PAGE : edgeU64(rng);
  const flags = rng.chance(0.9) ? rng.pick([1, 2, 3]) : edgeU32(rng);
  ctx.dmaMapped.push({ address, size });
  const fds: FdKind[] = withFd ? ['memfd'] : [];
  return draft(
    Command.DMA_MAP,
    `DMA_MAP${withFd ? ' fd' : ''}`,
    [u32(32), u32(flags), u64(offset), u64(address), u64(size)],
    fds,
  );
}

/** A DMA_UNMAP of a range, or (10%) of everything. */
export function draftDmaUnmap(rng: Random, ctx: DraftContext): Draft {
  if (rng.chance(0.1)) {
    return draft(Command.DMA_UNMAP, 'DMA_UNMAP all', [u32(24), u32(2), u64(0n), u64(0n)]);
  }
  const known = ctx.dmaMapped.length > 0 && rng.chance(0.7) ? rng.pick(ctx.dmaMapped) : null;
  const address = known?.address ?? BigInt(rng.below(64)) * 0x10000n;
  const size = known?.size ?? BigInt(rng.int(1, 64)) * DMA_PAGE;
  return draft(Command.DMA_UNMAP, 'DMA_UNMAP', [u32(24), u32(0), u64(address), u64(size)]);
}

/** A DEVICE_GET_INFO, its argsz 16 or an edge value. */
export function draftDeviceGetInfo(rng: Random): Draft {
  const argsz = rng.chance(0.9) ? 16 : edgeU32(rng);
  return draft(Command.DEVICE_GET_INFO, 'DEVICE_GET_INFO', [u32(argsz), u32(0), u32(0), u32(0)]);
}

/** A DEVICE_GET_REGION_INFO of one of the device's regions, argsz a real size or an edge value. */
export function draftRegionInfo(rng: Random, ctx: DraftContext): Draft {
  const argsz = rng.chance(0.8) ? rng.pick([32, 40, 64, 80, 256]) : edgeU32(rng);
  const index = regionIndex(rng, ctx.device);
  return draft(Command.DEVICE_GET_REGION_INFO, `GET_REGION_INFO r${index}`, [
    u32(argsz),
    u32(0),
    u32(index),
    u32(0),
    u64(0n),
    u64(0n),
  ]);
}

/** A DEVICE_GET_REGION_IO_FDS, argsz 16 or an edge value. */
export function draftRegionIoFds(rng: Random, ctx: DraftContext): Draft {
  const argsz = rng.chance(0.8) ? 16 : edgeU32(rng);
  return draft(Command.DEVICE_GET_REGION_IO_FDS, 'GET_REGION_IO_FDS', [
    u32(argsz),
    u32(rng.chance(0.9) ? 0 : edgeU32(rng)),
    u32(regionIndex(rng, ctx.device)),
    u32(0),
  ]);
}

/** A DEVICE_GET_IRQ_INFO of one of the device's IRQ indexes, argsz 16 or an edge value. */
export function draftIrqInfo(rng: Random, ctx: DraftContext): Draft {
  const argsz = rng.chance(0.9) ? 16 : edgeU32(rng);
  return draft(Command.DEVICE_GET_IRQ_INFO, 'GET_IRQ_INFO', [
    u32(argsz),
    u32(0),
    u32(irqIndex(rng, ctx.device)),
    u32(0),
  ]);
}

/** Kinds of fd a SET_IRQS with eventfds gets: mostly eventfds, sometimes something else. */
function eventfdKind(rng: Random): FdKind {
  return rng.weighted<FdKind>([
    [85, 'eventfd'],
    [3, 'eventfd-full'],
    [2, 'memfd'],
    [2, 'memfd-empty'],
    [2, 'socket'],
    [2, 'socket-held'],
    [2, 'devnull'],
    [2, 'directory'],
  ]);
}

/**
 * A DEVICE_SET_IRQS of one IRQ index: trigger, mask or unmask, with no data, bools or eventfds (as
 * fds, as -1, or as fd numbers in data the server must refuse).
 */
export function draftSetIrqs(rng: Random, ctx: DraftContext): Draft {
  const index = irqIndex(rng, ctx.device);
  const vectors = ctx.device.irqCounts[index] ?? 1;
  const start = rng.chance(0.85) ? 0 : rng.chance(0.5) ? rng.int(0, vectors + 1) : edgeU32(rng);
  const count = rng.chance(0.85) ? rng.int(0, Math.max(vectors - start, 0)) : edgeU32(rng) & 0x1ff;
  const action = rng.pick([SET_IRQS.TRIGGER, SET_IRQS.TRIGGER, SET_IRQS.MASK, SET_IRQS.UNMASK]);
  const data = rng.pick([SET_IRQS.NONE, SET_IRQS.BOOL, SET_IRQS.EVENTFD, SET_IRQS.EVENTFD]);
  const flags = rng.chance(0.95) ? data | action : edgeU32(rng);
  let payloadData: Uint8Array = new Uint8Array(0);
  const fds: FdKind[] = [];
  let label = 'SET_IRQS';
  if (data === SET_IRQS.BOOL) payloadData = Uint8Array.from({ length: count }, () => rng.below(2));
  if (data === SET_IRQS.EVENTFD) {
    const how = rng.u32() % 10;
    if (how < 7) {
      for (let i = 0; i < Math.min(count, 16); i++) fds.push(eventfdKind(rng));
      label = `SET_IRQS eventfds ${fds.join(',')}`;
    } else if (how < 9) {
      // No fds: the kernel's ioctl would read fd numbers from data; -1 de-assigns.
      label = 'SET_IRQS eventfd -1';
      payloadData = pack(Array.from({ length: count }, () => u32(0xffffffff)));
    } else {
      // Fd numbers in data, as a kernel ioctl caller passes them: over the wire the server must
      // refuse them (the numbers would name its own descriptors).
      label = 'SET_IRQS eventfd numbers in data';
      payloadData = pack(Array.from({ length: count }, () => u32(rng.int(0, 40))));
    }
  }
  const argsz = rng.chance(0.9) ? 20 + payloadData.length : edgeU32(rng);
  return draft(
    Command.DEVICE_SET_IRQS,
    `${label} i${index} ${start}+${count} f${hex(flags)}`,
    [u32(argsz), u32(flags), u32(index), u32(start), u32(count), payloadData],
    fds,
  );
}

/** A DEVICE_RESET, rarely with a payload it should not have. */
export function draftReset(rng: Random): Draft {
  return rng.chance(0.9)
    ? draft(Command.DEVICE_RESET, 'DEVICE_RESET', [])
    : draft(Command.DEVICE_RESET, 'DEVICE_RESET with payload', [rng.bytes(rng.int(1, 32))]);
}

/**
 * A DEVICE_FEATURE (GET, SET or PROBE of a small feature number), sometimes with edge argsz or
 * flags.
 */
export function draftFeature(rng: Random): Draft {
  const flags = (rng.pick([1, 2, 4]) << 16) | rng.below(8);
  return draft(Command.DEVICE_FEATURE, 'DEVICE_FEATURE', [
    u32(rng.chance(0.8) ? 16 : edgeU32(rng)),
    u32(rng.chance(0.8) ? flags : edgeU32(rng)),
    rng.bytes(rng.pick([0, 8, 64])),
  ]);
}

/** Commands a client may not send, numbers nobody defined, and random payloads. */
export function draftStray(rng: Random): Draft {
  const command = rng.pick([
    Command.DMA_READ,
    Command.DMA_WRITE,
    Command.MIG_DATA_READ,
    Command.MIG_DATA_WRITE,
    0,
    14,
    19,
    0x100,
    0xffff,
    rng.below(0x10000),
  ]);
  return draft(command, `command ${command}`, [rng.bytes(rng.pick([0, 4, 8, 16, 24, 100]))]);
}

/** One command, chosen with weights that keep region access the common case. */
export function draftCommand(rng: Random, ctx: DraftContext): Draft {
  return rng.weighted<() => Draft>([
    [22, () => draftRegionRead(rng, ctx)],
    [24, () => draftRegionWrite(rng, ctx)],
    [6, () => draftWriteMulti(rng, ctx)],
    [6, () => draftDmaMap(rng, ctx)],
    [5, () => draftDmaUnmap(rng, ctx)],
    [4, () => draftDeviceGetInfo(rng)],
    [6, () => draftRegionInfo(rng, ctx)],
    [2, () => draftRegionIoFds(rng, ctx)],
    [3, () => draftIrqInfo(rng, ctx)],
    [9, () => draftSetIrqs(rng, ctx)],
    [2, () => draftReset(rng)],
    [2, () => draftFeature(rng)],
    [2, () => draftVersion(rng, ctx)],
    [3, () => draftStray(rng)],
  ])();
}
