/** The wire fuzzer (`vfio-nvlink2 fuzz`): its run, plan, known faults and summary. */

export { descriptorCount } from './descriptor-count.ts';
export { isKnownFault, KNOWN_FAULTS, type KnownFault } from './known-faults.ts';
export type { PlannedConnection } from './plan.ts';
export {
  DEFAULT_LANES,
  DEFAULT_STALL_MS,
  type FuzzOptions,
  type FuzzReport,
  runFuzz,
} from './run-fuzz.ts';
export { renderSummary } from './summary.ts';
