/**
 * Which guest partition (LPID) a client's device joins when the client opens it: policy the
 * server is given, never makes (the server adds a transport, not behaviour). `serve` gives it
 * src/machine/partitions.ts (one partition per peer process, LPIDs from KVM's allocator); a
 * test may give a fixed LPID. The session calls `acquire` when VERSION opens the device (the
 * kernel's "KVM set" moment follows with the LPID) and `release` once it has closed it.
 */
export interface PartitionPolicy {
  /**
   * `device` (PCI name) is being opened by peer process `pid` (SO_PEERCRED).
   * @returns the LPID of the partition it joins
   * @throws VfioError to refuse the open (e.g. ENOMEM: no LPID free); the client gets its errno
   */
  acquire(pid: number, device: string): number;
  /** `device`, opened by `pid` through `acquire`, has been released (or its open failed). */
  release(pid: number, device: string): void;
}
