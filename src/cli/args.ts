/**
 * The CLI's one argument parser: node:util parseArgs, with a value that starts with a dash
 * followed by a digit (`--lpid -1`, `--gpu-mem -1G`) taken as the option's value. parseArgs
 * itself calls that "ambiguous"; taken as the value, it reaches the option's own check, which
 * says what the option must be.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** `--name -1` → `--name=-1` (and `-o -1` → `-o=-1`… as `-o-1`) for string options. */
function joinDashValues(args: readonly string[], options: ParseArgsConfig['options']): string[] {
  const stringOption = (arg: string): boolean => {
    if (arg.startsWith('--')) return options?.[arg.slice(2)]?.type === 'string';
    if (/^-[A-Za-z]$/.test(arg))
      return Object.values(options ?? {}).some((o) => o.short === arg[1] && o.type === 'string');
    return false;
  };
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const next = args[i + 1];
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (next !== undefined && /^-[\d.]/.test(next) && stringOption(arg)) {
      out.push(arg.startsWith('--') ? `${arg}=${next}` : `${arg}${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/**
 * parseArgs of `config` (strict unless it says otherwise), negative numbers taken as values.
 * @throws TypeError from parseArgs (an unknown option, a missing value), as parseArgs does.
 */
export function parseCliArgs<T extends ParseArgsConfig>(
  config: T,
): ReturnType<typeof parseArgs<T>> {
  const args = joinDashValues(config.args ?? process.argv.slice(2), config.options);
  // Only `args` differs: the result has the shape parseArgs gives `config`.
  return parseArgs({ ...config, args }) as unknown as ReturnType<typeof parseArgs<T>>;
}
