/** `vfio-nvlink2 dt doctor` (stub until its owner lands the real module). */
import { CliError } from './cli-error.ts';

export async function runDoctor(_argv: string[]): Promise<number> {
  throw new CliError('dt doctor: not implemented yet', 2);
}
