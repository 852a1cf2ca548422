// The `vfio-nvlink2` command as it ships: src/cli/main.ts and what it imports bundled by esbuild
// into dist/src/cli/vfio-nvlink2.js (the package's bin; tsc's main.js beside it stays, so
// neither build overwrites the other), one chunk per command, loaded when that command
// runs, and shared chunks (bundle-*.js). Node 20's ES module loader spent more time finding,
// reading and linking serve's ~200 files than serve spends starting (issue 8: restart to every
// socket accepting within 300 ms): one chunk per command, no resolution. The chunks sit beside
// vfio-nvlink2.js, in dist/src/cli/, so that every `import.meta.url`-relative path in them (package.json,
// the addon, the bench's entries) resolves as it does from tsc's cli/ files. tsc has
// type-checked and emitted the rest of dist/ (the library, the bench's child entries) before.
// Run by `npm run build` and by scripts/dist.mjs after tsc.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const ROOT = new URL('../', import.meta.url).pathname;
const OUT = join(ROOT, 'dist', 'src', 'cli');
const CHUNK = /^bundle-.*\.js(\.map)?$/;

/**
 * Bundles the CLI into dist/src/cli (the previous build's chunks removed first).
 * @throws Error from esbuild when a source does not bundle (its messages went to stderr).
 */
export async function bundleCli() {
  let old = [];
  try {
    old = readdirSync(OUT).filter((name) => CHUNK.test(name));
  } catch {
    // no dist/src/cli yet: nothing to remove
  }
  for (const name of old) rmSync(join(OUT, name), { force: true });
  await build({
    absWorkingDir: ROOT,
    entryPoints: { 'vfio-nvlink2': 'src/cli/main.ts' },
    outdir: OUT,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Dependencies stay in node_modules, loaded by node as before (Graphviz only by topology).
    packages: 'external',
    chunkNames: 'bundle-[name]-[hash]',
    sourcemap: true,
    allowOverwrite: true,
    logLevel: 'warning',
  });
}

if (process.argv[1] === new URL(import.meta.url).pathname) await bundleCli();
