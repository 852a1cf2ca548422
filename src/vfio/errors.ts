/**
 * The one error type of the device model: an errno (Linux numbering, asm-generic/errno*.h)
 * and a sentence a user can act on. Region ops and ioctls throw it; the vfio-user server turns
 * it into an error reply, the CLI into a line.
 */

/** Linux errno values (include/uapi/asm-generic/errno-base.h, errno.h). */
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

export type ErrnoName = keyof typeof Errno;

export function errnoName(value: number): ErrnoName | `E${number}` {
  for (const [name, v] of Object.entries(Errno)) if (v === value) return name as ErrnoName;
  return `E${value}`;
}

export class VfioError extends Error {
  override readonly name = 'VfioError';
  readonly errno: number;
  constructor(
    readonly code: ErrnoName,
    /** Why, naming the thing (device, region, offset, property) that was wrong. */
    readonly reason: string,
  ) {
    super(`${code}: ${reason}`);
    this.errno = Errno[code];
  }
}
