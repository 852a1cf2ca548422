/**
 * The peer's vfio-user side: the machine of the built-in platform and its first GPU served on
 * a socket by the project's server module (VfioUserServer, one device per socket, partitions
 * over the machine's LPID allocator), as `serve` serves each of its devices.
 */
import type { Fdt } from '../fdt/index.ts';
import { createMachine, PartitionRegistry } from '../machine/index.ts';
import { defaultPlatformTree, generateGrace } from '../platform/index.ts';
import { VfioUserServer } from '../vfio-user/index.ts';

/** A GPU served in the peer process: its socket path and PCI address, and `close`. */
export interface ServedGpu {
  readonly path: string;
  /** PCI address of the GPU ("DDDD:BB:DD.F"). */
  readonly address: string;
  close(): void;
}

/**
 * Serves the first GPU of the built-in platform at `path`; server log lines go to stderr.
 * @throws Error when the platform has no GPU; SystemCallError when the socket cannot listen.
 */
export function serveFirstGpu(path: string, tree: Fdt = defaultPlatformTree()): ServedGpu {
  const machine = createMachine(tree);
  const gpu = machine.servedFunctions().find((fn) => fn.role === 'gpu');
  if (gpu === undefined) throw new Error('the built-in platform has no GPU');
  const server = new VfioUserServer({
    device: machine.device(gpu.name),
    socketPath: path,
    partitions: new PartitionRegistry(machine.lpids),
    log: (line) => process.stderr.write(`bench peer: ${line}\n`),
  });
  server.listen();
  return {
    path,
    address: gpu.name,
    close() {
      server.close();
      machine.dispose();
    },
  };
}

/**
 * Serves the GPU of a one-GPU Grace Hopper with 2304 MiB of device memory (usemem 1 GiB, the
 * usemem BAR 2 GiB) at `path`, for the usemem mapping figure.
 */
export function serveGraceGpu(path: string): ServedGpu {
  return serveFirstGpu(path, generateGrace({ machine: 'grace-hopper', gpuMem: 2304n << 20n }));
}
