/**
 * The stable codes of errors that are not a device's errno, and the one base class that carries
 * either (STYLE.md: "one error type carrying an errno and a stable code", after ws's
 * lib/errors). README.md "Errors" shows the same table; test/error-codes.test.ts holds the two
 * together.
 */
import type { ErrnoName } from './errno.ts';

/** Each stable code and what it means to a user (one line; README.md "Errors"). */
export const STABLE_CODES = {
  USAGE: 'the command line is wrong: an unknown flag, a bad value, a missing argument (exit 2)',
  DT_PARSE:
    'a device tree that cannot be read, compiled by dtc or parsed: names the file and byte offset',
  DT_OPTION: '`dt generate` was asked for a tree the Witherspoon generator cannot build (exit 2)',
  PLATFORM: 'a tree the host model cannot be built from: names the node and property',
  NOT_FOUND: 'a named thing is not there: a PCI function, a device-tree node, a served device',
  SOCKET_DIR: "serve's socket directory cannot be used: names the directory and what to do",
  SOCKET_PATH: 'a socket path that is in use, too long or unsafe to replace',
  STATE_DIR:
    "serve's --state-dir cannot be used: a state file damaged or of another format (named), or another server holds it (its pid)",
  PLACEMENT: "the guest's vPHBs and slots cannot be built from the devices given",
  FILE: 'a file could not be read or written (the message carries the system errno)',
  ADDON:
    'the native addon is missing, cannot be loaded or is of older sources than the code (names the file): run `npm install`',
  INTERNAL: 'a bug: something no input should cause (the stack follows; please report it)',
} as const;

/** A key of `STABLE_CODES`. */
export type StableCode = keyof typeof STABLE_CODES;

/**
 * A system call's errno name from the host's C library (strerrorname_np), e.g. 'EADDRINUSE':
 * what a failure of the host itself (a socket, a file) carries, never a device's refusal.
 */
export type SystemErrnoName = `E${string}`;

/**
 * What an error of ours carries in `code`: the errno name the kernel would return (a device or
 * driver error), a host system call's errno name, or a stable code.
 */
export type ErrorCode = ErrnoName | SystemErrnoName | StableCode;

/** Whether `code` is one of `STABLE_CODES`. */
export function isStableCode(code: unknown): code is StableCode {
  return typeof code === 'string' && Object.hasOwn(STABLE_CODES, code);
}

/**
 * The base of every error class of the project: `code` (an errno name or a stable code) and a
 * message that names what was wrong and where (file, offset, property, region, socket path).
 */
export class CodedError<C extends ErrorCode = ErrorCode> extends Error {
  override readonly name: string = 'CodedError';
  constructor(
    readonly code: C,
    message: string,
  ) {
    super(message);
  }
}

/** Anything thrown as an Error (a thrown string or number wrapped), to pass on. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** The message of anything thrown: an Error's `message`, else the value as a string. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * An error's message without its own code, for a line that prints the code before it: a
 * leading `CODE: ` (VfioError's `EINVAL: reason`) or the first `: CODE: ` after a place
 * (DeviceSocketError's `SOCKET: ETIMEDOUT: reason` → `SOCKET: reason`).
 */
export function messageWithoutCode(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = errorCode(err);
  const { message } = err;
  if (code === undefined) return message;
  if (message.startsWith(`${code}: `)) return message.slice(code.length + 2);
  const at = message.indexOf(`: ${code}: `);
  return at < 0 ? message : message.slice(0, at) + message.slice(at + code.length + 2);
}

/**
 * The code of any error a user may see: a `CodedError`'s `code`, or the errno name of a system
 * call's failure (Node's and the native addon's `code`, e.g. 'EADDRINUSE', which need not be in
 * `Errno`); undefined for anything else (a bug, shown with its stack).
 */
export function errorCode(err: unknown): ErrorCode | undefined {
  if (err instanceof CodedError) return (err as CodedError).code; // instanceof alone gives CodedError<any>
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  // The native leaf, which imports no other folder, says ADDON on a plain Error.
  if (code === 'ADDON') return code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)
    ? (code as SystemErrnoName)
    : undefined;
}
