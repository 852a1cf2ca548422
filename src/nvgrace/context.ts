/**
 * What the nvgrace-gpu variant keeps for one emulated host: each GPU's device memory (one
 * sparse memfd of `nvidia,gpu-mem-size` bytes, kept for the life of the process so that its
 * contents survive a client closing the device, as the memory itself does) and what each
 * probe found, for the doctor and devices.json. No module-level state.
 */
import { createMemfdMemory, type SharedMemory, type SharedMemoryFactory } from '../vfio/index.ts';
import type { GraceMemoryLayout } from './memory-layout.ts';

/** What nvgrace_gpu_probe() made of a function. */
export type NvgraceProbeOutcome =
  /** nvgrace_gpu_pci_ops: the fake BARs over device memory. */
  | {
      readonly result: 'nvgrace';
      readonly layout: GraceMemoryLayout;
      readonly hasMigHwBug: boolean;
      readonly polls: number;
    }
  /** nvgrace_gpu_pci_core_ops: the memory properties failed, the device is plain vfio-pci. */
  | { readonly result: 'plain'; readonly errno: string; readonly reason: string }
  /** The probe failed: no vfio device. */
  | { readonly result: 'error'; readonly errno: string; readonly reason: string };

/**
 * The nvgrace-gpu variant's per-host state: each GPU's device memory (a SharedMemory from
 * `factory`, a memfd by default) and each function's probe outcome, by PCI address.
 */
export class NvgraceContext {
  readonly #memories = new Map<string, SharedMemory>();
  readonly #outcomes = new Map<string, NvgraceProbeOutcome>();

  constructor(private readonly factory: SharedMemoryFactory = createMemfdMemory) {}

  /** The device memory of GPU `name`, created with `size` bytes on first use. */
  deviceMemory(name: string, size: bigint): SharedMemory {
    let m = this.#memories.get(name);
    if (!m) {
      m = this.factory(`vfio-nvlink2:gpu-mem:${name}`, size);
      this.#memories.set(name, m);
    }
    return m;
  }

  /** The device memory of `name` if it was ever touched. */
  peekMemory(name: string): SharedMemory | undefined {
    return this.#memories.get(name);
  }

  record(name: string, outcome: NvgraceProbeOutcome): void {
    this.#outcomes.set(name, outcome);
  }

  outcome(name: string): NvgraceProbeOutcome | undefined {
    return this.#outcomes.get(name);
  }

  /** Closes every memfd (process shutdown). */
  closeAll(): void {
    for (const m of this.#memories.values()) m.close();
    this.#memories.clear();
  }
}
