/**
 * The subset of the kernel's vsnprintf (lib/vsprintf.c) that tracepoint formats use:
 * `%s`, `%d`/`%i`, `%u`, `%x`, and the `l`/`ll` length modifiers, with C semantics for the
 * width of the value (an `int` is 32 bits, a `long` 64 bits on ppc64). No padding flags.
 */

export type PrintfArg = string | number | bigint;

/** A format this module cannot render (a programming error, never user input). */
export class PrintfError extends Error {
  override readonly name = 'PrintfError';
}

function toBigInt(value: PrintfArg): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return BigInt(Math.trunc(value));
  throw new PrintfError(`expected a number, got string '${value}'`);
}

/** Renders one integer conversion: `bits` is 32 for int, 64 for long / long long. */
function integer(value: PrintfArg, conversion: string, bits: 32 | 64): string {
  const v = toBigInt(value);
  switch (conversion) {
    case 'd':
    case 'i':
      return BigInt.asIntN(bits, v).toString(10);
    case 'u':
      return BigInt.asUintN(bits, v).toString(10);
    case 'x':
      return BigInt.asUintN(bits, v).toString(16);
    default:
      throw new PrintfError(`unsupported conversion %${conversion}`);
  }
}

const SPEC = /%(%|s|l{0,2}[diux])/g;

/**
 * `snprintf(buf, …, format, …args)` for the conversions above.
 * @throws PrintfError on an unsupported conversion or a missing argument.
 */
export function printf(format: string, args: readonly PrintfArg[]): string {
  let next = 0;
  return format.replace(SPEC, (_match, spec: string) => {
    if (spec === '%') return '%';
    if (next >= args.length) throw new PrintfError(`missing argument ${next} for '${format}'`);
    const arg = args[next++] as PrintfArg;
    if (spec === 's') return String(arg);
    const conversion = spec.slice(-1);
    return integer(arg, conversion, spec.length > 1 ? 64 : 32);
  });
}
