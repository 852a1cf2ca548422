// Keeps dist/ (the compiled build the CLI tests spawn) no older than its sources: an
// incremental `tsc -p tsconfig.build.json` (tsconfig.build.json keeps dist/.tsbuildinfo), then
// the CLI bundle (scripts/bundle-cli.mjs), as `npm run build` does, run only when a source is
// newer than the last build, so a fresh dist costs a few stat calls.
// Used by scripts/run-tests.mjs before the tests and by test/support/cli.ts when a test file
// runs on its own.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../', import.meta.url).pathname;
const BUILD_INFO = join(ROOT, 'dist', '.tsbuildinfo');

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

/** Whether dist/ may be older than the sources (src/, tsconfig files, package.json). */
export function distStale() {
  let built;
  try {
    built = statSync(BUILD_INFO).mtimeMs;
  } catch {
    return true;
  }
  const configs = ['tsconfig.json', 'tsconfig.build.json', 'package.json'].map(
    (name) => statSync(join(ROOT, name)).mtimeMs,
  );
  return Math.max(newest(join(ROOT, 'src')), ...configs) > built;
}

/**
 * Rebuilds dist/ if it may be stale.
 * @throws Error naming the command when tsc fails (its diagnostics went to `stdio`).
 */
export function ensureDist(stdio = 'inherit') {
  if (!distStale()) return;
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], {
    stdio,
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    const output = typeof r.stdout === 'string' ? `\n${r.stdout}` : '';
    throw new Error(
      `\`tsc -p tsconfig.build.json\` failed (exit ${r.status}); dist/ is stale${output}`,
    );
  }
  const bundle = spawnSync(process.execPath, [join(ROOT, 'scripts', 'bundle-cli.mjs')], {
    stdio,
    encoding: 'utf8',
  });
  if (bundle.status !== 0)
    throw new Error(
      `\`node scripts/bundle-cli.mjs\` failed (exit ${bundle.status}); dist/src/cli is stale${typeof bundle.stderr === 'string' ? `\n${bundle.stderr}` : ''}`,
    );
  // tsc leaves the build info alone when no output changed: mark dist as checked now.
  const now = new Date();
  utimesSync(BUILD_INFO, now, now);
}
