/**
 * VFIO_USER_VERSION payload (vfio-user.rst "VFIO_USER_VERSION"): major u16, minor u16, then
 * optional UTF-8 JSON with its terminating NUL; request and reply share the layout.
 */
import { VfioError } from '../../vfio/index.ts';
import type { VersionPayload } from './messages.ts';
import { ByteReader } from './reader.ts';
import { parseVersionJson, serializeVersionJson } from './version-capabilities.ts';
import { ByteWriter } from './writer.ts';

const utf8 = new TextEncoder();

/**
 * A VERSION payload: major, minor (u16 each), then the capabilities JSON, NUL-terminated, if any.
 */
export function encodeVersion(v: VersionPayload): Uint8Array {
  const json = serializeVersionJson(v.capabilities);
  const text = json.length > 0 ? utf8.encode(json) : new Uint8Array(0);
  const w = new ByteWriter(4 + (text.length > 0 ? text.length + 1 : 0));
  w.u16(v.major).u16(v.minor).raw(text);
  if (text.length > 0) w.skip(1);
  return w.finish();
}

/**
 * @throws VfioError EINVAL: shorter than 4 bytes, JSON not NUL-terminated, a NUL inside,
 *   invalid UTF-8, or invalid capabilities (see parseVersionJson).
 */
export function decodeVersion(payload: Uint8Array, what: string): VersionPayload {
  const r = new ByteReader(payload, what);
  const major = r.u16('major');
  const minor = r.u16('minor');
  const data = r.rest();
  if (data.length === 0) return { major, minor, capabilities: null };
  if (data[data.length - 1] !== 0)
    throw new VfioError('EINVAL', `${what}: version data is not NUL-terminated`);
  const body = data.subarray(0, data.length - 1);
  if (body.includes(0)) throw new VfioError('EINVAL', `${what}: version data has a NUL inside`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new VfioError('EINVAL', `${what}: version data is not UTF-8`);
  }
  return { major, minor, capabilities: parseVersionJson(text) };
}
