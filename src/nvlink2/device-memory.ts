/**
 * The memory behind the NVLink2 regions: one sparse memfd per GPU the size of its GPU RAM
 * region (the 128 GiB aperture; only touched pages cost memory) and one 64 KiB memfd per ATSD
 * register page. The store keeps them for the life of the process, so device state survives a
 * client closing the device and opening it again, as GPU RAM and registers do on the host.
 */
import { createMemfdMemory, type SharedMemory, type SharedMemoryFactory } from '../vfio/index.ts';

/** GPU RAM or an ATSD page: the core's shared memory (a sparse memfd). */
export type DeviceMemory = SharedMemory;
/** Makes the memory of a GPU RAM region or ATSD page: the core's `SharedMemoryFactory`. */
export type DeviceMemoryFactory = SharedMemoryFactory;
export { createMemfdMemory };

/** The store's key of the GPU RAM of `gpu` (its PCI name). */
export function gpuRamKey(gpu: string): string {
  return `gpu-ram:${gpu}`;
}

/** The store's key of the ATSD register page at `address` (shared by the bridges it serves). */
export function atsdKey(address: bigint): string {
  return `atsd:${address.toString(16)}`;
}

/** Device memory by key ("gpu-ram:0004:01:00.0", "atsd:6030200800000"), created on first use. */
export class DeviceMemoryStore {
  private readonly memories = new Map<string, DeviceMemory>();

  constructor(private readonly factory: DeviceMemoryFactory = createMemfdMemory) {}

  /** The memory for `key`, created with `size` bytes the first time. */
  get(key: string, size: bigint): DeviceMemory {
    let m = this.memories.get(key);
    if (!m) {
      m = this.factory(`vfio-nvlink2:${key}`, size);
      this.memories.set(key, m);
    }
    return m;
  }

  peek(key: string): DeviceMemory | undefined {
    return this.memories.get(key);
  }

  /**
   * The memory for `key` if it exists: made already, or kept from before this process (a state
   * directory's file, opened now with `size` bytes); undefined otherwise (nothing is made).
   */
  existing(key: string, size: bigint): DeviceMemory | undefined {
    const made = this.memories.get(key);
    if (made !== undefined) return made;
    return this.factory.kept?.(`vfio-nvlink2:${key}`) === true ? this.get(key, size) : undefined;
  }

  /** Closes every descriptor (at process shutdown). */
  closeAll(): void {
    for (const m of this.memories.values()) m.close();
    this.memories.clear();
  }
}
