/**
 * Guest partitions of serve, the PartitionPolicy its vfio-user servers are given: every
 * connection made by one peer process (SO_PEERCRED pid), across all devices this server process
 * serves, belongs to one partition with one LPID, the way all VFIO devices of one QEMU share
 * one KVM and hence one LPID. The LPID comes from KVM's
 * allocator (src/machine/lpid-allocator.ts, kvmppc_alloc_lpid) when the partition's first
 * device is opened and goes back to it when its last device is released.
 *
 * `pinnedLpid` (serve --lpid N) gives every partition LPID N instead: the allocator marks N
 * used while any partition holds it. Partitions of different processes then share an LPID,
 * which a real host would never do; it is there to reproduce a given firmware table.
 */
import type { PartitionPolicy } from '../vfio-user/index.ts';
import type { LpidAllocator } from './lpid-allocator.ts';

/**
 * One guest partition as `state.json` shows it: the client's pid, its LPID and the devices it has
 * open.
 */
export interface PartitionView {
  readonly pid: number;
  readonly lpid: number;
  /** Devices (PCI names) the partition has open, sorted. */
  readonly devices: readonly string[];
}

interface PartitionState {
  readonly pid: number;
  readonly lpid: number;
  readonly devices: Set<string>;
}

/** serve's PartitionPolicy: one partition, and one LPID, per peer process. */
export class PartitionRegistry implements PartitionPolicy {
  readonly #partitions = new Map<number, PartitionState>();

  constructor(
    private readonly lpids: LpidAllocator,
    private readonly pinnedLpid?: number,
  ) {}

  /**
   * Adds `device` to the partition of `pid`, creating it (and allocating its LPID) first.
   * @returns the partition's LPID
   * @throws VfioError ENOMEM when no LPID is free
   */
  acquire(pid: number, device: string): number {
    let p = this.#partitions.get(pid);
    if (!p) {
      p = { pid, lpid: this.#allocate(), devices: new Set() };
      this.#partitions.set(pid, p);
    }
    p.devices.add(device);
    return p.lpid;
  }

  /** Removes `device` from the partition of `pid`; the last one frees the LPID. */
  release(pid: number, device: string): void {
    const p = this.#partitions.get(pid);
    if (!p) return;
    p.devices.delete(device);
    if (p.devices.size > 0) return;
    this.#partitions.delete(pid);
    const stillPinned = [...this.#partitions.values()].some((o) => o.lpid === p.lpid);
    if (!stillPinned) this.lpids.free(p.lpid);
  }

  #allocate(): number {
    if (this.pinnedLpid === undefined) return this.lpids.alloc();
    this.lpids.claim(this.pinnedLpid);
    return this.pinnedLpid;
  }

  /** Every partition, by pid. */
  list(): PartitionView[] {
    return [...this.#partitions.values()]
      .sort((a, b) => a.pid - b.pid)
      .map((p) => ({ pid: p.pid, lpid: p.lpid, devices: [...p.devices].sort() }));
  }
}
