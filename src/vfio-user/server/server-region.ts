/**
 * Region access on the server (vfio-user.rst "VFIO_USER_REGION_READ", "_REGION_WRITE",
 * "_REGION_WRITE_MULTI"): at most max_data_xfer_size bytes per access (EINVAL beyond, as
 * libvfio-user's handle_region_access); the device model clips at a region's end and the
 * reply's count says how much was done.
 */
import { VfioError } from '../../vfio/index.ts';
import type { RequestOf } from '../wire/index.ts';
import { Command, encodeReplyParts } from '../wire/index.ts';
import type { HandlerReply, SessionState } from './session-state.ts';

function checkCount(s: SessionState, count: number, what: string): void {
  if (count > s.limits.maxDataXferSize) {
    throw new VfioError(
      'EINVAL',
      `${what} of ${count} bytes exceeds max_data_xfer_size ${s.limits.maxDataXferSize}`,
    );
  }
}

/**
 * REGION_READ: `count` bytes of a region from `offset` (vfio_pci_rw), bounded by
 * max_data_xfer_size.
 */
export function handleRegionRead(s: SessionState, r: RequestOf<Command.REGION_READ>): HandlerReply {
  checkCount(s, r.count, 'REGION_READ');
  // The region's memory itself where it can lend it (no pread into a fresh buffer); the
  // transport copies it only if the reply has to wait for the socket.
  const data = s.device.readView(r.region, r.offset, r.count);
  return {
    parts: encodeReplyParts({
      command: Command.REGION_READ,
      offset: r.offset,
      region: r.region,
      data,
    }),
    borrowed: true,
  };
}

/**
 * REGION_WRITE: the data written to a region at `offset` (vfio_pci_rw); the reply's count is the
 * bytes done.
 */
export function handleRegionWrite(
  s: SessionState,
  r: RequestOf<Command.REGION_WRITE>,
): HandlerReply {
  checkCount(s, r.data.length, 'REGION_WRITE');
  const done = s.device.rw(r.region, r.offset, r.data, true);
  return {
    parts: encodeReplyParts({
      command: Command.REGION_WRITE,
      offset: r.offset,
      region: r.region,
      count: done,
    }),
  };
}

/** Every entry in order; the first failure fails the message (entries before it are done). */
export function handleRegionWriteMulti(
  s: SessionState,
  r: RequestOf<Command.REGION_WRITE_MULTI>,
): HandlerReply {
  for (const w of r.writes) s.device.rw(w.region, w.offset, w.data, true);
  return {
    parts: encodeReplyParts({
      command: Command.REGION_WRITE_MULTI,
      count: BigInt(r.writes.length),
    }),
  };
}
