/**
 * From a drafted command to the frame that is sent: most go as drafted, the rest bent at one
 * level — a field set to an edge value, bits flipped, the payload cut or padded, the command
 * number or header flags changed, fds added where none belong or of the wrong kind — and,
 * for a connection's last frame, the framing itself broken (size under 16, over the limit,
 * past or short of the bytes, a message type that does not exist, more fds than allowed, a
 * disconnect inside the message). `expectationOf` says what the server must do with each.
 */

import { hex } from '../text/index.ts';
import { Command } from '../vfio-user/index.ts';
import type { Draft } from './commands.ts';
import { type Expectation, FD_KINDS, type FdKind, type PlannedFrame } from './plan.ts';
import type { Random } from './random.ts';
import { edgeU32, edgeU64 } from './values.ts';
import {
  FLAG_ERROR,
  FLAG_NO_REPLY,
  frameBytes,
  HEADER_BYTES,
  setU32,
  setU64,
  TYPE_COMMAND,
  TYPE_REPLY,
} from './wire.ts';

/** The server's framing limits: largest message (header included) and fds per message. */
export interface FramingLimits {
  readonly maxMessageSize: number;
  readonly maxFds: number;
}

/** What the server must do with `bytes` sent whole with `fds` descriptors. */
export function expectationOf(bytes: Uint8Array, fds: number, limits: FramingLimits): Expectation {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const size = v.getUint32(4, true);
  const flags = v.getUint32(8, true);
  const type = flags & 0xf;
  if (size < HEADER_BYTES || size > limits.maxMessageSize) return 'fatal';
  if (type !== TYPE_COMMAND && type !== TYPE_REPLY) return 'fatal';
  if (fds > limits.maxFds) return 'fatal';
  if (size !== bytes.length) return 'misframed';
  if (type === TYPE_REPLY || (flags & FLAG_NO_REPLY) !== 0) return 'silent';
  return 'reply';
}

function mutateField(rng: Random, d: Draft): string {
  if (d.fields.length === 0) return 'no field';
  const [at, width] = rng.pick(d.fields);
  if (width === 8) setU64(d.payload, at, edgeU64(rng));
  else if (width === 4) setU32(d.payload, at, edgeU32(rng));
  else if (width === 2) new DataView(d.payload.buffer).setUint16(at, edgeU32(rng), true);
  else d.payload[at] = edgeU32(rng);
  return `field@${at}`;
}

function flipBits(rng: Random, d: Draft): string {
  if (d.payload.length === 0) return 'no bits';
  const n = rng.int(1, 4);
  for (let i = 0; i < n; i++) d.payload[rng.below(d.payload.length)]! ^= 1 << rng.below(8);
  return `${n} bit flips`;
}

function resize(rng: Random, d: Draft): string {
  const len = d.payload.length;
  const to = rng.weighted<number>([
    [40, rng.below(len + 1)],
    [30, len + rng.int(1, 16)],
    [20, rng.pick([0, 1, 4, 8, 15, 16, 20, 24, 31, 32])],
    [10, len + rng.int(17, 4096)],
  ]);
  const out = new Uint8Array(to);
  out.set(d.payload.subarray(0, Math.min(len, to)));
  if (to > len) rng.fill(out.subarray(len));
  d.payload = out;
  return `payload ${len}→${to}`;
}

/** Fds where none belong, one too many, or of the wrong kind (always within the fd limit). */
function addFds(rng: Random, d: Draft): string {
  const n = rng.weighted<number>([
    [60, 1],
    [30, rng.int(2, 4)],
    [10, rng.int(5, 16 - d.fds.length)],
  ]);
  for (let i = 0; i < n && d.fds.length < 16; i++) d.fds.push(rng.pick(FD_KINDS));
  return `+${n} fds`;
}

/**
 * A frame for the middle of a connection: well framed (size matches, a command or reply type,
 * at most `limits.maxFds` fds), possibly mutated.
 */
export function frameFor(
  rng: Random,
  d: Draft,
  msgId: number,
  limits: FramingLimits,
): PlannedFrame {
  let how = '';
  let command = d.command;
  let flags = TYPE_COMMAND;
  const roll = rng.u32() % 100;
  if (roll < 62) how = '';
  else if (roll < 78) how = mutateField(rng, d);
  else if (roll < 84) how = flipBits(rng, d);
  else if (roll < 89) how = resize(rng, d);
  else if (roll < 93) how = addFds(rng, d);
  else if (roll < 96) {
    command = rng.pick([command ^ (1 << rng.below(16)), rng.below(20), edgeU32(rng) & 0xffff]);
    how = `command→${command}`;
  } else {
    flags = rng.pick([
      TYPE_REPLY,
      TYPE_REPLY | FLAG_ERROR,
      TYPE_COMMAND | FLAG_ERROR,
      TYPE_COMMAND | (rng.u32() & ~0xf & ~FLAG_NO_REPLY),
    ]);
    how = `flags ${hex(flags)}`;
  }
  // Posted writes are what VMMs send: NO_REPLY on a share of region writes, rarely elsewhere.
  const posted = d.command === Command.REGION_WRITE ? 0.3 : 0.03;
  if ((flags & 0xf) === TYPE_COMMAND && rng.chance(posted)) flags |= FLAG_NO_REPLY;
  const msgIdSent = rng.chance(0.98) ? msgId : edgeU32(rng) & 0xffff;
  const bytes = frameBytes({ msgId: msgIdSent, command, flags }, d.payload);
  if (bytes.length > limits.maxMessageSize) {
    // Too large for the middle of a connection: send the head of it, framed to fit.
    return frameFor(rng, { ...d, payload: d.payload.subarray(0, 4096) }, msgId, limits);
  }
  return {
    bytes,
    fds: d.fds,
    label: how ? `${d.label} [${how}]` : d.label,
    expect: expectationOf(bytes, d.fds.length, limits),
  };
}

/** How a connection's last frame breaks the framing, for the ends that need one. */
export type BrokenFraming =
  | 'size-under-16'
  | 'size-over-limit'
  | 'bad-type'
  | 'too-many-fds'
  | 'size-past-body'
  | 'size-short-of-body';

/**
 * The last frame of a connection whose framing is broken on purpose. Fatal kinds are sent
 * whole (the server must close); misframed ones leave the server waiting or reading garbage.
 */
export function brokenFrame(
  rng: Random,
  d: Draft,
  msgId: number,
  how: BrokenFraming,
  limits: FramingLimits,
): PlannedFrame {
  let size: number | undefined;
  let flags = TYPE_COMMAND;
  let payload = d.payload;
  let fds = d.fds;
  const trueSize = HEADER_BYTES + payload.length;
  switch (how) {
    case 'size-under-16':
      size = rng.below(HEADER_BYTES);
      break;
    case 'size-over-limit':
      size = rng.chance(0.5)
        ? limits.maxMessageSize + rng.int(1, 64)
        : rng.int(limits.maxMessageSize + 1, 0xffffffff);
      payload = payload.subarray(0, Math.min(payload.length, 4096));
      break;
    case 'bad-type':
      flags = rng.int(2, 15) | (rng.u32() & ~0xf);
      break;
    case 'too-many-fds':
      fds = Array.from({ length: rng.int(limits.maxFds + 1, 253) }, () => 'eventfd' as FdKind);
      break;
    case 'size-past-body':
      size = Math.min(limits.maxMessageSize, trueSize + rng.pick([1, 8, 16, rng.int(1, 1 << 20)]));
      if (size <= trueSize) size = trueSize + 1;
      break;
    case 'size-short-of-body':
      if (payload.length === 0) payload = rng.bytes(rng.int(16, 64));
      size = rng.int(HEADER_BYTES, HEADER_BYTES + payload.length - 1);
      break;
  }
  const bytes = frameBytes(
    { msgId, command: d.command, flags, ...(size === undefined ? {} : { size }) },
    payload,
  );
  return {
    bytes,
    fds,
    label: `${d.label} [${how}${size === undefined ? '' : ` size ${size}`}]`,
    expect: expectationOf(bytes, fds.length, limits),
  };
}
