/**
 * One switch per direction from a command to its payload codec (vfio-user.rst, a section per
 * command). Encoders return gather parts so large data is sent without a copy; decoders are
 * pure, return views into the payload (data fields alias it) and throw VfioError with the
 * errno a reply should carry: EINVAL for a malformed payload or an unknown command.
 */
import { VfioError } from '../../vfio/index.ts';
import {
  decodeFourU32,
  decodeIrqSet,
  decodeRegionInfo,
  decodeRegionIoFdsReply,
  encodeFourU32,
  encodeIrqSet,
  encodeRegionInfo,
} from './codec-device.ts';
import {
  decodeDmaAccess,
  decodeDmaData,
  decodeDmaMap,
  decodeDmaUnmap,
  encodeDmaAccess,
  encodeDmaData,
  encodeDmaMap,
  encodeDmaUnmap,
} from './codec-dma.ts';
import {
  decodeArgszSize,
  decodeArgszWordData,
  decodeSizedData,
  encodeArgszSize,
  encodeArgszWordData,
  encodeSizedData,
} from './codec-feature.ts';
import {
  decodeRegionAccessHead,
  decodeRegionData,
  decodeRegionDataPlaced,
  decodeWriteMulti,
  decodeWriteMultiReply,
  encodeRegionAccessHead,
  encodeRegionData,
  encodeWriteMulti,
  encodeWriteMultiReply,
} from './codec-region.ts';
import { decodeVersion, encodeVersion } from './codec-version.ts';
import { Command, commandName } from './constants.ts';
import type { Reply, Request } from './messages.ts';

const EMPTY = new Uint8Array(0);

/**
 * "VFIO_USER_X request" and "... reply" for every known command, built once: the label names
 * the payload in error messages, and one built per message is a string allocated per message.
 */
const LABELS: ReadonlyMap<number, readonly [string, string]> = new Map(
  Object.values(Command)
    .filter((c): c is Command => typeof c === 'number')
    .map((c) => [c, [`${commandName(c)} request`, `${commandName(c)} reply`]] as const),
);

function label(command: number, kind: 'request' | 'reply'): string {
  const l = LABELS.get(command);
  if (l === undefined) return `${commandName(command)} ${kind}`;
  return kind === 'request' ? l[0] : l[1];
}

function noPayload(payload: Uint8Array, what: string): void {
  if (payload.length !== 0)
    throw new VfioError('EINVAL', `${what}: expected no payload, got ${payload.length} bytes`);
}

/** The request payload as gather parts. */
export function encodeRequestParts(r: Request): Uint8Array[] {
  switch (r.command) {
    case Command.VERSION:
      return [encodeVersion(r)];
    case Command.DMA_MAP:
      return [encodeDmaMap(r)];
    case Command.DMA_UNMAP:
      return [encodeDmaUnmap(r)];
    case Command.DEVICE_GET_INFO:
      return [encodeFourU32(r.argsz, r.flags, r.numRegions, r.numIrqs)];
    case Command.DEVICE_GET_REGION_INFO:
      return [encodeRegionInfo(r)];
    case Command.DEVICE_GET_REGION_IO_FDS:
    case Command.DEVICE_GET_IRQ_INFO:
      return [encodeFourU32(r.argsz, r.flags, r.index, r.count)];
    case Command.DEVICE_SET_IRQS:
      return [encodeIrqSet(r)];
    case Command.REGION_READ:
      return [encodeRegionAccessHead(r.offset, r.region, r.count)];
    case Command.REGION_WRITE:
      return encodeRegionData(r.offset, r.region, r.data);
    case Command.DMA_READ:
      return [encodeDmaAccess(r.address, r.count)];
    case Command.DMA_WRITE:
      return encodeDmaData(r.address, r.data);
    case Command.DEVICE_RESET:
      return [];
    case Command.REGION_WRITE_MULTI:
      return [encodeWriteMulti(r.writes)];
    case Command.DEVICE_FEATURE:
      return [encodeArgszWordData(r.argsz, r.flags, r.data)];
    case Command.MIG_DATA_READ:
      return [encodeArgszSize(r.argsz, r.size)];
    case Command.MIG_DATA_WRITE:
      return [encodeArgszSize(r.argsz, r.data.length), r.data]; // the data is sent, not copied
  }
}

/**
 * Decodes the payload of a command message.
 * @throws VfioError EINVAL for an unknown command or a payload that does not fit its layout.
 */
export function decodeRequest(command: number, payload: Uint8Array): Request {
  const what = label(command, 'request');
  switch (command) {
    case Command.VERSION:
      return { command, ...decodeVersion(payload, what) };
    case Command.DMA_MAP:
      return { command, ...decodeDmaMap(payload, what) };
    case Command.DMA_UNMAP:
      return { command, ...decodeDmaUnmap(payload, what) };
    case Command.DEVICE_GET_INFO: {
      const v = decodeFourU32(payload, what, 'num_regions', 'num_irqs');
      return { command, argsz: v.argsz, flags: v.flags, numRegions: v.a, numIrqs: v.b };
    }
    case Command.DEVICE_GET_REGION_INFO: {
      const { info, capabilities } = decodeRegionInfo(payload, what);
      noPayload(capabilities, `${what} after 32 bytes`);
      return { command, ...info };
    }
    case Command.DEVICE_GET_REGION_IO_FDS:
    case Command.DEVICE_GET_IRQ_INFO: {
      const v = decodeFourU32(payload, what, 'index', 'count');
      return { command, argsz: v.argsz, flags: v.flags, index: v.a, count: v.b };
    }
    case Command.DEVICE_SET_IRQS:
      return { command, ...decodeIrqSet(payload, what) };
    case Command.REGION_READ: {
      // Fields spelled out (here and for the other region commands): no object spread on the
      // path every trapped MMIO access takes.
      const h = decodeRegionAccessHead(payload, what);
      return { command, offset: h.offset, region: h.region, count: h.count };
    }
    case Command.REGION_WRITE: {
      const r = decodeRegionData(payload, what);
      return { command, offset: r.offset, region: r.region, data: r.data };
    }
    case Command.DMA_READ:
      return { command, ...decodeDmaAccess(payload, what) };
    case Command.DMA_WRITE:
      return { command, ...decodeDmaData(payload, what) };
    case Command.DEVICE_RESET:
      noPayload(payload, what);
      return { command };
    case Command.REGION_WRITE_MULTI:
      return { command, writes: decodeWriteMulti(payload, what) };
    case Command.DEVICE_FEATURE: {
      const v = decodeArgszWordData(payload, what, 'flags');
      return { command, argsz: v.argsz, flags: v.word, data: v.data };
    }
    case Command.MIG_DATA_READ:
      return { command, ...decodeArgszSize(payload, what) };
    case Command.MIG_DATA_WRITE:
      return { command, ...decodeSizedData(payload, what) };
    default:
      throw new VfioError('EINVAL', `unknown command ${command}`);
  }
}

/**
 * Decodes a command whose body was received in two parts, `head` and the `placed` rest (see
 * BodyPlacer): only REGION_WRITE is placed.
 * @throws VfioError EINVAL for any other command or a head and data that do not agree.
 */
export function decodePlacedRequest(
  command: number,
  head: Uint8Array,
  placed: Uint8Array,
): Request {
  const what = `${commandName(command)} request`;
  if (command === Command.MIG_DATA_WRITE) {
    const { argsz, size } = decodeArgszSize(head, what);
    if (size !== placed.length)
      throw new VfioError('EINVAL', `${what}: size ${size} but ${placed.length} data bytes follow`);
    return { command, argsz, data: placed };
  }
  if (command !== Command.REGION_WRITE) throw new VfioError('EINVAL', `${what} cannot be placed`);
  const r = decodeRegionDataPlaced(head, placed, what);
  return { command, offset: r.offset, region: r.region, data: r.data };
}

/** The reply payload as gather parts. */
export function encodeReplyParts(r: Reply): Uint8Array[] {
  switch (r.command) {
    case Command.VERSION:
      return [encodeVersion(r)];
    case Command.DMA_MAP:
    case Command.DEVICE_SET_IRQS:
    case Command.DEVICE_RESET:
      return [];
    case Command.DMA_UNMAP:
      return [encodeDmaUnmap(r)];
    case Command.DEVICE_GET_INFO:
      return [encodeFourU32(r.argsz, r.flags, r.numRegions, r.numIrqs)];
    case Command.DEVICE_GET_REGION_INFO:
      return [encodeRegionInfo(r.info, r.capabilities)];
    case Command.DEVICE_GET_REGION_IO_FDS:
      return [encodeFourU32(r.argsz, r.flags, r.index, r.count), r.subRegions];
    case Command.DEVICE_GET_IRQ_INFO:
      return [encodeFourU32(r.argsz, r.flags, r.index, r.count)];
    case Command.REGION_READ:
      return encodeRegionData(r.offset, r.region, r.data);
    case Command.REGION_WRITE:
      return [encodeRegionAccessHead(r.offset, r.region, r.count)];
    case Command.DMA_READ:
      return encodeDmaData(r.address, r.data);
    case Command.DMA_WRITE:
      return [encodeDmaAccess(r.address, r.count)];
    case Command.REGION_WRITE_MULTI:
      return [encodeWriteMultiReply(r.count)];
    case Command.DEVICE_FEATURE:
      return [encodeArgszWordData(r.argsz, r.flags, r.data)];
    case Command.MIG_DATA_READ:
      return [encodeSizedData(r.argsz, r.data)];
    case Command.MIG_DATA_WRITE:
      return []; // vfio-user.rst "VFIO_USER_MIG_DATA_WRITE": no reply payload
  }
}

/**
 * Decodes the payload of a successful reply to `command`.
 * @throws VfioError EINVAL for an unknown command or a payload that does not fit its layout.
 */
export function decodeReply(command: number, payload: Uint8Array): Reply {
  const what = label(command, 'reply');
  switch (command) {
    case Command.VERSION:
      return { command, ...decodeVersion(payload, what) };
    case Command.DMA_MAP:
    case Command.DEVICE_SET_IRQS:
    case Command.DEVICE_RESET:
      noPayload(payload, what);
      return { command };
    case Command.DMA_UNMAP:
      return { command, ...decodeDmaUnmap(payload, what) };
    case Command.DEVICE_GET_INFO: {
      const v = decodeFourU32(payload, what, 'num_regions', 'num_irqs');
      return { command, argsz: v.argsz, flags: v.flags, numRegions: v.a, numIrqs: v.b };
    }
    case Command.DEVICE_GET_REGION_INFO:
      return { command, ...decodeRegionInfo(payload, what) };
    case Command.DEVICE_GET_REGION_IO_FDS:
      return { command, ...decodeRegionIoFdsReply(payload, what) };
    case Command.DEVICE_GET_IRQ_INFO: {
      const v = decodeFourU32(payload, what, 'index', 'count');
      return { command, argsz: v.argsz, flags: v.flags, index: v.a, count: v.b };
    }
    case Command.REGION_READ: {
      const r = decodeRegionData(payload, what);
      return { command, offset: r.offset, region: r.region, data: r.data };
    }
    case Command.REGION_WRITE: {
      const h = decodeRegionAccessHead(payload, what);
      return { command, offset: h.offset, region: h.region, count: h.count };
    }
    case Command.DMA_READ:
      return { command, ...decodeDmaData(payload, what) };
    case Command.DMA_WRITE:
      return { command, ...decodeDmaAccess(payload, what) };
    case Command.REGION_WRITE_MULTI:
      return { command, count: decodeWriteMultiReply(payload, what) };
    case Command.DEVICE_FEATURE: {
      const v = decodeArgszWordData(payload, what, 'flags');
      return { command, argsz: v.argsz, flags: v.word, data: v.data };
    }
    case Command.MIG_DATA_READ:
      return { command, ...decodeSizedData(payload, what) };
    case Command.MIG_DATA_WRITE:
      noPayload(payload, what);
      return { command };
    default:
      throw new VfioError('EINVAL', `unknown command ${command}`);
  }
}

/** Concatenates gather parts. */
export function joinParts(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A request's payload bytes (one buffer; `encodeRequestParts` avoids the copy). */
export function encodeRequest(r: Request): Uint8Array {
  return parts0(encodeRequestParts(r));
}

/** A reply's payload bytes (one buffer; `encodeReplyParts` avoids the copy). */
export function encodeReply(r: Reply): Uint8Array {
  return parts0(encodeReplyParts(r));
}

function parts0(parts: Uint8Array[]): Uint8Array {
  return parts.length === 0 ? EMPTY : joinParts(parts);
}
