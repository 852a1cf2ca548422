/** An error the CLI reports as one readable line (no stack), with an exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** A `node:util` parseArgs failure as one line naming the flag (exit status 2). */
export function usageError(command: string, err: unknown): CliError {
  const message = err instanceof Error ? err.message : String(err);
  const first = message.split(/\.\s/)[0] ?? message;
  return new CliError(`${command}: ${first.replace(/\.$/, '')}`, 2);
}
