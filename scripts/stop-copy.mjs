// The bench's stop-copy figures alone (src/bench/migration-figures.ts measureMigration with no
// downtime runs), from the compiled dist/: each run into a fresh destination serve, the last
// once more into the destination holding the pages, the floor before each and after the last.
// Usage: node scripts/stop-copy.mjs [RUNS] [MiB] [CHECKOUT]   (after npm run build there)
// CHECKOUT: another built checkout to measure (an A/B against it); default this one.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const runs = Number(process.argv[2] ?? 3);
const mib = Number(process.argv[3] ?? 1024);
const root = process.argv[4] ?? new URL('..', import.meta.url).pathname;
const { measureMigration } = await import(
  pathToFileURL(resolve(root, 'dist/src/bench/migration-figures.js')).href
);
const plan = {
  downtimePopulate: 0,
  hotPages: 0,
  downtimeRuns: 0,
  throughputPopulate: mib * 1024 * 1024,
  throughputRuns: runs,
  memoryBudget: '4G',
};
const r = await measureMigration(plan, (m) => process.stderr.write(`${m}\n`));
const rate = (s) => Math.round(s.stopCopyBytes / 1e6 / (s.stopCopyMs / 1000));
const floor = (ms) => Math.round(plan.throughputPopulate / 1e6 / (ms / 1000));
console.log(
  JSON.stringify({
    freshMBps: r.stopCopy.map(rate),
    warmMBps: r.stopCopyWarm.map(rate),
    floorMBps: r.floorMs.map(floor),
    reportedMiB: r.reportedKib === null ? null : Math.round(r.reportedKib / 1024),
  }),
);
