/**
 * The error the native addon throws when a system call fails: a plain Error with Node's usual
 * `code` (errno name, e.g. "EAGAIN"), `errno` (positive Linux number) and `syscall` fields —
 * the shape of Node's own fs/net errors (node:errors, `ErrnoException`).
 */
export interface SystemCallError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

/** Whether `e` is a system call failure (optionally with errno name `code`). */
export function isSystemCallError(e: unknown, code?: string): e is SystemCallError {
  if (!(e instanceof Error)) return false;
  const c = (e as Partial<SystemCallError>).code;
  const s = (e as Partial<SystemCallError>).syscall;
  return typeof c === 'string' && typeof s === 'string' && (code === undefined || c === code);
}
