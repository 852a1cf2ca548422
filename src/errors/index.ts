/**
 * The error vocabulary users see (issue 12.7): every error of ours is a `CodedError` whose
 * `code` is the errno name the kernel would return for a device or driver error (EINVAL,
 * ENOMEM, …) and a stable code (`STABLE_CODES`) for everything else. The CLI prints
 * `vfio-nvlink2: <command>: <code>: <message>`. A leaf like text: it imports nothing of ours,
 * so every layer (fdt included) may use it.
 */
export {
  asError,
  CodedError,
  type ErrorCode,
  errorCode,
  isStableCode,
  messageOf,
  messageWithoutCode,
  STABLE_CODES,
  type StableCode,
  type SystemErrnoName,
} from './codes.ts';
export { Errno, type ErrnoName, errnoName, isErrnoName } from './errno.ts';
