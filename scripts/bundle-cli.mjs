// The `vfio-nvlink2` command as it ships: src/cli/main.ts and what it imports bundled by esbuild
// into dist/src/cli/vfio-nvlink2-esm.js (tsc's main.js beside it stays, so neither build
// overwrites the other), one chunk per command, loaded when that command runs, and shared
// chunks (bundle-*.js). The package's bin, dist/src/cli/vfio-nvlink2.cjs, is src/cli/launcher.ts
// alone (CommonJS; vfio-nvlink2.js the same as an ES module, for callers of that path): `serve` runs from vfio-nvlink2-serve.cjs, the same CLI as one CommonJS script (every
// other command left out) that the launcher compiles with the V8 code cache
// scripts/code-cache.mjs writes beside it (node 20 caches no ES module's code). Node 20's ES module loader spent more time finding,
// reading and linking serve's ~200 files than serve spends starting (issue 8: restart to every
// socket accepting within 300 ms): one chunk per command, no resolution. The chunks sit beside
// vfio-nvlink2.js, in dist/src/cli/, so that every `import.meta.url`-relative path in them (package.json,
// the addon, the bench's entries) resolves as it does from tsc's cli/ files. tsc has
// type-checked and emitted the rest of dist/ (the library, the bench's child entries) before.
// Run by `npm run build` and by scripts/dist.mjs after tsc.

import { createHash } from 'node:crypto';
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
    entryPoints: { 'vfio-nvlink2-esm': 'src/cli/main.ts' },
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
  // The serve script and the bin last: a launcher finds the builds it names in place.
  for (const [path, contents] of [
    [join(OUT, SERVE_SCRIPT), await serveScript()],
    [join(OUT, 'vfio-nvlink2.js'), await launcher('esm')],
    [join(OUT, BIN), await launcher('cjs')],
  ]) {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, contents, { mode: 0o755 });
    renameSync(tmp, path);
  }
  const written = files.map((f) => basename(f.path)).filter((name) => CHUNK.test(name));
  const keep = new Set([...written, ...(Array.isArray(previous) ? previous : [])]);
  for (const name of readdirSync(OUT))
    if (CHUNK.test(name) && !keep.has(name)) rmSync(join(OUT, name), { force: true });
  writeFileSync(LAST, JSON.stringify(written));
}

/** The CommonJS serve script (src/cli/launcher.ts runs it; scripts/code-cache.mjs caches it). */
export const SERVE_SCRIPT = 'vfio-nvlink2-serve.cjs';

/** Modules `serve` never loads, left out of the serve script (the launcher runs them as ES modules). */
const NOT_SERVE =
  /^\.\/(dt|inspect|guest|topology|trace|migrate|bench|fuzz)\.ts$|^\.\.\/live\/index\.ts$/;

/**
 * src/cli/main.ts as one CommonJS script without the commands other than serve (nor serve's
 * --http page), wrapped as node wraps a CommonJS module (the launcher calls the function) and
 * strict as the ES modules it comes from. Its first line names the build (a digest of the
 * rest), which the code cache's key repeats.
 * @throws Error when esbuild fails, or the script would still import().
 */
async function serveScript() {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ['src/cli/main.ts'],
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    charset: 'ascii',
    // Whitespace, comments and syntax minified (names kept, for stack traces): every byte of
    // the script is read and copied into a string at each start, and on this VM each fresh
    // page costs ~25 µs to fault in; 583 KB -> 360 KB took ~110 page faults off a restart.
    minifyWhitespace: true,
    minifySyntax: true,
    define: { 'import.meta.url': '__importMetaUrl' },
    banner: {
      js: '(function (exports, require, module, __filename, __dirname) {\n"use strict";\nconst __importMetaUrl = require("node:url").pathToFileURL(__filename).href;',
    },
    footer: { js: '})' },
    plugins: [
      {
        name: 'serve-only',
        setup(b) {
          b.onResolve({ filter: NOT_SERVE }, (args) =>
            args.kind === 'dynamic-import'
              ? { path: args.path, namespace: 'not-serve' }
              : undefined,
          );
          b.onLoad({ filter: /.*/, namespace: 'not-serve' }, (args) => ({
            contents: `throw new Error('${args.path} is not in the serve script (scripts/bundle-cli.mjs)');`,
            loader: 'js',
          }));
        },
      },
    ],
    logLevel: 'warning',
    write: false,
  });
  // esbuild escapes every other character beyond ASCII (charset) but keeps doc comments as
  // written: escaped there too, so that the launcher reads the script as latin1, not decoding.
  const body = result.outputFiles[0].text
    .replace(/^#!.*\n/, '') // main.ts's, valid only as a file's first line
    .replace(/[^\t\n\r -~]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
  if (/\bimport\(/.test(body)) throw new Error(`${SERVE_SCRIPT}: import() left in the script`);
  const id = createHash('sha256').update(body).digest('hex').slice(0, 32);
  return `// vfio-nvlink2 serve bundle ${id}\n${body}`;
}

/** The package's bin: src/cli/launcher.ts alone, as CommonJS (see the launcher's header). */
export const BIN = 'vfio-nvlink2.cjs';

/** src/cli/launcher.ts alone, as `format`: 'cjs' the bin, 'esm' vfio-nvlink2.js (that path's callers). */
async function launcher(format) {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ['src/cli/launcher.ts'],
    bundle: true,
    format,
    platform: 'node',
    target: 'node20',
    ...(format === 'cjs'
      ? {
          define: { 'import.meta.url': '__importMetaUrl' },
          banner: {
            js: 'const __importMetaUrl = require("node:url").pathToFileURL(__filename).href;',
          },
        }
      : {}),
    logLevel: 'warning',
    write: false,
  });
  return result.outputFiles[0].text;
}

if (process.argv[1] === new URL(import.meta.url).pathname) await bundleCli();
