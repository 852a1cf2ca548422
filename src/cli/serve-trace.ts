/** Where `serve --trace FILE|-` writes ftrace-style lines: a file (appended, synchronously) or stderr. */
import { closeSync, openSync, writeSync } from 'node:fs';
import { CliError } from './cli-error.ts';
import { logLine } from './output.ts';

/**
 * Where `serve --trace` lines go: stderr for '-', else appended to the file (created 0600).
 * @throws CliError FILE when the file cannot be opened.
 */
export function openTraceOutput(target: string): (line: string) => void {
  if (target === '-') return logLine; // a closed stderr stops serve (output.ts), never throws
  let fd: number;
  try {
    fd = openSync(target, 'a', 0o600); // a new file is ours alone whatever the umask (at most 0600)
  } catch (err) {
    throw new CliError(
      'serve',
      'FILE',
      `cannot open trace file ${target} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  process.once('exit', () => closeSync(fd));
  return (line) => void writeSync(fd, `${line}\n`);
}
