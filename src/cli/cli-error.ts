/**
 * The CLI's one error line, `vfio-nvlink2: <command>: <code>: <message>` (main.ts prints it):
 * `code` is from the errors leaf's vocabulary (an errno name for a device's refusal, a stable
 * code such as USAGE or SOCKET_DIR for the rest); README.md "Errors" lists the codes.
 */
import {
  CodedError,
  type ErrorCode,
  errorCode,
  messageOf,
  messageWithoutCode,
} from '../errors/index.ts';

/** An error the CLI reports as one readable line (no stack), with an exit code. */
export class CliError extends CodedError {
  override readonly name: string = 'CliError';
  /**
   * @param command The command as typed ('serve', 'dt generate').
   * @param code The vocabulary's code; USAGE exits with status 2 unless `exitCode` says otherwise.
   * @param detail What was wrong and where (file, flag, socket path…), without the code.
   */
  constructor(
    readonly command: string,
    code: ErrorCode,
    readonly detail: string,
    readonly exitCode = code === 'USAGE' ? 2 : 1,
  ) {
    super(code, `${command}: ${code}: ${detail}`);
  }
}

/** A `node:util` parseArgs failure as one USAGE line naming the flag (exit status 2). */
export function usageError(command: string, err: unknown): CliError {
  const message = messageOf(err);
  const first = message.split(/\.\s/)[0] ?? message;
  return new CliError(command, 'USAGE', first.replace(/\.$/, ''));
}

/**
 * An error of ours met by `command`, as its CLI line: the error's own code (a `CodedError`'s, a
 * system call's errno name) and its message without a repeated code; `prefix` goes before the
 * message (`cannot listen: `). An error without a code is a bug: the result is INTERNAL.
 */
export function cliErrorOf(
  command: string,
  err: unknown,
  prefix = '',
  exitCode?: number,
): CliError {
  const code = errorCode(err) ?? 'INTERNAL';
  return new CliError(command, code, `${prefix}${messageWithoutCode(err)}`, exitCode);
}
