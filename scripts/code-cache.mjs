// The V8 code cache of `serve` (issue 8: a restarted `serve --state-dir` accepts on every socket
// within 300 ms): dist/src/cli/vfio-nvlink2-serve.cache, beside the serve script
// scripts/bundle-cli.mjs wrote. Made as the bench's restart happens: a serve on a fresh state
// directory whose GPU a client writes, killed with SIGKILL, then a serve restarted on that
// directory with VFIO_NVLINK2_CODE_CACHE_OUT, stopped with SIGTERM once it printed its table; its
// launcher (src/cli/launcher.ts) writes the cache as it exits, with every function start-up,
// restore and stop compiled. The cache's first line keys it to the script's build and this node;
// the launcher uses nothing else. Run after bundle-cli.mjs by `npm run build`, `prepare` and
// scripts/dist.mjs. A cache that cannot be made is no error: serve compiles without one.
import { spawn } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../', import.meta.url).pathname;
const CLI = join(ROOT, 'dist', 'src', 'cli');
const BIN = join(CLI, 'vfio-nvlink2.cjs');
/** The launcher's cache file (src/cli/launcher.ts). */
export const CACHE = join(CLI, 'vfio-nvlink2-serve.cache');
/** Bounds every wait: the machine may be shared. */
const TIMEOUT_MS = 60_000;

/** Every serve started, killed at the end whatever happened. */
const started = [];

/** Starts serve on `socketDir` and `stateDir`; resolves once it printed its table. */
function startServe(socketDir, stateDir, env) {
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--quiet', '--socket-dir', socketDir, '--state-dir', stateDir],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  started.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start within ${TIMEOUT_MS} ms:\n${out}`));
    }, TIMEOUT_MS);
    const seen = (d) => {
      out += d;
      if (/^ready: /m.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', (d) => (out += d));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code ?? signal}) before its table:\n${out}`));
    });
  });
}

function exited(child, signal) {
  const done = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  return done;
}

/**
 * Writes CACHE for the serve script now in dist/ (replacing it whole).
 * @throws Error when serve does not start or stop, or writes no cache.
 */
export async function writeCodeCache() {
  const { VfioUserClient } = await import(join(ROOT, 'dist/src/vfio-user/index.js'));
  const root = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-code-cache-'));
  const sockets = join(root, 'sockets');
  const state = join(root, 'state');
  const out = `${CACHE}.${process.pid}.tmp`;
  try {
    const first = await startServe(sockets, state, { VFIO_NVLINK2_CODE_CACHE: 'off' });
    const client = await VfioUserClient.connect(join(sockets, '0002:01:00.0.sock'));
    try {
      await client.regionWrite(9, 0n, new Uint8Array(4096).fill(0xa5)); // GPU RAM
      await client.regionWrite(7, 4n, new Uint8Array([0x06, 0x00])); // config space: command
      await exited(first, 'SIGKILL'); // with the client connected, as a crash leaves it
    } finally {
      client.close();
    }
    const again = await startServe(sockets, state, {
      VFIO_NVLINK2_CODE_CACHE: 'off',
      VFIO_NVLINK2_CODE_CACHE_OUT: out,
    });
    await exited(again, 'SIGTERM');
    renameSync(out, CACHE);
  } finally {
    for (const child of started)
      if (child.exitCode === null && child.signalCode === null) await exited(child, 'SIGKILL');
    rmSync(out, { force: true });
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  try {
    await writeCodeCache();
  } catch (err) {
    // Only slower without it: say so, and leave the build green.
    console.error(`scripts/code-cache.mjs: no code cache written: ${err.message}`);
  }
}
