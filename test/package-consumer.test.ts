/**
 * The package as another project gets it: `npm pack` (dist/ prebuilt, so without the prepare
 * script) into a temporary folder, its file list checked (the build and the addon's sources,
 * no tests or their helpers (dist/test/), fixtures, scripts or source maps), then installed into a fresh
 * project (`npm install --prefer-offline` from the tarball: node-gyp builds the addon there, the
 * two dependencies come from npm's cache or the registry). There, the library examples of
 * README.md "As a library" run from `import … from 'vfio-nvlink2'` and print what the README
 * shows, the installed bin runs, and tsc type-checks a TypeScript consumer against the shipped
 * declarations (a wrong use must fail, so the types are not `any`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureDist } from '../scripts/dist.mjs';
import { HANG_GUARD_MS, ROOT } from './support/cli.ts';

/** One `// NAME.mjs` example of README.md and the output shown after it. */
interface ReadmeExample {
  readonly name: string;
  readonly code: string;
  readonly output: string;
}

/** The examples of README.md "As a library": a js block, then `$ node NAME.mjs` and its output. */
function readmeExamples(): ReadmeExample[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## As a library'));
  const body = section.slice(0, section.indexOf('\n## ', 3));
  const found = body.matchAll(
    /```js\n\/\/ (\S+\.mjs)\n([\s\S]*?)```\n\n```console\n\$ node (\S+)\n([\s\S]*?)```/g,
  );
  return [...found].map((m) => {
    assert.equal(m[3], m[1], `README example ${m[1]} is followed by the output of ${m[3]}`);
    return { name: m[1] as string, code: m[2] as string, output: m[4] as string };
  });
}

function run(command: string, args: string[], cwd: string) {
  const r = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout: HANG_GUARD_MS,
    killSignal: 'SIGKILL',
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' },
  });
  const what = `${command} ${args.join(' ')} (in ${cwd})`;
  assert.equal(r.signal, null, `${what}: killed by ${r.signal} (hang guard)`);
  return { ...r, what };
}

function ok(command: string, args: string[], cwd: string): string {
  const r = run(command, args, cwd);
  assert.equal(r.status, 0, `${r.what}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A TypeScript consumer: real uses type-check, and a wrong one is an error (types are not any). */
const CONSUMER_TS = `import {
  createMachine,
  type DeviceDescription,
  defaultPlatformTree,
  describeDevice,
  parseFdt,
  serializeFdt,
  VfioUserClient,
} from 'vfio-nvlink2';

export async function regions(path: string): Promise<number> {
  const client = await VfioUserClient.connect(path);
  try {
    return (await client.getDeviceInfo()).numRegions;
  } finally {
    client.close();
  }
}

export function model(address: string): DeviceDescription['model'] {
  const machine = createMachine(parseFdt(serializeFdt(defaultPlatformTree())));
  const device = machine.device(address);
  device.open();
  const name: string = describeDevice(device).model;
  device.close();
  machine.dispose();
  return name;
}

// @ts-expect-error regionRead resolves to bytes, not a number
export const wrong: Promise<number> = new Promise<VfioUserClient>(() => {}).then((c) => c.regionRead(7, 0n, 4));
`;

describe('the packed package installed into another project', () => {
  let work: string;
  let consumer: string;
  let files: string[] = [];

  before(() => {
    ensureDist('pipe');
    work = mkdtempSync(join(tmpdir(), 'vn-pack-'));
    const packed = JSON.parse(
      ok('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT),
    ) as { filename: string; files: { path: string }[] }[];
    const tarball = join(work, packed[0]?.filename ?? '');
    files = (packed[0]?.files ?? []).map((f) => f.path);
    consumer = join(work, 'consumer');
    mkdirSync(consumer);
    writeFileSync(
      join(consumer, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }),
    );
    ok('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], consumer);
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships the build, its declarations and the addon sources, and nothing of the tests', () => {
    for (const needed of [
      'package.json',
      'README.md',
      'binding.gyp',
      'native/addon.c',
      'native/common.h',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/cli/vfio-nvlink2.js',
      'dist/src/cli/vfio-nvlink2.cjs',
    ])
      assert.ok(files.includes(needed), `${needed} is not in the tarball`);
    const unwanted = files.filter(
      (f) =>
        /\.test\.|\/testing\/|(^|\/)fixtures?\/|\.map$|\.tsbuildinfo$/.test(f) ||
        /^(test|scripts|src|docs|\.github)\/|^dist\/(?!src\/)/.test(f),
    );
    assert.deepEqual(unwanted, [], `in the tarball but not for consumers: ${unwanted.join(', ')}`);
  });

  it("builds the addon at install, in the consumer's node_modules", () => {
    const addon = join(
      consumer,
      'node_modules/vfio-nvlink2/build/Release/vfio_nvlink2_native.node',
    );
    assert.ok(existsSync(addon), `${addon} was not built`);
  });

  it("runs README.md's library examples with the output the README shows", () => {
    const examples = readmeExamples();
    assert.deepEqual(
      examples.map((e) => e.name),
      ['fdt.mjs', 'device.mjs', 'client.mjs', 'migrate.mjs'],
    );
    for (const example of examples) {
      writeFileSync(join(consumer, example.name), example.code);
      const stdout = ok(process.execPath, [example.name], consumer);
      assert.equal(stdout, example.output, `${example.name}: output differs from README.md`);
    }
  });

  it('installs the bin, which runs from the install', () => {
    const bin = join(consumer, 'node_modules/.bin/vfio-nvlink2');
    const out = ok(bin, ['inspect', '--dt', '0002:01:00.0', '--json'], consumer);
    assert.equal((JSON.parse(out) as { name: string }).name, '0002:01:00.0');
  });

  it('type-checks a TypeScript consumer against the shipped declarations', () => {
    writeFileSync(join(consumer, 'consumer.ts'), CONSUMER_TS);
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          // @types/node, which a TypeScript consumer of a Node library installs, from ours.
          typeRoots: [join(ROOT, 'node_modules/@types')],
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const r = run(process.execPath, [tsc, '-p', '.'], consumer);
    assert.equal(r.status, 0, `tsc found errors in the consumer:\n${r.stdout}${r.stderr}`);
  });
});
