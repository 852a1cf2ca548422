/** `vfio-nvlink2 bench` (not implemented yet). */
import { CliError } from './cli-error.ts';

export async function run(_argv: string[]): Promise<number> {
  throw new CliError('bench: not implemented yet', 2);
}
