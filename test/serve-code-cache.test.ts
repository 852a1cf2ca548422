/**
 * The bin runs `serve` from vfio-nvlink2-serve.cjs with the V8 code cache the build wrote
 * (src/cli/launcher.ts, scripts/code-cache.mjs; issue 8: restart to accepting). A cache that is
 * not this build's, not this node's, damaged, missing or unreadable is not used, and serve runs
 * all the same: the same table byte for byte, and a client's write read back. Which way the
 * launcher went is what VFIO_NVLINK2_DEBUG_CODE_CACHE=1 says on stderr. Each case runs on a
 * copy of the bin and the serve script in a package of its own (package.json, binding.gyp and
 * the built addon beside them), so that no case touches the cache other tests' serves use.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Script } from 'node:vm';
import { VfioUserClient } from '../src/vfio-user/index.ts';
import { CLI, cliArgs, ROOT } from './support/cli.ts';
import { GPU } from './support/serve-process.ts';
import { within } from './support/wait.ts';

const GPU_RAM = 9;
const DATA = new Uint8Array(4096).map((_, i) => (i * 13 + 5) & 0xff);

const root = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-code-cache-'));
const pkg = join(root, 'pkg');
const cli = join(pkg, 'dist/src/cli');
const bin = join(cli, 'vfio-nvlink2.cjs');
const cachePath = join(cli, 'vfio-nvlink2-serve.cache');
const socketDir = join(root, 'sock');
/** The cache the build wrote for the script now in dist/. */
let good: Buffer;

interface Run {
  /** What the launcher said about the cache (its stderr line, without the prefix). */
  cache: string;
  stdout: string;
  readBack: Uint8Array;
}

/** `serve --json` from the copy with `cache` in place (a directory for 'dir', none for null). */
async function serveOnce(cache: Buffer | 'dir' | 'fifo' | 'zero' | null): Promise<Run> {
  rmSync(cachePath, { recursive: true, force: true });
  if (cache === 'dir') mkdirSync(cachePath);
  else if (cache === 'fifo')
    assert.equal(spawnSync('mkfifo', [cachePath], { timeout: 60_000 }).status, 0);
  else if (cache === 'zero') symlinkSync('/dev/zero', cachePath);
  else if (cache) writeFileSync(cachePath, cache);
  const args = cliArgs('serve', '--json', '--quiet', '--socket-dir', socketDir).map((a) =>
    a === CLI ? bin : a,
  );
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VFIO_NVLINK2_DEBUG_CODE_CACHE: '1' },
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await within(
      'serve --json to print its table',
      new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (stdout.endsWith(']\n')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${stderr}`)));
      }),
    );
    const client = await VfioUserClient.connect(join(socketDir, `${GPU}.sock`));
    let readBack: Uint8Array;
    try {
      await client.regionWrite(GPU_RAM, 0x3000n, DATA);
      readBack = await client.regionRead(GPU_RAM, 0x3000n, DATA.length);
    } finally {
      client.close();
    }
    const line = /^vfio-nvlink2: code cache: (.*)$/m.exec(stderr);
    return { cache: line?.[1] ?? `(no line) ${stderr}`, stdout, readBack };
  } finally {
    child.kill('SIGTERM');
    await within('serve to exit on SIGTERM', exited);
  }
}

/** `good` with a key line field or its payload changed; `redigest` keeps the digest right. */
function edited(change: {
  field?: [index: number, value: string];
  data?: (payload: Buffer) => Buffer;
  redigest?: boolean;
}): Buffer {
  const end = good.indexOf(10);
  const fields = good.toString('latin1', 0, end).split(' ');
  const data = change.data
    ? change.data(Buffer.from(good.subarray(end + 1)))
    : good.subarray(end + 1);
  if (change.field) fields[change.field[0]] = change.field[1];
  if (change.redigest) fields[3] = createHash('sha256').update(data).digest('hex');
  return Buffer.concat([Buffer.from(`${fields.join(' ')}\n`), data]);
}

function flipped(payload: Buffer): Buffer {
  payload[payload.length >> 1]! ^= 0x40;
  return payload;
}

let reference: Run;

before(async () => {
  cliArgs(); // dist/ built and current
  const made = spawnSync(process.execPath, [join(ROOT, 'scripts/code-cache.mjs')], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(made.status, 0, made.stderr);
  good = readFileSync(join(ROOT, 'dist/src/cli/vfio-nvlink2-serve.cache'));
  mkdirSync(cli, { recursive: true });
  for (const f of ['package.json', 'binding.gyp']) copyFileSync(join(ROOT, f), join(pkg, f));
  symlinkSync(join(ROOT, 'build'), join(pkg, 'build'));
  for (const f of ['vfio-nvlink2.cjs', 'vfio-nvlink2-serve.cjs'])
    copyFileSync(join(ROOT, 'dist/src/cli', f), join(cli, f));
  reference = await serveOnce(good);
});

after(() => rmSync(root, { recursive: true, force: true }));

describe("serve's code cache", () => {
  it('is used when it is the build’s own, and serve serves', () => {
    assert.equal(reference.cache, `used: ${cachePath}`);
    assert.deepEqual(reference.readBack, DATA);
    assert.ok(reference.stdout.includes(`${GPU}.sock`), reference.stdout);
  });

  // V8 copies cached data that is not pointer-aligned (AlignedCachedData): the key line is padded.
  it('starts its data 8-byte aligned, and is used without the padding too', async () => {
    assert.equal((good.indexOf(10) + 1) % 8, 0);
    const end = good.indexOf(10);
    const unpadded = Buffer.concat([
      Buffer.from(`${good.toString('latin1', 0, end).trimEnd()}\n`),
      good.subarray(end + 1),
    ]);
    const run = await serveOnce(unpadded);
    assert.equal(run.cache, `used: ${cachePath}`);
    assert.equal(run.stdout, reference.stdout);
  });

  const cases: [string, () => Buffer | 'dir' | 'fifo' | 'zero' | null, RegExp][] = [
    [
      'of another build',
      () => edited({ field: [0, '0'.repeat(32)], redigest: true }),
      /is of another build or node$/,
    ],
    [
      'of another node',
      () => edited({ field: [1, 'v20.0.0'], redigest: true }),
      /is of another build or node$/,
    ],
    // V8 on node 20 takes both of these without rejecting them: the launcher's digest refuses.
    ['with a flipped byte', () => edited({ data: flipped }), /is damaged$/],
    ['cut short', () => edited({ data: (d) => d.subarray(0, d.length >> 1) }), /is damaged$/],
    [
      'without its key line',
      () => good.subarray(good.indexOf(10) + 1),
      /is of another build or node$/,
    ],
    [
      "of another script, with this build's key",
      () =>
        edited({
          data: () => {
            const other = new Script('(function () { return 1; })', { filename: 'other.cjs' });
            other.runInThisContext();
            return other.createCachedData();
          },
          redigest: true,
        }),
      /^rejected by V8: /,
    ],
    ['missing', () => null, /^not read: .*\(ENOENT\)$/],
    ['unreadable (a directory)', () => 'dir', /^not read: .*\(not a regular file\)$/],
    // Each used to hang the launcher for ever: open(2) of a FIFO waits for a writer, and
    // /dev/zero reads without end.
    ['a FIFO', () => 'fifo', /^not read: .*\(not a regular file\)$/],
    ['a link to /dev/zero', () => 'zero', /^not read: .*\(not a regular file\)$/],
  ];
  for (const [name, cache, said] of cases)
    it(`${name} is not used, and serve serves the same`, async () => {
      const run = await serveOnce(cache());
      assert.match(run.cache, said);
      assert.equal(run.stdout, reference.stdout, 'the same table, byte for byte');
      assert.deepEqual(run.readBack, DATA);
    });

  // The launcher checks the cache with the addon's SHA-256 (no node:crypto at start-up); without
  // an addon it still checks it, with node:crypto's, and serve then says what is missing.
  it('is still checked, by node:crypto, when the addon cannot be loaded', () => {
    rmSync(cachePath, { recursive: true, force: true });
    writeFileSync(cachePath, good);
    const missing = join(root, 'no-such-addon.node');
    const run = spawnSync(process.execPath, [bin, 'serve', '--quiet', '--socket-dir', socketDir], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, VFIO_NVLINK2_DEBUG_CODE_CACHE: '1', VFIO_NVLINK2_ADDON: missing },
    });
    const said = run.stderr.split('\n');
    assert.equal(
      said[0],
      `vfio-nvlink2: code cache: digest by node:crypto, not the addon at ${missing} (ENOENT)`,
    );
    assert.equal(said[1], `vfio-nvlink2: code cache: used: ${cachePath}`);
    assert.match(
      run.stderr,
      /VFIO_NVLINK2_ADDON names .*no-such-addon\.node, which does not exist/,
    );
    assert.notEqual(run.status, 0);
    // And a damaged cache is refused the same way.
    writeFileSync(cachePath, edited({ data: flipped }));
    const damaged = spawnSync(
      process.execPath,
      [bin, 'serve', '--quiet', '--socket-dir', socketDir],
      {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, VFIO_NVLINK2_DEBUG_CODE_CACHE: '1', VFIO_NVLINK2_ADDON: missing },
      },
    );
    assert.equal(
      damaged.stderr.split('\n')[1],
      `vfio-nvlink2: code cache: not used: ${cachePath} is damaged`,
    );
  });

  it('VFIO_NVLINK2_CODE_CACHE=off runs without it', async () => {
    process.env.VFIO_NVLINK2_CODE_CACHE = 'off';
    try {
      const run = await serveOnce(good);
      assert.match(run.cache, /^off /);
      assert.equal(run.stdout, reference.stdout);
    } finally {
      delete process.env.VFIO_NVLINK2_CODE_CACHE;
    }
  });
});
