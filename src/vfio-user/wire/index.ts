/**
 * The vfio-user wire room (vfio-user.rst "Message Format" and the command tables): numbers,
 * the 16-byte header, every message as a typed value with its pure codec, little-endian
 * cursors, the framer (size and fd limits checked before allocating), VERSION's capabilities,
 * and `Connection`, the socket transport (framed messages with SCM_RIGHTS fds) that server and
 * client share: the transport is where the wire meets the socket, below both ends.
 */
export { skipBytes } from './byte-parts.ts';
export {
  decodePlacedRequest,
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeReplyParts,
  encodeRequest,
  encodeRequestParts,
  joinParts,
} from './codec.ts';
export { FOUR_U32_SIZE } from './codec-device.ts';
export { DMA_ACCESS_HEAD_SIZE, DMA_UNMAP_SIZE } from './codec-dma.ts';
export {
  decodeRegionAccessHead,
  decodeRegionDataPlaced,
  REGION_ACCESS_HEAD_SIZE,
} from './codec-region.ts';
export * from './constants.ts';
export {
  type BodyPlacement,
  type FramedMessage,
  type FramerOptions,
  MessageFramer,
  messageSizeLimit,
} from './framer.ts';
export * from './header.ts';
export type * from './messages.ts';
export { type CloseReason, Connection, type ConnectionHandlers } from './transport.ts';
export * from './version-capabilities.ts';
export { FramingError, type FramingErrorKind, ReplyError } from './wire-errors.ts';
