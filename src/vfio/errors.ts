/**
 * The one error type of the device model: an errno (Linux numbering, asm-generic/errno*.h, kept
 * in the errors leaf with the rest of the vocabulary) and a sentence a user can act on. Region
 * ops and ioctls throw it; the vfio-user server turns it into an error reply, the CLI into a line.
 */
import { CodedError, Errno, type ErrnoName } from '../errors/index.ts';

export { Errno, type ErrnoName, errnoName } from '../errors/index.ts';

/**
 * A device or driver error: `code` is the errno name the kernel would return ('EINVAL'),
 * `errno` its positive number, `reason` the sentence; the message is `CODE: reason`.
 */
export class VfioError extends CodedError<ErrnoName> {
  override readonly name: string = 'VfioError';
  /** The positive Linux errno number of `code`. */
  readonly errno: number;
  constructor(
    code: ErrnoName,
    /** Why, naming the thing (device, region, offset, property) that was wrong. */
    readonly reason: string,
  ) {
    super(code, `${code}: ${reason}`);
    this.errno = Errno[code];
  }
}
