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
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';

const ROOT = new URL('../', import.meta.url).pathname;
const OUT = join(ROOT, 'dist', 'src', 'cli');
const CHUNK = /^bundle-.*\.js(\.map)?$/;

/** The chunk files the last build wrote (names in OUT), for the build after it to keep. */
const LAST = join(OUT, '.bundle-chunks.json');

/**
 * Bundles the CLI into dist/src/cli. A command already running may still import a chunk of
 * the build it started from (one per command, loaded when it runs), so the chunks of the
 * previous build stay; older ones go once the new entry is in place.
 * @throws Error from esbuild when a source does not bundle (its messages went to stderr).
 */
export async function bundleCli() {
  let previous = [];
  try {
    previous = JSON.parse(readFileSync(LAST, 'utf8'));
  } catch {
    // no earlier build, or a list another tool wrote: keep nothing extra
  }
  mkdirSync(OUT, { recursive: true });
  const result = await build({
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
    logLevel: 'warning',
    write: false,
  });
  // Chunks first (new names never clash with a running build's), then the entry by rename, so
  // a command starting meanwhile loads either build whole.
  const files = [...result.outputFiles].sort(
    (a, b) => Number(CHUNK.test(basename(b.path))) - Number(CHUNK.test(basename(a.path))),
  );
  for (const f of files) {
    const tmp = `${f.path}.${process.pid}.tmp`;
    writeFileSync(tmp, f.contents);
    renameSync(tmp, f.path);
  }
  const written = files.map((f) => basename(f.path)).filter((name) => CHUNK.test(name));
  const keep = new Set([...written, ...(Array.isArray(previous) ? previous : [])]);
  for (const name of readdirSync(OUT))
    if (CHUNK.test(name) && !keep.has(name)) rmSync(join(OUT, name), { force: true });
  writeFileSync(LAST, JSON.stringify(written));
}

if (process.argv[1] === new URL(import.meta.url).pathname) await bundleCli();
