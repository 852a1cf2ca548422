/**
 * Migration v2 from the client's side (vfio-user.rst "VFIO_USER_DEVICE_FEATURE",
 * "VFIO_USER_MIG_DATA_READ/WRITE"; the feature payloads of include/uapi/linux/vfio.h): what a
 * VMM sends to read a device's migration flags and state, move it between states, read and
 * write the stream, and run DMA dirty logging.
 */
import type { MigState } from '../../migration/index.ts';
import { VfioError } from '../../vfio/index.ts';
import { Command, DeviceFeature, DeviceFeatureFlag } from '../wire/index.ts';
import type { VfioUserClient } from './client.ts';

const FEATURE_HEAD = 8;

function dataView(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

async function featureGet(
  c: VfioUserClient,
  feature: number,
  size: number,
  data: Uint8Array = new Uint8Array(0),
): Promise<Uint8Array> {
  const { reply } = await c.channel.request({
    command: Command.DEVICE_FEATURE,
    argsz: FEATURE_HEAD + size,
    flags: DeviceFeatureFlag.GET | feature,
    data,
  });
  if (reply.data.length < Math.min(size, 8))
    throw new VfioError('EINVAL', `DEVICE_FEATURE ${feature} GET: ${reply.data.length} data bytes`);
  return reply.data;
}

async function featureSet(c: VfioUserClient, feature: number, data: Uint8Array): Promise<void> {
  await c.channel.request({
    command: Command.DEVICE_FEATURE,
    argsz: FEATURE_HEAD + data.length,
    flags: DeviceFeatureFlag.SET | feature,
    data,
  });
}

/** VFIO_DEVICE_FEATURE_MIGRATION: the VFIO_MIGRATION_* flags. @throws ReplyError ENOTTY without migration */
export async function migrationFlags(c: VfioUserClient): Promise<number> {
  const data = await featureGet(c, DeviceFeature.MIGRATION, 8);
  return Number(dataView(data).getBigUint64(0, true));
}

/** MIG_DEVICE_STATE GET. */
export async function migrationState(c: VfioUserClient): Promise<MigState> {
  const data = await featureGet(c, DeviceFeature.MIG_DEVICE_STATE, 8);
  return dataView(data).getUint32(0, true) as MigState;
}

/** MIG_DEVICE_STATE SET (data_fd -1). @throws ReplyError with the server's errno (EINVAL…) */
export async function setMigrationState(c: VfioUserClient, state: number): Promise<void> {
  const data = new Uint8Array(8);
  dataView(data).setUint32(0, state, true);
  dataView(data).setInt32(4, -1, true);
  await featureSet(c, DeviceFeature.MIG_DEVICE_STATE, data);
}

/** MIG_DATA_SIZE: what a STOP_COPY would still send, in bytes. */
export async function migrationDataSize(c: VfioUserClient): Promise<bigint> {
  const data = await featureGet(c, DeviceFeature.MIG_DATA_SIZE, 8);
  return dataView(data).getBigUint64(0, true);
}

/**
 * MIG_DATA_READ of up to `size` bytes (fewer: the round or the stream ended); with `into` (at
 * least `size` bytes, left alone until the promise settles) the data is received straight into
 * it and the result is a view of it.
 */
export async function readMigrationData(
  c: VfioUserClient,
  size: number,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const { reply } = await c.channel.request(
    { command: Command.MIG_DATA_READ, argsz: 8, size },
    [],
    into === undefined ? {} : { into },
  );
  return reply.data;
}

/** MIG_DATA_WRITE of `data`. */
export async function writeMigrationData(c: VfioUserClient, data: Uint8Array): Promise<void> {
  await c.channel.request({ command: Command.MIG_DATA_WRITE, argsz: 8 + data.length, data });
}

/** DMA_LOGGING_START at `pageSize` over `ranges` (none: all). */
export async function startDmaLogging(
  c: VfioUserClient,
  pageSize: bigint,
  ranges: readonly { iova: bigint; length: bigint }[],
): Promise<void> {
  const data = new Uint8Array(16 + 16 * ranges.length);
  const v = dataView(data);
  v.setBigUint64(0, pageSize, true);
  v.setUint32(8, ranges.length, true);
  for (const [i, r] of ranges.entries()) {
    v.setBigUint64(16 + 16 * i, r.iova, true);
    v.setBigUint64(24 + 16 * i, r.length, true);
  }
  await featureSet(c, DeviceFeature.DMA_LOGGING_START, data);
}

/** DMA_LOGGING_STOP. */
export async function stopDmaLogging(c: VfioUserClient): Promise<void> {
  await featureSet(c, DeviceFeature.DMA_LOGGING_STOP, new Uint8Array(0));
}

/** DMA_LOGGING_REPORT of [iova, iova + length) at `pageSize`: the bitmap's bytes (u64 words). */
export async function dmaLoggingReport(
  c: VfioUserClient,
  iova: bigint,
  length: bigint,
  pageSize: bigint,
): Promise<Uint8Array> {
  const req = new Uint8Array(24);
  const v = dataView(req);
  v.setBigUint64(0, iova, true);
  v.setBigUint64(8, length, true);
  v.setBigUint64(16, pageSize, true);
  const words = (length / pageSize + 63n) / 64n;
  const data = await featureGet(c, DeviceFeature.DMA_LOGGING_REPORT, 24 + Number(words) * 8, req);
  return data.subarray(24);
}
