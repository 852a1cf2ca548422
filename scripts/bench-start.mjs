#!/usr/bin/env node
// The start-up and restart figures alone (issue 8: `serve --state-dir` restarted after kill -9
// accepts on every socket within 300 ms), measured by the bench's own functions
// (src/bench/serve-startup.ts, serve-restart.ts) on a compiled dist/, without the rest of
// `npm run bench`. Prints each run, the medians, the bare-node floor measured beside each run,
// and the load average before and after (2 CPUs shared: compare figures taken at the same load).
//
// Usage: npm run build && node scripts/bench-start.mjs [RUNS] [PACKAGE_ROOT]
//   RUNS          runs of each figure (default 7)
//   PACKAGE_ROOT  the checkout whose dist/ is measured (default this one), e.g. another
//                 worktree built from an older commit, for a before/after at the same load
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const runs = Number(process.argv[2] ?? 7);
if (!Number.isInteger(runs) || runs < 1) {
  console.error('usage: node scripts/bench-start.mjs [RUNS] [PACKAGE_ROOT]');
  process.exit(2);
}
const root = resolve(process.argv[3] ?? new URL('..', import.meta.url).pathname);
const bench = (name) => import(pathToFileURL(`${root}/dist/src/bench/${name}.js`).href);
const { measureServeStartup } = await bench('serve-startup');
const { measureServeRestart } = await bench('serve-restart');

const plan = { runs, settleMs: 50, timeoutMs: 30_000 };
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const list = (xs) => xs.map((x) => x.toFixed(0)).join(' ');
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

console.log(`${root}: ${runs} runs each, load ${load()}`);
const startup = await measureServeStartup(plan, () => {});
const sMs = startup.map((r) => r.ms);
console.log(
  `serve start-up          ms: ${list(sMs)}  median ${median(sMs).toFixed(0)}  (bare node median ${median(startup.map((r) => r.bareNodeMs)).toFixed(0)})`,
);
const restart = await measureServeRestart(plan, 5, () => {});
console.log(
  `serve --state-dir restart ms: ${list(restart.restartMs)}  median ${median(restart.restartMs).toFixed(0)}  (bare node median ${median(restart.bareNodeMs).toFixed(0)}, ${restart.sockets} sockets)`,
);
console.log(`load ${load()}`);
