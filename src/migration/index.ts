/**
 * Live migration of a vfio-pci device, vfio-user migration v2 (QEMU docs/interop/vfio-user.rst
 * "VFIO_USER_DEVICE_FEATURE", "VFIO_USER_MIG_DATA_READ/WRITE"; include/uapi/linux/vfio.h
 * vfio_device_mig_state): the state machine with the kernel's paths, the stream (a versioned,
 * self-describing sequence of CRC-checked records), the server-only dirty tracking of mapped
 * memory by page digests, and the DMA dirty log. Over the vfio core only: variants take part
 * through RegionOps.contents.
 */
export {
  describeForStream,
  incompatibility,
  type MemorySource,
  memorySources,
} from './device-image.ts';
export { DeviceMigration, SERVER_MIGRATION_FLAGS } from './device-migration.ts';
export { DmaDirtyLog, type DmaRange, LOG_MAX_RANGES } from './dma-log.ts';
export {
  isRunningState,
  MIG_STATE_COUNT,
  MigrationFlag,
  MigState,
  migPath,
  migStateName,
  nextMigState,
} from './mig-state.ts';
export { pageDigest, TRACK_PAGE } from './page-digest.ts';
export {
  allocPages,
  decodeRecord,
  decodeRecordHead,
  encodeConfig,
  encodeEnd,
  encodeHeader,
  encodeIrqs,
  encodeRegisters,
  MAX_RECORD_PAYLOAD,
  RECORD_HEAD,
  RECORD_TAIL,
  RecordType,
  recordCrcOk,
  STREAM_MAGIC,
  STREAM_VERSION,
  type StreamDescription,
  type StreamRecord,
  sealRecord,
  streamError,
} from './stream-format.ts';
export { StreamLoader } from './stream-loader.ts';
export { StreamParser } from './stream-parser.ts';
export { type SaverCounts, StreamSaver } from './stream-saver.ts';
