/**
 * Migration v2 on the server (vfio-user.rst "VFIO_USER_DEVICE_FEATURE", "VFIO_USER_MIG_DATA_READ",
 * "VFIO_USER_MIG_DATA_WRITE"; include/uapi/linux/vfio.h for the feature payloads): the checks
 * drivers/vfio/vfio_main.c makes before a feature runs (vfio_ioctl_device_feature,
 * vfio_check_feature), then the session's DeviceMigration (src/migration) does the work.
 *
 * DEVICE_FEATURE: flags other than the index and GET/SET/PROBE, or GET with SET without PROBE,
 * are EINVAL; an operation the feature lacks is EINVAL; PROBE answers with the request; a
 * request whose argsz (or, for SET, data) is shorter than the feature's payload is EINVAL; an
 * unknown feature is ENOTTY, as is every migration and DMA-logging feature (and MIG_DATA_READ/WRITE)
 * of a device whose variant does not migrate (no mig_ops). A GET replies with the request's argsz and flags followed by the
 * feature's data, argsz then being 8 + that data's size.
 */
import { hex } from '../../text/index.ts';
import { VfioError } from '../../vfio/index.ts';
import type { RequestOf } from '../wire/index.ts';
import { Command, DeviceFeature, DeviceFeatureFlag, encodeReplyParts } from '../wire/index.ts';
import { EMPTY_REPLY, type HandlerReply, type SessionState } from './session-state.ts';

/** sizeof(struct vfio_device_feature) before the data: argsz u32, flags u32. */
const FEATURE_HEAD = 8;
/** vfio_device_feature_dma_logging_range: iova u64, length u64. */
const LOGGING_RANGE_SIZE = 16;

/** The features vfio_main.c answers ENOTTY for a device with no mig_ops (and no log_ops). */
const MIGRATION_FEATURES: ReadonlySet<number> = new Set([
  DeviceFeature.MIGRATION,
  DeviceFeature.MIG_DEVICE_STATE,
  DeviceFeature.DMA_LOGGING_START,
  DeviceFeature.DMA_LOGGING_STOP,
  DeviceFeature.DMA_LOGGING_REPORT,
  DeviceFeature.MIG_DATA_SIZE,
]);

/** ENOTTY for a device whose variant does not migrate (no mig_ops: there is no data fd either). */
function checkMigrates(s: SessionState, what: string): void {
  const v = s.device.variant;
  if (v?.migrates === false) throw new VfioError('ENOTTY', `${what}: ${v.name} does not migrate`);
}

const KNOWN_FLAGS =
  DeviceFeatureFlag.MASK | DeviceFeatureFlag.GET | DeviceFeatureFlag.SET | DeviceFeatureFlag.PROBE;

function dataView(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * vfio_check_feature(): 'probe' to answer a PROBE, 'get' or 'set' to run it.
 * @throws VfioError EINVAL (see the module header)
 */
function checkFeature(
  r: RequestOf<Command.DEVICE_FEATURE>,
  name: string,
  supported: number,
  minsz: number,
): 'probe' | 'get' | 'set' {
  const op = r.flags & (DeviceFeatureFlag.GET | DeviceFeatureFlag.SET);
  if ((op & ~supported) !== 0)
    throw new VfioError(
      'EINVAL',
      `DEVICE_FEATURE ${name}: ${op & DeviceFeatureFlag.GET ? 'GET' : 'SET'} is not supported`,
    );
  if (r.flags & DeviceFeatureFlag.PROBE) return 'probe';
  if (op === 0) throw new VfioError('EINVAL', `DEVICE_FEATURE ${name}: neither GET nor SET`);
  if (r.argsz < FEATURE_HEAD + minsz)
    throw new VfioError(
      'EINVAL',
      `DEVICE_FEATURE ${name}: argsz ${r.argsz} is under ${FEATURE_HEAD + minsz}`,
    );
  if (op === DeviceFeatureFlag.SET && r.data.length < minsz)
    throw new VfioError(
      'EINVAL',
      `DEVICE_FEATURE ${name}: ${r.data.length} data bytes, ${minsz} needed`,
    );
  return op === DeviceFeatureFlag.GET ? 'get' : 'set';
}

function echo(r: RequestOf<Command.DEVICE_FEATURE>): HandlerReply {
  return { parts: encodeReplyParts(r) };
}

function getReply(r: RequestOf<Command.DEVICE_FEATURE>, data: Uint8Array): HandlerReply {
  return {
    parts: encodeReplyParts({
      command: Command.DEVICE_FEATURE,
      argsz: FEATURE_HEAD + data.length,
      flags: r.flags,
      data,
    }),
  };
}

function u64Data(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  dataView(b).setBigUint64(0, v, true);
  return b;
}

/**
 * DEVICE_FEATURE: MIGRATION (GET), MIG_DEVICE_STATE (GET/SET), DMA_LOGGING_START/STOP (SET),
 * DMA_LOGGING_REPORT (GET), MIG_DATA_SIZE (GET).
 * @throws VfioError EINVAL, ENOTTY (see the module header); the migration's errno.
 */
export function handleDeviceFeature(
  s: SessionState,
  r: RequestOf<Command.DEVICE_FEATURE>,
): HandlerReply {
  if (r.argsz < FEATURE_HEAD)
    throw new VfioError('EINVAL', `DEVICE_FEATURE argsz ${r.argsz} is under ${FEATURE_HEAD}`);
  if ((r.flags & ~KNOWN_FLAGS) >>> 0 !== 0)
    throw new VfioError('EINVAL', `DEVICE_FEATURE flags ${hex(r.flags >>> 0)} has unknown bits`);
  const both = DeviceFeatureFlag.GET | DeviceFeatureFlag.SET;
  if (!(r.flags & DeviceFeatureFlag.PROBE) && (r.flags & both) === both)
    throw new VfioError('EINVAL', 'DEVICE_FEATURE: GET and SET together without PROBE');
  const m = s.migration;
  const { GET, SET } = DeviceFeatureFlag;
  const feature = r.flags & DeviceFeatureFlag.MASK;
  if (MIGRATION_FEATURES.has(feature)) checkMigrates(s, `DEVICE_FEATURE ${feature}`);
  switch (feature) {
    case DeviceFeature.MIGRATION: {
      const op = checkFeature(r, 'MIGRATION', GET, 8);
      return op === 'probe' ? echo(r) : getReply(r, u64Data(BigInt(m.flags)));
    }
    case DeviceFeature.MIG_DEVICE_STATE: {
      const op = checkFeature(r, 'MIG_DEVICE_STATE', GET | SET, 8);
      if (op === 'probe') return echo(r);
      if (op === 'set') {
        m.setState(dataView(r.data).getUint32(0, true));
        return echo(r);
      }
      const data = new Uint8Array(8);
      dataView(data).setUint32(0, m.state, true);
      dataView(data).setInt32(4, -1, true); // data_fd: unused over vfio-user
      return getReply(r, data);
    }
    case DeviceFeature.DMA_LOGGING_START: {
      const op = checkFeature(r, 'DMA_LOGGING_START', SET, 16);
      if (op === 'probe') return echo(r);
      const v = dataView(r.data);
      const pageSize = v.getBigUint64(0, true);
      const count = v.getUint32(8, true);
      if (r.data.length < 16 + count * LOGGING_RANGE_SIZE)
        throw new VfioError(
          'EINVAL',
          `DMA_LOGGING_START: ${count} ranges need ${16 + count * LOGGING_RANGE_SIZE} data bytes, ${r.data.length} came`,
        );
      const ranges = Array.from({ length: count }, (_, i) => ({
        iova: v.getBigUint64(16 + i * LOGGING_RANGE_SIZE, true),
        length: v.getBigUint64(24 + i * LOGGING_RANGE_SIZE, true),
      }));
      m.dmaLog.start(pageSize, ranges);
      return echo(r);
    }
    case DeviceFeature.DMA_LOGGING_STOP: {
      if (checkFeature(r, 'DMA_LOGGING_STOP', SET, 0) === 'set') m.dmaLog.stop();
      return echo(r);
    }
    case DeviceFeature.DMA_LOGGING_REPORT: {
      const op = checkFeature(r, 'DMA_LOGGING_REPORT', GET, 24);
      if (op === 'probe') return echo(r);
      if (r.data.length < 24)
        throw new VfioError('EINVAL', `DMA_LOGGING_REPORT: ${r.data.length} data bytes, 24 needed`);
      const v = dataView(r.data);
      const iova = v.getBigUint64(0, true);
      const length = v.getBigUint64(8, true);
      const pageSize = v.getBigUint64(16, true);
      const words = pageSize === 0n ? 0n : (length / pageSize + 63n) / 64n;
      if (BigInt(r.argsz) < BigInt(FEATURE_HEAD + 24) + words * 8n)
        throw new VfioError(
          'EINVAL',
          `DMA_LOGGING_REPORT: argsz ${r.argsz} cannot hold a ${words * 8n}-byte bitmap`,
        );
      const bitmap = m.dmaLog.report(iova, length, pageSize);
      const data = new Uint8Array(24 + bitmap.length);
      data.set(r.data.subarray(0, 24));
      data.set(bitmap, 24);
      return getReply(r, data);
    }
    case DeviceFeature.MIG_DATA_SIZE: {
      const op = checkFeature(r, 'MIG_DATA_SIZE', GET, 8);
      return op === 'probe' ? echo(r) : getReply(r, u64Data(m.stopCopyLength()));
    }
    default:
      throw new VfioError(
        'ENOTTY',
        `DEVICE_FEATURE ${r.flags & DeviceFeatureFlag.MASK} is not supported`,
      );
  }
}

/**
 * MIG_DATA_READ: up to `size` bytes of the stream, fewer when the round or stream ends.
 * @throws VfioError EINVAL for argsz under 8, a size over max_data_xfer_size, or a state other
 *   than PRE_COPY and STOP_COPY.
 */
export function handleMigDataRead(
  s: SessionState,
  r: RequestOf<Command.MIG_DATA_READ>,
): HandlerReply {
  checkMigrates(s, 'MIG_DATA_READ');
  if (r.argsz < 8) throw new VfioError('EINVAL', `MIG_DATA_READ argsz ${r.argsz} is under 8`);
  const max = Math.min(s.limits.maxDataXferSize, s.client.maxDataXferSize);
  if (r.size > max)
    throw new VfioError(
      'EINVAL',
      `MIG_DATA_READ of ${r.size} bytes is over max_data_xfer_size ${max}`,
    );
  const parts = s.migration.read(r.size);
  const n = parts.reduce((sum, p) => sum + p.length, 0);
  const head = new Uint8Array(8);
  dataView(head).setUint32(0, 8 + n, true);
  dataView(head).setUint32(4, n, true);
  // Borrowed: the saver reuses its record buffers once a reply is sent (queued ones are copied).
  return { parts: [head, ...parts], borrowed: true };
}

/**
 * MIG_DATA_WRITE: the next bytes of the stream (no reply payload).
 * @throws VfioError EINVAL for argsz under 8 + size, outside RESUMING, or a damaged stream.
 */
export function handleMigDataWrite(
  s: SessionState,
  r: RequestOf<Command.MIG_DATA_WRITE>,
): HandlerReply {
  checkMigrates(s, 'MIG_DATA_WRITE');
  if (r.argsz < 8 + r.data.length)
    throw new VfioError('EINVAL', `MIG_DATA_WRITE argsz ${r.argsz} is under 8 + ${r.data.length}`);
  // Stable: a body of its own, or one of the two buffers placement alternates (session.ts).
  s.migration.write(r.data, true);
  return EMPTY_REPLY;
}
