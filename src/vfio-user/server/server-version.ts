/**
 * VFIO_USER_VERSION on the server (vfio-user.rst "VFIO_USER_VERSION"; libvfio-user
 * lib/tran.c handle_version_and_get_caps): the major must be ours (0); the reply's minor is
 * min(client's, ours), so a 0.0 client (QEMU) gets 0.0; the JSON is short because QEMU reads
 * the reply into a buffer the size of its own request (about 214 bytes of JSON). VERSION is
 * the first command of a session and only the first: it also opens the device.
 */
import { VfioError } from '../../vfio/index.ts';
import type { RequestOf } from '../wire/index.ts';
import {
  Command,
  DEFAULT_MAX_DATA_XFER_SIZE,
  DEFAULT_PGSIZES,
  type EffectiveCapabilities,
  effectiveCapabilities,
  encodeReplyParts,
  QEMU_MAX_MSG_FDS,
  type VersionCapabilities,
} from '../wire/index.ts';
import { processDmaLimits } from './dma-limits.ts';
import type { HandlerReply, SessionState } from './session-state.ts';

/** The protocol major version the server speaks (vfio-user.rst "Version": 0). */
export const SERVER_MAJOR = 0;
/** libvfio-user's LIB_VFIO_USER_MINOR; replies never exceed the client's minor. */
export const SERVER_MINOR = 2;

/**
 * What the server announces: 16 fds, 1 MiB transfers, 4 KiB pages, WRITE_MULTI, and as
 * max_dma_maps what this process can honour per session (dma-limits.ts: from RLIMIT_NOFILE and
 * the number of devices served, at most the kernel's 65535), read when a VERSION is answered.
 */
export const SERVER_CAPABILITIES: VersionCapabilities = {
  maxMsgFds: QEMU_MAX_MSG_FDS,
  maxDataXferSize: DEFAULT_MAX_DATA_XFER_SIZE,
  get maxDmaMaps(): number {
    return processDmaLimits().mapsPerSession;
  },
  pgsizes: DEFAULT_PGSIZES,
  writeMultiple: true,
};

/**
 * The server's limits as peers see them after VERSION (max_dma_maps: the process's per-session
 * limit).
 */
export const SERVER_LIMITS: EffectiveCapabilities = {
  ...effectiveCapabilities(SERVER_CAPABILITIES),
  get maxDmaMaps(): number {
    return processDmaLimits().mapsPerSession;
  },
};

/**
 * @throws VfioError EINVAL (a second VERSION, another major), or the device open's errno.
 */
export function handleVersion(s: SessionState, r: RequestOf<Command.VERSION>): HandlerReply {
  if (s.negotiated)
    throw new VfioError('EINVAL', 'VERSION was already negotiated on this connection');
  if (r.major !== SERVER_MAJOR) {
    throw new VfioError(
      'EINVAL',
      `client version ${r.major}.${r.minor}: only major ${SERVER_MAJOR} is supported`,
    );
  }
  const client = effectiveCapabilities(r.capabilities);
  s.openDevice();
  s.negotiated = true;
  s.client = client;
  return {
    parts: encodeReplyParts({
      command: Command.VERSION,
      major: SERVER_MAJOR,
      minor: Math.min(r.minor, SERVER_MINOR),
      capabilities: SERVER_CAPABILITIES,
    }),
  };
}
