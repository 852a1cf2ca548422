/**
 * The vfio-user server room (vfio-user.rst "Server"; libvfio-user's vfu_ctx): the listener
 * (one device per socket, one client at a time), one `Session` per client over a
 * `MessageTransport`, the dispatch switch with one handler per command, the DMA table and its
 * limits, and the socket path's safety checks. Partition policy comes from the owner.
 */
export { dmaLimitsWarning, MAX_WINDOWS_PER_SESSION, setDmaSessionCount } from './dma-limits.ts';
export {
  LOG_RATE_BURST,
  LOG_RATE_INTERVAL_MS,
  LOG_RATE_SOCKET_BURST,
  RateLimitedLog,
} from './log-rate-limit.ts';
export { GIVEN_RECORD_VERSION, GivenMemory, type GivenRecord } from './memory-holders.ts';
export type { MessageReceiver, MessageTransport } from './message-transport.ts';
export type { PartitionPolicy } from './partition-policy.ts';
export {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_STALL_TIMEOUT_MS,
  VfioUserServer,
  type VfioUserServerOptions,
} from './server.ts';
export {
  claimSocketPath,
  type FileIdentity,
  fileIdentity,
  octalMode,
  ourUid,
  SocketPathError,
  type UnsafeAncestor,
  unlinkIfOurs,
  unsafeAncestor,
  unsafeDirectoryReason,
} from './server-socket-path.ts';
export { SERVER_FRAMER_LIMITS, Session, type SessionOptions } from './session.ts';
export type { SessionState } from './session-state.ts';
