/**
 * The vfio-user wire layer's public face (QEMU docs/interop/vfio-user.rst): numbers, message
 * types and codecs, framing, the socket transport and the client. The server (server.ts,
 * session.ts, dispatch.ts) builds on these and is imported from its own files.
 */

export {
  CLIENT_CAPABILITIES,
  type ConnectOptions,
  type RegionInfoResult,
  type SetIrqsArgs,
  VfioUserClient,
} from './client.ts';
export { ClientChannel, type ReplyWithFds } from './client-channel.ts';
export type { DmaBacking } from './client-dma.ts';
export {
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeReplyParts,
  encodeRequest,
  encodeRequestParts,
} from './codec.ts';
export * from './constants.ts';
export {
  type FramedMessage,
  type FramerOptions,
  MessageFramer,
  messageSizeLimit,
} from './framer.ts';
export * from './header.ts';
export { type MappedArea, MappedRegion } from './mapped-region.ts';
export type * from './messages.ts';
export { type CloseReason, Connection, type ConnectionHandlers } from './transport.ts';
export * from './version-capabilities.ts';
export { FramingError, type FramingErrorKind, ReplyError } from './wire-errors.ts';
