/**
 * Linux errno numbers by name, as the kernel returns them to user space
 * (include/uapi/asm-generic/errno-base.h and errno.h): the codes of every device and driver
 * error (a region op, an ioctl, an `of_*` property reader, a vfio-user error reply).
 */

/** The errno values the emulated kernel and the wire use (asm-generic numbering). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  ENOTTY: 25,
  ENOSYS: 38,
  ENODATA: 61,
  ETIME: 62,
  EPROTO: 71,
  EOVERFLOW: 75,
  EILSEQ: 84,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  ECONNRESET: 104,
  ETIMEDOUT: 110,
} as const;

/** A name of `Errno` ('EINVAL', …). */
export type ErrnoName = keyof typeof Errno;

/** The name of errno `value` (22 → 'EINVAL'); `E<value>` for a number `Errno` does not list. */
export function errnoName(value: number): ErrnoName | `E${number}` {
  for (const [name, v] of Object.entries(Errno)) if (v === value) return name as ErrnoName;
  return `E${value}`;
}

/** Whether `name` is one of `Errno`'s names. */
export function isErrnoName(name: unknown): name is ErrnoName {
  return typeof name === 'string' && Object.hasOwn(Errno, name);
}
