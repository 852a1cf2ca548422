/** The benchmark (`vfio-nvlink2 bench`): its plans, run, figures, and child-process helpers. */
export { describePlacement } from './cpu-placement.ts';
export { BENCH_MISSED_EXIT, benchVerdict, renderTable } from './figures.ts';
export { cliEntry, type EntryOptions, nodeEntry, stopChild } from './node-entry.ts';
export { PAUSE_WAIT_MS, pauseProcesses } from './pause-processes.ts';
export type { BenchPlan } from './plan.ts';
export { FULL_PLAN, QUICK_PLAN } from './plan.ts';
export { runBench } from './run-bench.ts';
