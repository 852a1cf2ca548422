/**
 * Errors of the wire layer. Malformed payloads throw the device model's own VfioError (EINVAL
 * and friends), which dispatch turns into an error reply. A FramingError means the byte stream
 * itself can no longer be trusted (size under 16, over the limit, too many fds, unknown message
 * type, truncated fds): the connection is closed, as QEMU's proxy.c does ("fatal").
 * A ReplyError is an error reply received by a client.
 */
import { type ErrnoName, errnoName, VfioError } from '../../vfio/index.ts';
import { commandName } from './constants.ts';

/** Stable codes of framing failures. */
export type FramingErrorKind =
  | 'message-too-short'
  | 'message-too-long'
  | 'bad-message-type'
  | 'too-many-fds'
  | 'fds-truncated'
  | 'fds-without-bytes';

/**
 * A byte stream that can no longer be trusted (`kind` says why, `code` the errno): the connection
 * is closed.
 */
export class FramingError extends VfioError {
  constructor(
    readonly kind: FramingErrorKind,
    code: ErrnoName,
    reason: string,
  ) {
    super(code, reason);
  }
}

/**
 * An error reply from the peer: `remoteErrno` is exactly what the reply carried. `code`/`errno`
 * are the same when the device model's errno table knows the number, EIO otherwise.
 */
export class ReplyError extends VfioError {
  constructor(
    readonly command: number,
    readonly msgId: number,
    readonly remoteErrno: number,
  ) {
    const name = errnoName(remoteErrno);
    const known = /^E\d+$/.test(name) ? null : (name as ErrnoName);
    super(known ?? 'EIO', `${commandName(command)} (msg ${msgId}) failed: ${name}`);
  }
}
