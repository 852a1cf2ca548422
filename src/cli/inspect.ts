/** `vfio-nvlink2 inspect` (not implemented yet). */
import { CliError } from './cli-error.ts';

export async function run(_argv: string[]): Promise<number> {
  throw new CliError('inspect: not implemented yet', 2);
}
