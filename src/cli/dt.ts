/** `vfio-nvlink2 dt` (not implemented yet). */
import { CliError } from './cli-error.ts';

export async function run(_argv: string[]): Promise<number> {
  throw new CliError('dt: not implemented yet', 2);
}
