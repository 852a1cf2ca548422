/**
 * The bin with a broken install: no native addon at all, or one built from older sources than
 * src/native/addon.ts describes (`git pull && npm run build` leaves the old one: the build
 * never rebuilds it). Each run is the real CLI in a second process with VFIO_NVLINK2_ADDON
 * naming the file. A command that needs the addon says so in one line, code ADDON, exit 1
 * (never INTERNAL, a stack, or another command's code around it); `--help`, `--version` and
 * `dt` run without it.
 *
 * The out-of-date addon is the real one's sources without native/hash.c (as at 66dfeba^, before
 * sha256Hex and randomHex), linked by cc in a few seconds, offline, against node's headers.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, cliArgs, HANG_GUARD_MS, ROOT } from './support/cli.ts';

const root = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-cli-addon-'));
const missing = join(root, 'no-such-addon.node');
const outdated = join(root, 'old', 'vfio_nvlink2_native.node');
const TREE = join(ROOT, 'test/fixtures/fdt/witherspoon-npu.dts');
/** node's own headers (node_api.h), where node-gyp --nodedir=/usr finds them. */
const NODE_HEADERS = join(dirname(dirname(process.execPath)), 'include', 'node');

before(() => {
  const stub = join(root, 'no-hash.c');
  writeFileSync(
    stub,
    '#include <node_api.h>\nnapi_status nv_init_hash(napi_env env, napi_value exports) { return napi_ok; }\n',
  );
  const sources = readdirSync(join(ROOT, 'native'))
    .filter((f) => f.endsWith('.c') && f !== 'hash.c' && f !== 'echo-floor.c')
    .map((f) => join(ROOT, 'native', f));
  rmSync(dirname(outdated), { recursive: true, force: true });
  spawnSync('mkdir', ['-p', dirname(outdated)]);
  const cc = spawnSync(
    'cc',
    [
      '-std=gnu11',
      '-shared',
      '-fPIC',
      '-O0',
      '-DNAPI_VERSION=8',
      `-I${NODE_HEADERS}`,
      `-I${join(ROOT, 'native')}`,
      ...sources,
      stub,
      '-lrt',
      '-o',
      outdated,
    ],
    { encoding: 'utf8', timeout: 300_000 },
  );
  assert.equal(cc.status, 0, `cc: ${cc.stderr}`);
  assert.ok(existsSync(outdated));
});

after(() => rmSync(root, { recursive: true, force: true }));

/**
 * The bin run on `args` with `env` added, to its end (killed as hung after HANG_GUARD_MS). Not
 * through runCli: its die-with-parent preload needs the addon these runs are without.
 */
function run(args: readonly string[], env: Record<string, string>) {
  cliArgs(); // dist/ built and current
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: HANG_GUARD_MS,
    killSignal: 'SIGKILL',
  });
  assert.equal(r.error, undefined, `${args.join(' ')}: killed as hung`);
  return r;
}

function withAddon(addon: string, ...args: string[]) {
  return run(args, { VFIO_NVLINK2_ADDON: addon });
}

const NEEDS_ADDON: [command: string, args: string[]][] = [
  ['serve', ['serve', '--socket-dir', join(root, 'sock'), '--state-dir', join(root, 'state')]],
  ['inspect', ['inspect', '--dt', TREE]],
  ['bench', ['bench']],
  ['fuzz', ['fuzz']],
];

describe('the CLI without its native addon', () => {
  for (const [command, args] of NEEDS_ADDON)
    it(`${command} says ADDON in one line, exit 1`, () => {
      const r = withAddon(missing, ...args);
      assert.equal(
        r.stderr,
        `vfio-nvlink2: ${command}: ADDON: VFIO_NVLINK2_ADDON names ${missing}, which does not exist\n`,
      );
      assert.equal(r.status, 1);
    });

  it('--help, --version, dt show and serve --help run', () => {
    for (const args of [['--help'], ['--version'], ['dt', 'show', TREE], ['serve', '--help']]) {
      const r = withAddon(missing, ...args);
      assert.equal(r.stderr, '', args.join(' '));
      assert.equal(r.status, 0, args.join(' '));
      assert.ok(r.stdout.length > 0, args.join(' '));
    }
  });
});

describe('the CLI with an addon of older sources (no sha256Hex)', () => {
  for (const [command, args] of NEEDS_ADDON)
    it(`${command} says ADDON in one line, exit 1`, () => {
      const r = withAddon(outdated, ...args);
      assert.equal(
        r.stderr,
        `vfio-nvlink2: ${command}: ADDON: the native addon at ${outdated} is out of date (no sha256Hex); run \`npm install\` to rebuild it\n`,
      );
      assert.equal(r.status, 1);
    });

  it('the launcher uses none of it, and says why', () => {
    const r = run(['serve', '--socket-dir', join(root, 'sock')], {
      VFIO_NVLINK2_ADDON: outdated,
      VFIO_NVLINK2_DEBUG_CODE_CACHE: '1',
    });
    assert.equal(
      r.stderr.split('\n')[0],
      `vfio-nvlink2: code cache: digest by node:crypto, not the addon at ${outdated} (out of date: no sha256Hex)`,
    );
    assert.match(r.stderr, /\nvfio-nvlink2: serve: ADDON: the native addon at .* is out of date/);
    assert.equal(r.status, 1);
  });

  it('dt show runs', () => {
    const r = withAddon(outdated, 'dt', 'show', TREE);
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
  });
});
