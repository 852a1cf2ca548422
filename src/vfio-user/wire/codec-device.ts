/**
 * Device payloads (vfio-user.rst "VFIO_USER_DEVICE_GET_INFO", "_GET_REGION_INFO",
 * "_GET_REGION_IO_FDS", "_GET_IRQ_INFO", "_SET_IRQS"), the structs of include/uapi/linux/vfio.h
 * (vfio_device_info, vfio_region_info, vfio_irq_info, vfio_irq_set). struct vfio_region_info
 * is the kernel's and has its one codec in the device layer (src/vfio/region-info.ts), as do
 * the capability bodies (src/vfio/info-caps.ts): here they are the bytes after the fixed 32.
 */
import {
  decodeRegionInfoStruct,
  encodeRegionInfoStruct,
  type RegionInfoFields,
  VfioError,
} from '../../vfio/index.ts';
import { IrqSetFlag } from './constants.ts';
import type { RegionIoFdsHead } from './messages.ts';
import { ByteReader } from './reader.ts';
import { ByteWriter } from './writer.ts';

/** Bytes of the {argsz, flags, a, b} head: 16. */
export const FOUR_U32_SIZE = 16;
/** Bytes of struct vfio_irq_set before its data: 20. */
export const IRQ_SET_HEAD_SIZE = 20;

/** The 16-byte {argsz, flags, a, b} shape of vfio_device_info, vfio_irq_info, io_fds head. */
export interface FourU32 {
  argsz: number;
  flags: number;
  a: number;
  b: number;
}

/** The 16-byte {argsz, flags, a, b} payload, little-endian. */
export function encodeFourU32(argsz: number, flags: number, a: number, b: number): Uint8Array {
  return new ByteWriter(FOUR_U32_SIZE).u32(argsz).u32(flags).u32(a).u32(b).finish();
}

/** @throws VfioError EINVAL unless exactly 16 bytes. */
export function decodeFourU32(payload: Uint8Array, what: string, a: string, b: string): FourU32 {
  const r = new ByteReader(payload, what);
  const v = { argsz: r.u32('argsz'), flags: r.u32('flags'), a: r.u32(a), b: r.u32(b) };
  r.end();
  return v;
}

/** struct vfio_region_info and the capability chain after it (src/vfio/region-info.ts). */
export function encodeRegionInfo(info: RegionInfoFields, capabilities?: Uint8Array): Uint8Array {
  return encodeRegionInfoStruct(info, capabilities);
}

/** The fixed 32 bytes and what follows them (a view). @throws VfioError EINVAL under 32. */
export function decodeRegionInfo(
  payload: Uint8Array,
  what: string,
): { info: RegionInfoFields; capabilities: Uint8Array } {
  const { fields, chain } = decodeRegionInfoStruct(payload, what);
  return { info: fields, capabilities: chain };
}

/**
 * A DEVICE_GET_REGION_IO_FDS reply (vfio-user.rst): its head and the sub-region bytes.
 * @throws VfioError EINVAL when the payload is too short (ByteReader).
 */
export function decodeRegionIoFdsReply(
  payload: Uint8Array,
  what: string,
): RegionIoFdsHead & { subRegions: Uint8Array } {
  const r = new ByteReader(payload, what);
  const head = {
    argsz: r.u32('argsz'),
    flags: r.u32('flags'),
    index: r.u32('index'),
    count: r.u32('count'),
  };
  return { ...head, subRegions: r.rest() };
}

/** struct vfio_irq_set (include/uapi/linux/vfio.h): argsz, flags, index, start, count, data. */
export interface IrqSetPayload {
  argsz: number;
  flags: number;
  index: number;
  start: number;
  count: number;
  data: Uint8Array;
}

/** A DEVICE_SET_IRQS payload: the 20-byte head, then `data`. */
export function encodeIrqSet(s: IrqSetPayload): Uint8Array {
  return new ByteWriter(IRQ_SET_HEAD_SIZE + s.data.length)
    .u32(s.argsz)
    .u32(s.flags)
    .u32(s.index)
    .u32(s.start)
    .u32(s.count)
    .raw(s.data)
    .finish();
}

/**
 * @throws VfioError EINVAL under 20 bytes, or when DATA_BOOL's bytes are not one per vector,
 *   or data follows a DATA_NONE/DATA_EVENTFD head.
 */
export function decodeIrqSet(payload: Uint8Array, what: string): IrqSetPayload {
  const r = new ByteReader(payload, what);
  const s = {
    argsz: r.u32('argsz'),
    flags: r.u32('flags'),
    index: r.u32('index'),
    start: r.u32('start'),
    count: r.u32('count'),
    data: r.rest(),
  };
  const expected = (s.flags & IrqSetFlag.DATA_BOOL) !== 0 ? s.count : 0;
  if (s.data.length !== expected) {
    throw new VfioError(
      'EINVAL',
      `${what}: ${s.data.length} data bytes after the head, expected ${expected}`,
    );
  }
  return s;
}
