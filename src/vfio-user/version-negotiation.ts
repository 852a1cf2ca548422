/**
 * The server's half of VERSION (vfio-user.rst "VFIO_USER_VERSION" reply rules): the same major,
 * a minor no higher than the client's, capabilities a subset of the client's, each limit the
 * smaller of the two sides'. The reply JSON stays short: QEMU reads it into a buffer the size
 * of its own request (hw/vfio-user/proxy.c vfio_user_validate_version).
 */
import { VfioError } from '../vfio/errors.ts';
import type { VersionPayload } from './messages.ts';
import {
  type EffectiveCapabilities,
  effectiveCapabilities,
  type VersionCapabilities,
} from './version-capabilities.ts';

export interface ServerVersion {
  major: number;
  /** The highest minor the server speaks. */
  minor: number;
  capabilities: VersionCapabilities;
}

export interface Negotiated {
  reply: VersionPayload;
  /** What the client will honour: limits for messages the server receives and sends. */
  client: EffectiveCapabilities;
  /** What the server announced (the limits it enforces on the client). */
  server: EffectiveCapabilities;
}

function lower(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

/**
 * @throws VfioError EINVAL when the client proposes another major version.
 */
export function negotiateVersion(request: VersionPayload, server: ServerVersion): Negotiated {
  if (request.major !== server.major) {
    throw new VfioError(
      'EINVAL',
      `client proposes major version ${request.major}, server speaks ${server.major}`,
    );
  }
  const c = request.capabilities ?? {};
  const s = server.capabilities;
  const caps: VersionCapabilities = {};
  const maxMsgFds = lower(s.maxMsgFds, c.maxMsgFds);
  const maxDataXferSize = lower(s.maxDataXferSize, c.maxDataXferSize);
  const maxDmaMaps = lower(s.maxDmaMaps, c.maxDmaMaps);
  if (maxMsgFds !== undefined) caps.maxMsgFds = maxMsgFds;
  if (maxDataXferSize !== undefined) caps.maxDataXferSize = maxDataXferSize;
  if (maxDmaMaps !== undefined && c.maxDmaMaps !== undefined) caps.maxDmaMaps = maxDmaMaps;
  if (s.pgsizes !== undefined && c.pgsizes !== undefined) caps.pgsizes = s.pgsizes & c.pgsizes;
  if (s.writeMultiple && c.writeMultiple) caps.writeMultiple = true;
  const reply: VersionPayload = {
    major: server.major,
    minor: Math.min(request.minor, server.minor),
    capabilities: caps,
  };
  return {
    reply,
    client: effectiveCapabilities(request.capabilities),
    server: effectiveCapabilities(caps),
  };
}
