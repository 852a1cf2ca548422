/**
 * The peer's vfio-user side: the machine of the built-in platform and its first GPU served on
 * a socket by the project's server module, exactly as `serve` would serve it.
 */
import { createMachine } from '../machine/index.ts';
import { defaultPlatformTree } from '../platform/default-platform.ts';

export interface ServedGpu {
  readonly path: string;
  /** PCI address of the GPU ("DDDD:BB:DD.F"). */
  readonly address: string;
  close(): void;
}

/**
 * Serves the first GPU of the built-in platform at `path`.
 * @throws Error when the platform has no GPU or the server module cannot listen.
 */
export function serveFirstGpu(path: string): ServedGpu {
  const machine = createMachine(defaultPlatformTree());
  const gpu = machine.servedFunctions().find((fn) => fn.role === 'gpu');
  if (gpu === undefined) throw new Error('the built-in platform has no GPU');
  // The server module (src/vfio-user/server*.ts) is landing concurrently; wired in once it does.
  throw new Error(`vfio-user server module not available yet (would serve ${gpu.name} at ${path})`);
}
