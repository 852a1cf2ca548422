#!/usr/bin/env node
/**
 * The package's bin as shipped (scripts/bundle-cli.mjs bundles this file alone into
 * dist/src/cli/vfio-nvlink2.js). `serve` (issue 8: a restart accepts on every socket within
 * 300 ms) runs from vfio-nvlink2-serve.cjs, the CLI as one CommonJS script compiled with V8's
 * code cache that the build wrote after a serve start-up (scripts/code-cache.mjs): node 20 has
 * no code cache for ES modules, and compiling the CLI was close to half of what serve adds to
 * a bare node start.
 * Every other command, `serve --http` (its page loads an ES-module-only package), and serve
 * when that script is missing run the ES module bundle, vfio-nvlink2-esm.js. A cache of
 * another build or node, damaged, missing or refused by V8 only costs the compile: the script
 * runs all the same. VFIO_NVLINK2_CODE_CACHE=off runs without the cache (to measure it);
 * VFIO_NVLINK2_DEBUG_CODE_CACHE=1 says on stderr whether the cache was used.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/** The serve script's first line: `// vfio-nvlink2 serve bundle <build id>`. */
const ID_PREFIX = '// vfio-nvlink2 serve bundle ';

/**
 * The key a cache file starts with (its first line, then a space and the SHA-256 of the rest):
 * the serve script's build id, then the node version and architecture it was made by. V8
 * checks its own version, flags and the source's length, but on node 20 not its checksum: a
 * damaged cache it takes could run other code than the script's, hence the digest.
 */
function cacheKey(buildId: string): string {
  return `${buildId} ${process.version} ${process.arch}`;
}

const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function debug(line: string): void {
  if (process.env.VFIO_NVLINK2_DEBUG_CODE_CACHE === '1')
    process.stderr.write(`vfio-nvlink2: code cache: ${line}\n`);
}

/** The cache's bytes for `buildId`, or why there are none. */
function readCache(path: string, buildId: string): Buffer | string {
  if (process.env.VFIO_NVLINK2_CODE_CACHE === 'off') return 'off (VFIO_NVLINK2_CODE_CACHE)';
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch (err) {
    return `not read: ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  const end = file.indexOf(10);
  const head = file.toString('latin1', 0, Math.max(end, 0));
  const key = head.slice(0, head.lastIndexOf(' '));
  if (end < 0 || key !== cacheKey(buildId)) return `not used: ${path} is of another build or node`;
  const data = file.subarray(end + 1);
  if (head.slice(key.length + 1) !== digest(data)) return `not used: ${path} is damaged`;
  return data;
}

/**
 * Runs the CLI from the CommonJS serve script with its code cache; false when there is no such
 * script (the caller runs the ES module bundle).
 */
function runServeScript(): boolean {
  const path = fileURLToPath(new URL('./vfio-nvlink2-serve.cjs', import.meta.url));
  let source: string;
  try {
    // ASCII only (scripts/bundle-cli.mjs escapes the rest), so latin1 reads it exactly, fast.
    source = readFileSync(path, 'latin1');
  } catch {
    return false;
  }
  const buildId = source.startsWith(ID_PREFIX)
    ? source.slice(ID_PREFIX.length, source.indexOf('\n'))
    : '';
  const cachePath = path.replace(/\.cjs$/, '.cache');
  const cache = readCache(cachePath, buildId);
  const script = new Script(source, {
    filename: path,
    ...(typeof cache === 'string' ? {} : { cachedData: cache }),
  });
  if (typeof cache === 'string') debug(cache);
  else if (script.cachedDataRejected) debug(`rejected by V8: ${cachePath}`);
  else debug(`used: ${cachePath}`);
  // scripts/code-cache.mjs: the cache, written once this serve has started and stopped, so
  // that it holds every function start-up compiled (V8 compiles most of them lazily).
  const out = process.env.VFIO_NVLINK2_CODE_CACHE_OUT;
  if (out)
    process.once('exit', () => {
      const data = script.createCachedData();
      writeFileSync(
        out,
        Buffer.concat([Buffer.from(`${cacheKey(buildId)} ${digest(data)}\n`), data]),
      );
    });
  const run = script.runInThisContext() as (
    exports: object,
    require: NodeJS.Require,
    module: { exports: object },
    filename: string,
    dirname: string,
  ) => void;
  const module = { exports: {} };
  run.call(module.exports, module.exports, createRequire(path), module, path, dirname(path));
  return true;
}

const argv = process.argv.slice(2);
const cached = argv[0] === 'serve' && !argv.some((a) => a.startsWith('--http'));
if (!(cached && runServeScript()))
  await import(new URL('./vfio-nvlink2-esm.js', import.meta.url).href);
