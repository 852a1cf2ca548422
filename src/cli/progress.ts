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

/**
 * A bar of `total` steps (counted in `unit`, default "steps"; with `eta`, the time left estimated
 * from the last 200 updates), or a quiet one when `quiet` or stderr is not a TTY.
 */
export function startProgress(
  label: string,
  total: number,
  options: { quiet?: boolean; unit?: string; eta?: boolean } = {},
): Progress {
  if (options.quiet || !stderrIsTerminal()) return QUIET;
  const left = options.eta ? '{eta_formatted} left ' : '';
  const bar = new SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {value}/{total} ${options.unit ?? 'steps'} | ${left}{step}`,
    hideCursor: true,
    clearOnComplete: false,
    ...(options.eta ? { etaBuffer: 200 } : {}),
  });
  bar.start(total, 0, { step: '' });
  // The bar hid the cursor and turned line wrap off (ESC[?25l ESC[?7l): whatever ends the
  // process puts the terminal back — an exit (a command's own signal handler calls
  // process.exit), or a signal nobody else handles, re-raised once the bar is stopped.
  const stop = () => {
    if (!live.delete(stop)) return;
    process.off('exit', stop);
    for (const signal of TERMINAL_SIGNALS) process.off(signal, onSignal);
    bar.stop();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    stop();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  live.add(stop);
  process.on('exit', stop);
  for (const signal of TERMINAL_SIGNALS) process.on(signal, onSignal);
  return {
    update(value, step) {
      bar.update(Math.min(value, total), step === undefined ? {} : { step });
    },
    stop,
  };
}

/** The signals that end a command at a terminal (^C, hang-up, kill). */
const TERMINAL_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGHUP', 'SIGTERM'];

/** The stop of each bar on the terminal now. */
const live = new Set<() => void>();

/**
 * Stops every bar on the terminal, showing the cursor and turning line wrap back on: for a
 * signal handler about to print its line and exit.
 */
export function stopAllProgress(): void {
  for (const stop of [...live]) stop();
}
