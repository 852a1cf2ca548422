/**
 * The 16-byte message header (vfio-user.rst "Header"; struct vfio_user_header in libvfio-user
 * include/vfio-user.h): msg_id u16, command u16, size u32 (whole message), flags u32 (type in
 * bits 0–3, NO_REPLY 0x10, ERROR 0x20), error u32.
 */
import { HEADER_SIZE, HeaderFlag, MessageType } from './constants.ts';

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

export function messageType(flags: number): number {
  return flags & HeaderFlag.TYPE_MASK;
}

export function isReply(h: MessageHeader): boolean {
  return messageType(h.flags) === MessageType.REPLY;
}

export function isErrorReply(h: MessageHeader): boolean {
  return isReply(h) && (h.flags & HeaderFlag.ERROR) !== 0;
}

export function wantsReply(h: MessageHeader): boolean {
  return (h.flags & HeaderFlag.NO_REPLY) === 0;
}

/** Writes `h` into the first 16 bytes of `into`. */
export function writeHeader(into: Uint8Array, h: MessageHeader): void {
  const v = new DataView(into.buffer, into.byteOffset, HEADER_SIZE);
  v.setUint16(0, h.msgId, true);
  v.setUint16(2, h.command, true);
  v.setUint32(4, h.size >>> 0, true);
  v.setUint32(8, h.flags >>> 0, true);
  v.setUint32(12, h.errno >>> 0, true);
}

export function encodeHeader(h: MessageHeader): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE);
  writeHeader(out, h);
  return out;
}

/** Reads a header from the first 16 bytes of `bytes` (the caller checks there are 16). */
export function decodeHeader(bytes: Uint8Array): MessageHeader {
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  return {
    msgId: v.getUint16(0, true),
    command: v.getUint16(2, true),
    size: v.getUint32(4, true),
    flags: v.getUint32(8, true),
    errno: v.getUint32(12, true),
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
