/**
 * The CLI's standard output and error when they fail: a closed pipe (`| head -1`, a `--trace -`
 * reader that exits: EPIPE) or a full disk (`> /dev/full`: ENOSPC). Node reports those as an
 * 'error' event on process.stdout/stderr, which without a listener kills the process with a
 * stack trace, and console.log swallows them (the command "succeeds" with its output lost).
 * Every command writes through `writeStdout`/`printLine`, which reject with an `OutputError`;
 * `guardOutput` (main.ts) turns the events of writes nobody awaits (log lines) into the same
 * failure, which `serve` and `trace` watch with `onOutputFailure` to stop cleanly.
 */
import { CodedError, type SystemErrnoName } from '../errors/index.ts';
import { replaceFile } from '../state-dir/index.ts';
import { CliError } from './cli-error.ts';

/** Exit status after a closed pipe: what a shell reports for a program killed by SIGPIPE. */
export const EXIT_CLOSED_PIPE = 141;

/** A write to stdout or stderr failed; `code` is the system errno (EPIPE, ENOSPC, EIO…). */
export class OutputError extends CodedError<SystemErrnoName> {
  override readonly name: string = 'OutputError';
  /**
   * @param stream Which of the two failed.
   * @param code The errno name of the failed write.
   * @param reason The system's words for it ("no space left on device").
   */
  constructor(
    readonly stream: 'stdout' | 'stderr',
    code: SystemErrnoName,
    reason: string,
  ) {
    super(code, `cannot write to ${stream}: ${reason}`);
  }

  /** The reader went away (EPIPE): a quiet end, nothing to report. */
  get closedPipe(): boolean {
    return this.code === 'EPIPE';
  }
}

/**
 * Where the CLI's output goes: a stream with Node's `write(data, callback)` (the callback gets
 * the write's error), and `isTTY` when it is a terminal.
 */
export interface OutputStream {
  write(data: string | Uint8Array, callback: (err?: Error | null) => void): boolean;
  readonly isTTY?: boolean;
}

/** The CLI's stdout and stderr. */
export interface OutputStreams {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
}

/** The process's own streams, unless a caller running a command in process set others. */
let streams: OutputStreams | null = null;

function stdoutStream(): OutputStream {
  return streams?.stdout ?? process.stdout;
}
function stderrStream(): OutputStream {
  return streams?.stderr ?? process.stderr;
}

/**
 * Sends every later write of writeStdout/printLine/logLine (and the terminal checks
 * stdoutIsTerminal/stderrIsTerminal) to `to`, or back to process.stdout/stderr with null:
 * for a caller that runs a command in process (cli-main.ts runCommandLine) and keeps its
 * output, as a spawned command's pipes would.
 */
export function setOutputStreams(to: OutputStreams | null): void {
  streams = to;
}

/** Whether the command's stdout is a terminal (a DTB is not written to one). */
export function stdoutIsTerminal(): boolean {
  return stdoutStream().isTTY === true;
}

/** Whether the command's stderr is a terminal (progress bars show only there). */
export function stderrIsTerminal(): boolean {
  return stderrStream().isTTY === true;
}

const failures: { stdout?: OutputError; stderr?: OutputError } = {};
const watchers = new Set<(failure: OutputError) => void>();
let guarded = false;

/** Node's write error as an OutputError (ERR_STREAM_DESTROYED: the stream's first failure). */
function outputError(stream: 'stdout' | 'stderr', err: unknown): OutputError {
  if (err instanceof OutputError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) ? e.code : 'EIO';
  const reason = (e?.message ?? String(err))
    .replace(/^E[A-Z0-9]+: /, '')
    .replace(/, write$/, '')
    .replace(/^write E[A-Z0-9]+$/, code === 'EPIPE' ? 'broken pipe' : code);
  return new OutputError(stream, code as SystemErrnoName, reason);
}

function record(stream: 'stdout' | 'stderr', err: unknown): OutputError {
  const known = failures[stream];
  if (known) return known;
  const failure = outputError(stream, err);
  failures[stream] = failure;
  for (const w of [...watchers]) w(failure);
  return failure;
}

/**
 * Listens for 'error' on process.stdout and process.stderr (once per process), so that a
 * failed write nobody awaits is recorded instead of killing the process with a stack.
 */
export function guardOutput(): void {
  if (guarded) return;
  guarded = true;
  process.stdout.on('error', (err: Error) => record('stdout', err));
  process.stderr.on('error', (err: Error) => record('stderr', err));
}

/** The first failure of stdout, else of stderr; undefined while both work. */
export function outputFailure(): OutputError | undefined {
  return failures.stdout ?? failures.stderr;
}

/**
 * Calls `watch` once, at the first failure of stdout or stderr (at once if one failed already).
 * @returns a function that stops watching.
 */
export function onOutputFailure(watch: (failure: OutputError) => void): () => void {
  const known = outputFailure();
  if (known) {
    watch(known);
    return () => {};
  }
  const once = (f: OutputError) => {
    watchers.delete(once);
    watch(f);
  };
  watchers.add(once);
  return () => watchers.delete(once);
}

function writeTo(
  stream: OutputStream,
  name: 'stdout' | 'stderr',
  data: string | Uint8Array,
): Promise<void> {
  const known = failures[name];
  if (known) return Promise.reject(known);
  return new Promise<void>((resolve, reject) => {
    try {
      stream.write(data, (err) => (err ? reject(record(name, err)) : resolve()));
    } catch (err) {
      reject(record(name, err));
    }
  });
}

/**
 * Writes `data` to stdout; resolves once it is written.
 * @throws OutputError (EPIPE for a closed pipe, ENOSPC for a full disk, …).
 */
export function writeStdout(data: string | Uint8Array): Promise<void> {
  return writeTo(stdoutStream(), 'stdout', data);
}

/** `text` and a newline to stdout, as console.log but failing. @throws OutputError */
export function printLine(text: string): Promise<void> {
  return writeStdout(`${text}\n`);
}

/**
 * Writes `line` and a newline to stderr when it still works (a log line: never awaited, never
 * fatal; a failure is recorded for `onOutputFailure`).
 */
export function logLine(line: string): void {
  if (failures.stderr) return;
  try {
    stderrStream().write(`${line}\n`, (err) => {
      if (err) record('stderr', err);
    });
  } catch (err) {
    record('stderr', err);
  }
}

/**
 * Writes `data` to the file `path` a user named (`-o FILE`): through a temporary file beside it
 * and a rename (replaceFile, mode 0666 less the umask), so that a write that fails (ENOSPC, a
 * signal) leaves the file that was there untouched and no half file.
 * @throws CliError FILE for `command`, naming the file and the errno.
 */
export function writeOutputFile(command: string, path: string, data: string | Uint8Array): void {
  try {
    replaceFile(path, data);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new CliError(command, 'FILE', `cannot write ${path} (${code})`);
  }
}
