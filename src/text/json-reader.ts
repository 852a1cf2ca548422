/**
 * Narrowing parsed JSON where it enters (a file, a socket, a stream record): the value is
 * `unknown` and each member is checked as it is taken, each failure one line naming the source
 * and the member (`DIR/state.json: "memory.gpus[0].bars" must be a non-negative integer, got
 * "8"`). The caller gives the error class (its module's code: VfioError EINVAL, StateDirError…).
 */

/** A JSON object as parsed. */
export type JsonObject = Record<string, unknown>;

/** A member's value as shown in an error: short, one line, never a walk of a deep value. */
export function shown(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object' && v !== null) return 'an object';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/**
 * JSON.parse typed as what it returns: a value to narrow (JsonReader), never `any`.
 * @throws SyntaxError when `text` is not JSON.
 */
export const parseJson: (text: string) => unknown = JSON.parse;

/** Checks of the members of one JSON value read from `source`; `where` is a member's path. */
export class JsonReader {
  /**
   * @param source What the value was read from, first in every message (a file's path).
   * @param error Makes the error thrown from the message `source: why`.
   */
  constructor(
    readonly source: string,
    private readonly error: (message: string) => Error,
  ) {}

  /** The error `source: why`. */
  invalid(why: string): Error {
    return this.error(`${this.source}: ${why}`);
  }

  /** The error `source: "where" must be what, got value`. */
  wrong(where: string, what: string, v: unknown): Error {
    return this.invalid(`"${where}" must be ${what}, got ${shown(v)}`);
  }

  /**
   * The JSON value of `text`.
   * @throws the caller's error, `source: not JSON (the parser's words)`.
   */
  parse(text: string): unknown {
    try {
      return parseJson(text);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw this.invalid(`not JSON (${JSON.stringify(why.slice(0, 80)).slice(1, -1)})`);
    }
  }

  /** `v` as an object. @throws the caller's error when it is not one (null, an array…). */
  object(where: string, v: unknown): JsonObject {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw this.wrong(where, 'an object', v);
    return v as JsonObject;
  }

  /** `v` as an array. @throws the caller's error when it is not one, or longer than `max`. */
  array(where: string, v: unknown, max: number): readonly unknown[] {
    if (!Array.isArray(v)) throw this.wrong(where, 'an array', v);
    const items: readonly unknown[] = v;
    if (items.length > max)
      throw this.invalid(`"${where}" lists ${items.length} items, at most ${max}`);
    return items;
  }

  /** `v` as a non-negative safe integer. @throws the caller's error otherwise. */
  count(where: string, v: unknown): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw this.wrong(where, 'a non-negative integer', v);
    return v;
  }

  /** `v` as a string. @throws the caller's error otherwise. */
  string(where: string, v: unknown): string {
    if (typeof v !== 'string') throw this.wrong(where, 'a string', v);
    return v;
  }

  /** `v` as a boolean. @throws the caller's error otherwise. */
  boolean(where: string, v: unknown): boolean {
    if (typeof v !== 'boolean') throw this.wrong(where, 'a boolean', v);
    return v;
  }
}
