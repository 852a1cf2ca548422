/** `vfio-nvlink2 serve` (not implemented yet). */
import { CliError } from './cli-error.ts';

export async function run(_argv: string[]): Promise<number> {
  throw new CliError('serve: not implemented yet', 2);
}
