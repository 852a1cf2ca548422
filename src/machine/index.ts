/** The emulated host assembled once for serve, inspect and doctor. */
export { type FunctionStatus, type ProbeResult, probeHost } from './function-status.ts';
export { HOST_LPID, LPID_RSVD, LpidAllocator } from './lpid-allocator.ts';
export { createMachine, Machine, type MachineOptions, type MemoryUsage } from './machine.ts';
export { PartitionRegistry, type PartitionView } from './partitions.ts';
