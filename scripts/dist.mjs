// Keeps dist/ no older than its sources: an incremental `tsc -p tsconfig.test.json` (every
// .ts of src/, test/, bench/ and scripts/, compiled once to dist/ with the declarations the
// package ships; dist/.tsbuildinfo-test), run only when a source is newer than the last build,
// so a fresh dist costs a few stat calls. The tests run compiled (`dist/test/x.test.js` under
// plain node, no TypeScript compiler loaded per file) and the CLI tests spawn the command as
// it ships, `dist/src/cli/vfio-nvlink2.cjs` (scripts/bundle-cli.mjs: esbuild's bundle of
// src/cli/main.ts, rebuilt when src/ is newer than it, then serve's code cache,
// scripts/code-cache.mjs; tsc's own main.js beside it is left alone, so neither build
// overwrites the other). Files the tests find beside their source (fixtures, Python peers:
// every file under src/, test/ and scripts/ that is not TypeScript) are linked into dist/ at the same
// place, so `new URL('./fixtures/x', import.meta.url)` finds them from either tree. tsc's
// outputs whose source is gone (a module moved or deleted) are removed after each build and
// once per scripts/run-tests.mjs run (pruneDist), so nothing stale is imported or packed.
// Used by scripts/run-tests.mjs before the tests and by test/support/cli.ts when a test file
// runs on its own.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const ROOT = new URL('../', import.meta.url).pathname;
const DIST = join(ROOT, 'dist');
const BUILD_INFO = join(DIST, '.tsbuildinfo-test');
const CONFIG = 'tsconfig.test.json';
/** The CLI bundle (scripts/bundle-cli.mjs), the package's bin. */
const BUNDLE = join(DIST, 'src', 'cli', 'vfio-nvlink2.cjs');
/** The folders compiled into dist/ (tsconfig.json's include). */
const SOURCES = ['src', 'test', 'bench', 'scripts'];
/** The folders whose other files (fixtures, .mjs scripts) the compiled tests look for beside themselves. */
const MIRRORED = ['src', 'test', 'scripts'];

/** Newest modification time (ms) of the .ts files under `dir`. */
function newest(dir) {
  let t = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return t;
  }
  for (const d of entries) {
    const path = join(dir, d.name);
    if (d.isDirectory()) t = Math.max(t, newest(path));
    else if (d.name.endsWith('.ts')) t = Math.max(t, statSync(path).mtimeMs);
  }
  return t;
}

/** Whether `output` is missing or older than any of `folders`' .ts files or the configs. */
function olderThanSources(output, folders) {
  let built;
  try {
    built = statSync(output).mtimeMs;
  } catch {
    return true;
  }
  const configs = ['tsconfig.json', CONFIG, 'package.json'].map(
    (name) => statSync(join(ROOT, name)).mtimeMs,
  );
  return Math.max(...folders.map((s) => newest(join(ROOT, s))), ...configs) > built;
}

/**
 * Whether dist/ may be older than the sources (the compiled folders, tsconfig files, package.json),
 * or a `tsc -p tsconfig.test.json --noEmit` since the last build left files it did not emit: it
 * writes the build info too (newer than the sources), listing them as pending emit.
 */
export function distStale() {
  return olderThanSources(BUILD_INFO, SOURCES) || pendingEmit(BUILD_INFO);
}

/**
 * Whether the build info at `path` lists files type-checked but not emitted (TypeScript's own
 * key); true when it cannot be read.
 */
export function pendingEmit(path) {
  try {
    const info = JSON.parse(readFileSync(path, 'utf8'));
    return Array.isArray(info.affectedFilesPendingEmit) && info.affectedFilesPendingEmit.length > 0;
  } catch {
    return true;
  }
}

/** What tsc writes for a source `x.ts`: x.js, x.js.map, x.d.ts, x.d.ts.map. */
const TSC_OUTPUT = /\.(js|js\.map|d\.ts|d\.ts\.map)$/;
/** What scripts/bundle-cli.mjs writes beside tsc's files in dist/src/cli: no source of its own. */
const BUNDLE_OUTPUT = /^(vfio-nvlink2(-[a-z]+)?|bundle-.*)\.js(\.map)?$/;

/**
 * Removes tsc's outputs under dist/ (of the compiled folders, or `dir` under it) whose source is
 * gone: tsc never does, so a module moved or deleted would live on there, still importable and
 * shipped by `npm pack` (`dist/src/**`). Linked files (the mirror of non-TypeScript files) and
 * the CLI bundle are left alone.
 * @returns the removed paths.
 */
export function pruneDist(dirs = SOURCES.map((s) => join(DIST, s))) {
  const removed = [];
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of entries) {
      const path = join(dir, d.name);
      if (d.isDirectory()) walk(path);
      if (!d.isFile() || !TSC_OUTPUT.test(d.name)) continue;
      if (dir === dirname(BUNDLE) && BUNDLE_OUTPUT.test(d.name)) continue;
      const source = join(ROOT, relative(DIST, path)).replace(TSC_OUTPUT, '.ts');
      if (existsSync(source)) continue;
      rmSync(path, { force: true });
      removed.push(path);
    }
  };
  for (const dir of dirs) walk(dir);
  return removed;
}

/** Links every file under `dir` that is not TypeScript into dist/ at the same relative place. */
function mirror(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const d of entries) {
    const path = join(dir, d.name);
    if (d.isDirectory()) {
      mirror(path);
      continue;
    }
    if (d.name.endsWith('.ts')) continue;
    const target = join(DIST, relative(ROOT, path));
    try {
      lstatSync(target);
      continue; // linked already (or a file of the build's own: left alone)
    } catch {}
    mkdirSync(dirname(target), { recursive: true });
    symlinkSync(relative(dirname(target), path), target);
  }
}

/**
 * Rebuilds dist/ if it may be stale, then links the tests' other files into it. A build with
 * type errors still emits and is used (its diagnostics went to `stdio`; `npm test`'s own tsc
 * step fails on them): a test file runs while another one is being edited.
 * Then the CLI bundle, when src/ is newer than it.
 * @throws Error naming the command when tsc emitted nothing or esbuild failed.
 */
export function ensureDist(stdio = 'inherit') {
  if (distStale()) {
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, CONFIG)], {
      stdio,
      encoding: 'utf8',
    });
    // tsc: 0 clean, 2 errors but emitted, 1 errors and nothing emitted.
    if (r.status !== 0 && r.status !== 2) {
      const output = typeof r.stdout === 'string' ? `\n${r.stdout}` : '';
      throw new Error(`\`tsc -p ${CONFIG}\` failed (exit ${r.status}); dist/ is stale${output}`);
    }
    // tsc leaves the build info alone when no output changed: mark dist as checked now.
    const now = new Date();
    utimesSync(BUILD_INFO, now, now);
    pruneDist();
  }
  if (olderThanSources(BUNDLE, ['src'])) {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'bundle-cli.mjs')], {
      stdio,
      encoding: 'utf8',
    });
    if (r.status !== 0) {
      const output = typeof r.stderr === 'string' ? `\n${r.stderr}` : '';
      throw new Error(
        `\`node scripts/bundle-cli.mjs\` failed (exit ${r.status}); ${BUNDLE} is stale${output}`,
      );
    }
    // serve's code cache for the new script (none, or a failure, only makes serve slower).
    spawnSync(process.execPath, [join(ROOT, 'scripts', 'code-cache.mjs')], {
      stdio,
      encoding: 'utf8',
    });
  }
  for (const dir of MIRRORED) mirror(join(ROOT, dir));
}

/**
 * The compiled file of a TypeScript source of the compiled folders (`test/x.test.ts`, relative
 * to the working directory or absolute → `<root>/dist/test/x.test.js`); any other path as given.
 */
export function compiledPath(path) {
  const rel = relative(ROOT, resolve(path));
  const top = rel.split(sep)[0];
  if (!SOURCES.includes(top) || !rel.endsWith('.ts')) return path;
  return join(DIST, rel.replace(/\.ts$/, '.js'));
}

/** The source of a compiled file (`<root>/dist/test/x.test.js` → `<root>/test/x.test.ts`); any other path as given. */
export function sourcePath(path) {
  const rel = relative(DIST, resolve(path));
  const top = rel.split(sep)[0];
  if (!SOURCES.includes(top) || !rel.endsWith('.js')) return path;
  return join(ROOT, rel.replace(/\.js$/, '.ts'));
}

// `node scripts/dist.mjs prune`: pruneDist() from the command line, for `npm run build` and
// `prepare`, so that a package packed from a checkout built before a module moved ships no stale file.
if (process.argv[1] === new URL(import.meta.url).pathname && process.argv[2] === 'prune') {
  for (const path of pruneDist()) console.log(`removed ${relative(ROOT, path)}`);
}
