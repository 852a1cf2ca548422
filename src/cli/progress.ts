/**
 * A progress bar for long commands (cli-progress), on stderr only when stderr is a terminal and
 * the output is not for programs (--json); otherwise every call is a no-op, so piped and JSON
 * output stay clean.
 */
import { SingleBar } from 'cli-progress';
import { stderrIsTerminal } from './output.ts';

/** A progress bar handle: a cli-progress SingleBar on stderr, or a no-op. */
export interface Progress {
  /** Sets the bar to `value` of its total, with `step` as its text. */
  update(value: number, step?: string): void;
  stop(): void;
}

const QUIET: Progress = { update() {}, stop() {} };

/** A bar of `total` steps, or a quiet one when `quiet` or stderr is not a TTY. */
export function startProgress(
  label: string,
  total: number,
  options: { quiet?: boolean; unit?: string } = {},
): Progress {
  if (options.quiet || !stderrIsTerminal()) return QUIET;
  const bar = new SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {value}/{total} ${options.unit ?? 'steps'} | {step}`,
    hideCursor: true,
    clearOnComplete: false,
  });
  bar.start(total, 0, { step: '' });
  return {
    update(value, step) {
      bar.update(Math.min(value, total), step === undefined ? {} : { step });
    },
    stop() {
      bar.stop();
    },
  };
}
