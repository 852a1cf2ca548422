/**
 * Errors of the flattened-device-tree layer. Every failure names where it happened (a byte
 * offset in a blob, or a node path and property) and what was expected there.
 */
import { hex } from '../text/index.ts';

/** Stable codes that tests and callers match on. */
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

/** A malformed blob: `offset` is the byte offset in the blob where the problem was found. */
export class FdtError extends Error {
  override readonly name = 'FdtError';
  constructor(
    readonly code: FdtErrorCode,
    readonly offset: number,
    readonly expected: string,
    readonly source = 'blob',
  ) {
    super(`${source}: offset ${hex(offset)}: ${code}: expected ${expected}`);
  }
}

/**
 * A property that is missing or has the wrong size, with the errno the kernel's `of_*` reader
 * returns in that case (drivers/of/property.c): EINVAL missing, ENODATA no value,
 * EOVERFLOW size, EILSEQ an unterminated string.
 */
export class FdtPropertyError extends Error {
  override readonly name = 'FdtPropertyError';
  constructor(
    readonly errno: 'EINVAL' | 'ENODATA' | 'EOVERFLOW' | 'EILSEQ',
    readonly nodePath: string,
    readonly property: string,
    readonly detail: string,
    /** Bytes in the property's value; undefined when the property is missing. */
    readonly size?: number,
  ) {
    super(`${errno}: ${nodePath}: ${property}: ${detail}`);
  }
}
