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
} from './client/client.ts';
export { ClientChannel, type ReplyWithFds } from './client/client-channel.ts';
export type { DmaBacking } from './client/client-dma.ts';
export { type MappedArea, MappedRegion } from './client/mapped-region.ts';
export {
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeReplyParts,
  encodeRequest,
  encodeRequestParts,
} from './wire/codec.ts';
export * from './wire/constants.ts';
export {
  type FramedMessage,
  type FramerOptions,
  MessageFramer,
  messageSizeLimit,
} from './wire/framer.ts';
export * from './wire/header.ts';
export type * from './wire/messages.ts';
export { type CloseReason, Connection, type ConnectionHandlers } from './wire/transport.ts';
export * from './wire/version-capabilities.ts';
export { FramingError, type FramingErrorKind, ReplyError } from './wire/wire-errors.ts';
