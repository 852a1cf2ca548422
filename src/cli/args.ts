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
 * parseArgs' error for `args` in the CLI's words: one sentence (no trailing period) naming the
 * option or argument, without parseArgs' advice; other errors as they are.
 */
function reworded(err: unknown, args: readonly string[]): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (!(err instanceof Error) || typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_'))
    return err;
  // "Option '-p, --pause-pid <value>' …": the long name.
  const option = /Option '(?:-\w, )?(--?[^' ]+)/.exec(err.message)?.[1];
  const quoted = /'([^']*)'/.exec(err.message)?.[1];
  let sentence = (err.message.split(/\.\s/)[0] ?? err.message).replace(/\.$/, '');
  if (option !== undefined && / argument is ambiguous/.test(err.message)) {
    const at = args.findIndex((a) => a === option || a.startsWith(`${option}=`));
    const next = at < 0 ? undefined : args[at + 1];
    sentence = `${option} needs a value${next === undefined ? '' : `, not the option '${next}'`} (a value starting with a dash: ${option}=VALUE)`;
  } else if (option !== undefined && / argument missing/.test(err.message))
    sentence = `${option} needs a value`;
  else if (option !== undefined && / does not take an argument/.test(err.message))
    sentence = `${option} takes no value`;
  else if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && quoted !== undefined)
    sentence = `unknown option '${quoted}'`;
  else if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' && quoted !== undefined)
    sentence = `unexpected argument '${quoted}' (this command takes no positional arguments)`;
  // parseArgs' own kind (a TypeError with its code), in our words.
  return Object.assign(new TypeError(sentence), { code });
}

/**
 * parseArgs of `config` (strict unless it says otherwise), negative numbers taken as values.
 * @throws TypeError with parseArgs' code (ERR_PARSE_ARGS_*), its message naming the option: an unknown option, a missing or
 *   ambiguous value, a value given to a flag, an unexpected positional.
 */
export function parseCliArgs<T extends ParseArgsConfig>(
  config: T,
): ReturnType<typeof parseArgs<T>> {
  const args = joinDashValues(config.args ?? process.argv.slice(2), config.options);
  try {
    // Only `args` differs: the result has the shape parseArgs gives `config`.
    return parseArgs({ ...config, args }) as unknown as ReturnType<typeof parseArgs<T>>;
  } catch (err) {
    throw reworded(err, args);
  }
}
