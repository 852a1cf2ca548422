/**
 * Errors of the flattened-device-tree layer. Every failure names where it happened (a byte
 * offset in a blob, or a node path and property) and what was expected there.
 */
import { CodedError } from '../errors/index.ts';
import { hex } from '../text/index.ts';

/** Which way a blob or tree is malformed: the stable `kind` of an FdtError (code DT_PARSE). */
export type FdtErrorCode =
  | 'BAD_MAGIC'
  | 'TRUNCATED'
  | 'BAD_HEADER'
  | 'OUT_OF_BOUNDS'
  | 'MISALIGNED'
  | 'BAD_TOKEN'
  | 'UNTERMINATED_STRING'
  | 'UNBALANCED'
  | 'BAD_VERSION'
  | 'PHANDLE_LOOP'
  | 'BAD_PATH'
  /** A root node not named '', or a name that cannot be written (NUL, or not DTS syntax). */
  | 'BAD_NAME';

/**
 * A malformed blob (code DT_PARSE): `kind` says how, `offset` is the byte offset in the blob
 * where it was found; the message is `SOURCE: offset 0xOFF: KIND: expected WHAT`.
 */
export class FdtError extends CodedError<'DT_PARSE'> {
  override readonly name: string = 'FdtError';
  constructor(
    readonly kind: FdtErrorCode,
    readonly offset: number,
    readonly expected: string,
    readonly source = 'blob',
  ) {
    super('DT_PARSE', `${source}: offset ${hex(offset)}: ${kind}: expected ${expected}`);
  }
}

/**
 * A property that is missing or has the wrong size, with the errno the kernel's `of_*` reader
 * returns in that case (drivers/of/property.c): EINVAL missing, ENODATA no value,
 * EOVERFLOW size, EILSEQ an unterminated string.
 */
export class FdtPropertyError extends CodedError<'EINVAL' | 'ENODATA' | 'EOVERFLOW' | 'EILSEQ'> {
  override readonly name: string = 'FdtPropertyError';
  constructor(
    /** The errno name (the same as `code`). */
    readonly errno: 'EINVAL' | 'ENODATA' | 'EOVERFLOW' | 'EILSEQ',
    readonly nodePath: string,
    readonly property: string,
    readonly detail: string,
    /** Bytes in the property's value; undefined when the property is missing. */
    readonly size?: number,
  ) {
    super(errno, `${errno}: ${nodePath}: ${property}: ${detail}`);
  }
}
