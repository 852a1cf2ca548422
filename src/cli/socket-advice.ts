/**
 * What to do when a vfio-user socket of `serve` cannot be reached (inspect, guest): each
 * connect errno with the user's next step, for the end of the error line that names the socket.
 */
import { type ErrorCode, errorCode } from '../errors/index.ts';
import { CliError, cliErrorOf } from './cli-error.ts';

const ADVICE: Readonly<Record<string, string>> = {
  ENOENT:
    'no socket there: start `vfio-nvlink2 serve --socket-dir DIR` first, or name a socket DIR/devices.json lists',
  ECONNREFUSED:
    'nothing listens on it (a socket left by a serve that was killed?): start `vfio-nvlink2 serve` again',
  EACCES:
    "not allowed: serve's sockets are 0600 for its own uid; run as that user, or start serve with --allow-uid UID",
  EPERM:
    "not allowed: serve's sockets are 0600 for its own uid; run as that user, or start serve with --allow-uid UID",
  ENOTSOCK: 'that is no socket: name a DIR/<address>.sock of `vfio-nvlink2 serve`',
  ETIMEDOUT:
    'the server did not answer VERSION in time: is it `vfio-nvlink2 serve` (a vfio-user server), and not stopped?',
  ECONNRESET: 'the server closed the connection: see its log (stderr) for why',
  EPIPE: 'the server closed the connection: see its log (stderr) for why',
  EBUSY:
    "the device is in use: another client is connected, or one of another uid still holds its memory (serve's log names it); close it first",
};

/** The advice for a connect or conversation failure with this code; undefined: none. */
export function socketAdvice(code: ErrorCode | undefined): string | undefined {
  return code === undefined ? undefined : ADVICE[code];
}

/**
 * `err` (a failure to reach or talk to a socket, whose message names it) as `command`'s line,
 * with what to do appended when its code has advice; `prefix` goes before the message.
 */
export function socketFailure(command: string, err: unknown, prefix = ''): CliError {
  const line = cliErrorOf(command, err, prefix);
  const advice = socketAdvice(errorCode(err));
  return advice === undefined
    ? line
    : new CliError(command, line.code, `${line.detail}; ${advice}`);
}
