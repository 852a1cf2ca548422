/**
 * The vfio-user client room: what a VMM (or a test, the bench, inspect, guest) uses to talk to
 * a server — negotiation, requests matched to replies, replies bounded by what was asked,
 * DMA regions the server may read and write, mapped regions, and a device described over the
 * wire (describe-remote.ts).
 */

export {
  CLIENT_CAPABILITIES,
  type ConnectOptions,
  QEMU_MSG_TIMEOUT_MS,
  type RegionInfoResult,
  type SetIrqsArgs,
  VfioUserClient,
} from './client.ts';
export { checkMappable } from './client-bounds.ts';
export { ClientChannel, type ReplyWithFds } from './client-channel.ts';
export type { DmaBacking } from './client-dma.ts';
export {
  dmaLoggingReport,
  migrationDataSize,
  migrationFlags,
  migrationState,
  readMigrationData,
  setMigrationState,
  startDmaLogging,
  stopDmaLogging,
  writeMigrationData,
} from './client-migration.ts';
export { atSocket, DeviceSocketError, describeRemote, snapshotRemote } from './describe-remote.ts';
export { type MappedArea, MappedRegion } from './mapped-region.ts';
export {
  CONVERGED_BYTES,
  type MigrateOptions,
  type MigrateReport,
  migrateDevice,
} from './migrate-device.ts';
