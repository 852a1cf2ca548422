/**
 * How large a reply to each request may be, known before its body is received (QEMU
 * hw/vfio-user/proxy.c vfio_user_recv_one: "reply larger than recv buffer"; the reply is read
 * into the request's own buffer of `rsize` bytes). A reply's payload never exceeds what its
 * request asked for: the fixed layout, `argsz` where the request gives one (the kernel's rule:
 * a reply fills at most the caller's argsz), the read's count plus its 16-byte head, or a page
 * for VERSION. The client refuses a larger one before allocating it.
 */

import { VFIO_REGION_INFO_SIZE } from '../../vfio/index.ts';
import type { Request } from '../wire/index.ts';
import {
  Command,
  DMA_ACCESS_HEAD_SIZE,
  DMA_UNMAP_SIZE,
  FOUR_U32_SIZE,
  REGION_ACCESS_HEAD_SIZE,
} from '../wire/index.ts';

/**
 * Largest VERSION reply payload: QEMU accepts no more than its own request (about 250 bytes,
 * proxy.c vfio_user_validate_version); a page leaves room for members we do not know yet.
 */
export const VERSION_REPLY_MAX = 4096;

/** Bytes of the wr_cnt u64 a REGION_WRITE_MULTI reply carries. */
const WRITE_MULTI_REPLY_SIZE = 8;
/** argsz u32 and flags/size u32 before DEVICE_FEATURE and MIG_DATA_READ data. */
const ARGSZ_WORD_SIZE = 8;

/** Most payload bytes (after the 16-byte header) a reply to `request` may carry. */
export function replyPayloadLimit(request: Request): number {
  switch (request.command) {
    case Command.VERSION:
      return VERSION_REPLY_MAX;
    case Command.DMA_MAP:
    case Command.DEVICE_SET_IRQS:
    case Command.DEVICE_RESET:
      return 0;
    case Command.DMA_UNMAP:
      return Math.max(DMA_UNMAP_SIZE, request.argsz);
    case Command.DEVICE_GET_INFO:
    case Command.DEVICE_GET_IRQ_INFO:
    case Command.DEVICE_GET_REGION_IO_FDS:
      return Math.max(FOUR_U32_SIZE, request.argsz);
    case Command.DEVICE_GET_REGION_INFO:
      return Math.max(VFIO_REGION_INFO_SIZE, request.argsz);
    case Command.REGION_READ:
      return REGION_ACCESS_HEAD_SIZE + request.count;
    case Command.REGION_WRITE:
      return REGION_ACCESS_HEAD_SIZE;
    case Command.DMA_READ:
      return DMA_ACCESS_HEAD_SIZE + Number(request.count);
    case Command.DMA_WRITE:
      return DMA_ACCESS_HEAD_SIZE;
    case Command.REGION_WRITE_MULTI:
      return WRITE_MULTI_REPLY_SIZE;
    case Command.DEVICE_FEATURE:
      return Math.max(ARGSZ_WORD_SIZE, request.argsz);
    case Command.MIG_DATA_READ:
      return ARGSZ_WORD_SIZE + request.size;
    case Command.MIG_DATA_WRITE:
      return 0;
  }
}
