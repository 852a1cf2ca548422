/**
 * The 16-byte message header (vfio-user.rst "Header"; struct vfio_user_header in libvfio-user
 * include/vfio-user.h): msg_id u16, command u16, size u32 (whole message), flags u32 (type in
 * bits 0–3, NO_REPLY 0x10, ERROR 0x20), error u32.
 */
import { HEADER_SIZE, HeaderFlag, MessageType } from './constants.ts';

/**
 * The vfio-user header (vfio-user.rst "Header"): msg_id, command, size (bytes, header included),
 * flags, and the errno of an error reply.
 */
export interface MessageHeader {
  readonly msgId: number;
  /** A Command, or any number a peer sent (unknown ones get an EINVAL reply). */
  readonly command: number;
  /** Bytes of the whole message, header included. */
  readonly size: number;
  readonly flags: number;
  /** errno of an error reply; 0 otherwise. */
  readonly errno: number;
}

/** The type bits of a header's flags (COMMAND or REPLY). */
export function messageType(flags: number): number {
  return flags & HeaderFlag.TYPE_MASK;
}

/** Whether the header is a reply's. */
export function isReply(h: MessageHeader): boolean {
  return messageType(h.flags) === MessageType.REPLY;
}

/** Whether the header is an error reply's (REPLY with the ERROR flag; `errno` holds the errno). */
export function isErrorReply(h: MessageHeader): boolean {
  return isReply(h) && (h.flags & HeaderFlag.ERROR) !== 0;
}

/** Whether the sender wants a reply (NO_REPLY clear). */
export function wantsReply(h: MessageHeader): boolean {
  return (h.flags & HeaderFlag.NO_REPLY) === 0;
}

/**
 * Writes `h` into the first 16 bytes of `into`, with `size` in place of `h.size` when given.
 * Byte by byte rather than through a DataView: this runs once per message.
 */
export function writeHeader(into: Uint8Array, h: MessageHeader, size: number = h.size): void {
  into[0] = h.msgId & 0xff;
  into[1] = (h.msgId >>> 8) & 0xff;
  into[2] = h.command & 0xff;
  into[3] = (h.command >>> 8) & 0xff;
  putU32(into, 4, size);
  putU32(into, 8, h.flags);
  putU32(into, 12, h.errno);
}

function putU32(into: Uint8Array, at: number, v: number): void {
  into[at] = v & 0xff;
  into[at + 1] = (v >>> 8) & 0xff;
  into[at + 2] = (v >>> 16) & 0xff;
  into[at + 3] = (v >>> 24) & 0xff;
}

function getU32(from: Uint8Array, at: number): number {
  return (from[at]! | (from[at + 1]! << 8) | (from[at + 2]! << 16) | (from[at + 3]! << 24)) >>> 0;
}

/** The 16-byte header of `h` (little-endian, vfio-user.rst "Header"). */
export function encodeHeader(h: MessageHeader): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE);
  writeHeader(out, h);
  return out;
}

/** Reads a header from the first 16 bytes of `bytes` (the caller checks there are 16). */
export function decodeHeader(bytes: Uint8Array): MessageHeader {
  return {
    msgId: bytes[0]! | (bytes[1]! << 8),
    command: bytes[2]! | (bytes[3]! << 8),
    size: getU32(bytes, 4),
    flags: getU32(bytes, 8),
    errno: getU32(bytes, 12),
  };
}

/** Header of a command carrying `payloadSize` bytes. */
export function commandHeader(
  msgId: number,
  command: number,
  payloadSize: number,
  noReply = false,
): MessageHeader {
  return {
    msgId,
    command,
    size: HEADER_SIZE + payloadSize,
    flags: MessageType.COMMAND | (noReply ? HeaderFlag.NO_REPLY : 0),
    errno: 0,
  };
}

/** Header of a successful reply to `request` carrying `payloadSize` bytes. */
export function replyHeader(request: MessageHeader, payloadSize: number): MessageHeader {
  return {
    msgId: request.msgId,
    command: request.command,
    size: HEADER_SIZE + payloadSize,
    flags: MessageType.REPLY,
    errno: 0,
  };
}

/** An error reply: the header alone, flags REPLY|ERROR, errno set. */
export function errorReplyHeader(request: MessageHeader, errno: number): MessageHeader {
  return {
    msgId: request.msgId,
    command: request.command,
    size: HEADER_SIZE,
    flags: MessageType.REPLY | HeaderFlag.ERROR,
    errno,
  };
}
