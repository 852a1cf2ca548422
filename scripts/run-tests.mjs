#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with Node's own runner, streaming results as they
// come: the spec reporter for people, then TAP-style summary lines (`# tests N`, `# pass N`,
// `# fail N`...) a CI job can parse; `--tap FILE` also writes the full TAP stream to FILE.
// Node 20 expands no globs, so the files are listed here explicitly; finding none, or a run
// that executed no test, is a failure, not a green run.
//
// Before the tests, dist/ is brought up to date when a source is newer than its last build
// (an incremental `tsc -p tsconfig.test.json`, scripts/dist.mjs; nothing when dist is fresh).
// The tests run compiled: each FILE.test.ts named (or found) runs as its dist/…/FILE.test.js
// under plain node, so no file pays for loading a TypeScript compiler (tsx: ~1 s of CPU per
// file), and CLI tests spawn the bundled `dist/src/cli/vfio-nvlink2.cjs`. `--tsx` runs the sources
// under tsx instead (as does a .ts file outside src/, test/, bench/, scripts/).
//
// Bounds: `--timeout MS` bounds each test (default 240 s, above the 60 s of the bounded waits of
// test/support/wait.ts), from the watchdog preloaded into every file (scripts/test-watchdog.mjs):
// a test still running then stops its file with one line naming the file, the test and the bound
// (`run-tests: test "suite > name" in test/x.test.ts did not end within 240 s (per-test
// timeout); stopping this file`), repeated on this runner's stderr at the end. `--file-timeout MS`
// bounds each file (default 900 s, Node's --test-timeout): it also covers what the per-test
// bound cannot see, a hanging before/after hook and a test blocking the event loop.
//
// Usage: node scripts/run-tests.mjs [--tap FILE] [--timeout MS] [--file-timeout MS]
//          [--concurrency N] [--no-build] [--tsx] [FILE.test.ts ...]
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { compiledPath, ensureDist, pruneDist } from './dist.mjs';

const ROOT = new URL('../', import.meta.url).pathname;

function collect(dir, out) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

function usage(message) {
  console.error(`run-tests: ${message}`);
  console.error(
    'usage: node scripts/run-tests.mjs [--tap FILE] [--timeout MS] [--file-timeout MS] [--concurrency N] [--no-build] [--tsx] [FILE ...]',
  );
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      tap: { type: 'string' },
      timeout: { type: 'string' },
      'file-timeout': { type: 'string' },
      concurrency: { type: 'string' },
      'no-build': { type: 'boolean' },
      tsx: { type: 'boolean' },
    },
  });
} catch (e) {
  usage(e.message);
}
const { values, positionals } = parsed;
function positive(name, text, fallback) {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0)
    usage(`--${name} must be a positive integer, got ${text}`);
  return n;
}
// Both bounds catch hangs, not slowness: the slowest test takes about a minute and the slowest
// file a few on a loaded 2-CPU machine. Node 20 bounds each *file* by --test-timeout (Node 22
// also each test in it, by the same number: the watchdog's smaller bound ends a test first).
const testTimeout = positive('timeout', values.timeout, 240_000);
const fileTimeout = positive('file-timeout', values['file-timeout'], 900_000);
// One file per CPU and one more: files also wait (on child processes, sockets, python), and
// the extra one runs then.
const concurrency = positive(
  'concurrency',
  values.concurrency,
  Math.max(2, availableParallelism()) + 1,
);

const sources = positionals.length > 0 ? positionals : collect('test', collect('src', []));
if (sources.length === 0) usage('no *.test.ts files found under src/ or test/');
// Longest first (each file's time in the last run, dist/.test-durations.json; a file not seen
// yet counts as longest): the last files to start are then short ones, not a long one alone
// while the other CPUs idle.
const DURATIONS = join(ROOT, 'dist', '.test-durations.json');
let durations = {};
try {
  durations = JSON.parse(readFileSync(DURATIONS, 'utf8'));
} catch {
  // no earlier run
}
const took = (source) => durations[relative(ROOT, resolve(source))] ?? Number.POSITIVE_INFINITY;
const ordered = sources
  .map((source, i) => ({ source, i, ms: took(source) }))
  .sort((a, b) => b.ms - a.ms || a.i - b.i)
  .map((f) => f.source);
const files = values.tsx ? ordered : ordered.map(compiledPath);
const underTsx = files.some((f) => f.endsWith('.ts'));

if (!values['no-build']) {
  try {
    ensureDist();
    pruneDist();
  } catch (e) {
    console.error(`run-tests: ${e.message}; the tests run from dist/`);
    process.exit(1);
  }
}

const work = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-run-tests-'));
const summaryFile = join(work, 'summary.json');
const stoppedFile = join(work, 'stopped.log');
const reporters = [
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  `--test-reporter=${join(ROOT, 'scripts', 'test-summary-reporter.mjs')}`,
  '--test-reporter-destination=stdout',
];
if (values.tap) reporters.push('--test-reporter=tap', `--test-reporter-destination=${values.tap}`);

// NODE_TEST_CONTEXT would make a runner started from inside a test talk the runner protocol
// instead of reporting (node:internal/test_runner/harness).
const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
const childEnv = {
  ...inherited,
  VFIO_NVLINK2_TEST_SUMMARY: summaryFile,
  VFIO_NVLINK2_TEST_TIMEOUT_MS: String(testTimeout),
  VFIO_NVLINK2_TEST_STOPPED: stoppedFile,
};
// The child writes straight to our stdout (no buffering here, nothing lost to a slow reader);
// this process only sets its exit code and lets Node flush and exit on its own.
// Test files end with this process, also when this one is SIGKILLed (a CI job's
// `timeout -s KILL`): no orphaned suite runs on with its servers (src/bench/die-with-parent.ts,
// compiled; `node --test` passes it on to each file, which watches this pid, and the files'
// servers die with them). Without a build (--no-build on a fresh tree) it cannot.
const preload = join(ROOT, 'dist', 'src', 'bench', 'die-with-parent.js');
const dieWithParent = existsSync(preload)
  ? ['--import', `${pathToFileURL(preload).href}?parent=${process.pid}`]
  : [];
// Plain JS, so it loads also without a build and under --tsx.
const watchdog = ['--import', pathToFileURL(join(ROOT, 'scripts', 'test-watchdog.mjs')).href];
const child = spawn(
  process.execPath,
  [
    ...dieWithParent,
    ...watchdog,
    ...(underTsx ? ['--import', 'tsx'] : ['--enable-source-maps']),
    '--test',
    `--test-concurrency=${concurrency}`,
    `--test-timeout=${fileTimeout}`,
    ...reporters,
    ...files,
  ],
  {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: childEnv,
  },
);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', (code, signal) => {
  let counts = null;
  let summary = { empty: [] };
  try {
    summary = JSON.parse(readFileSync(summaryFile, 'utf8'));
    counts = summary.counts;
  } catch {
    // no summary: the runner died before its reporters finished
  }
  let stopped = [];
  try {
    stopped = readFileSync(stoppedFile, 'utf8').split('\n').filter(Boolean);
  } catch {
    // no test outlived its bound
  }
  rmSync(work, { recursive: true, force: true });
  const measured = Object.entries(summary.files ?? {});
  if (measured.length > 0) {
    for (const [file, ms] of measured) durations[relative(ROOT, resolve(file))] = ms;
    try {
      writeFileSync(DURATIONS, JSON.stringify(durations));
    } catch {
      // no dist/ to keep them in: the next run keeps the given order
    }
  }
  for (const line of stopped) console.error(line);
  if (signal !== null) {
    console.error(`run-tests: the test runner was killed by ${signal}`);
    process.exitCode = 1;
  } else if (!counts || !(counts.tests > 0)) {
    console.error('run-tests: the runner executed no test');
    process.exitCode = 1;
  } else if (summary.empty.length > 0) {
    for (const file of summary.empty) console.error(`run-tests: ${file} declares no test`);
    process.exitCode = 1;
  } else {
    process.exitCode = stopped.length > 0 ? 1 : (code ?? 1);
  }
});
