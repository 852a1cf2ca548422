/**
 * What a pseries guest saw of served GPUs and bridges as QEMU 4.1–8.1 built it: device facts
 * read over vfio-user, guest placement (vPHBs, NUMA nodes, addresses) and the guest tree.
 */
export { classifyDevice, type DeviceFacts } from './device-facts.ts';
export { formatPlacement, placementToJson } from './guest-report.ts';
export { buildGuestTree } from './guest-tree.ts';
export { GuestPlacementError, placeGuest, type VphbRequest } from './placement.ts';
export { readRemoteFacts } from './remote-facts.ts';
