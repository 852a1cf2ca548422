import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCliBytes, runCliBytesInProcess } from '../../test/support/cli.ts';
import { runDtc } from '../../test/support/fdt/dtc.ts';
import { parseFdt, readString, toDts } from '../fdt/index.ts';
import { defaultPlatformTree, generateWitherspoon } from '../platform/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-dt-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** `dt ...args` in this process (the real process path: the first test, spawned). */
function cli(
  ...args: string[]
): Promise<{ status: number | null; stdout: Buffer; stderr: string }> {
  return runCliBytesInProcess(['dt', ...args]);
}

/** `dt ...args` spawned as the bin: the exit status and the DTB through a real pipe. */
function spawned(...args: string[]): { status: number | null; stdout: Buffer; stderr: string } {
  return runCliBytes(['dt', ...args]);
}

test('dt generate: default DTB to a file and to stdout, accepted by dtc', async () => {
  const out = join(dir, 'default.dtb');
  const r = spawned('generate', '-o', out);
  assert.equal(r.status, 0, r.stderr);
  const blob = readFileSync(out);
  assert.ok(runDtc(blob, 'dtb', 'dts').ok);
  assert.equal(toDts(parseFdt(blob)), toDts(defaultPlatformTree()));
  const piped = spawned('generate');
  assert.equal(piped.status, 0, piped.stderr);
  assert.deepEqual(piped.stdout, blob);
  const inProcess = await cli('generate');
  assert.equal(inProcess.status, 0, inProcess.stderr);
  assert.deepEqual(inProcess.stdout, blob);
});

test('dt generate --dts with variant flags and an omit fault', async () => {
  const r = await cli(
    'generate',
    '--gpus',
    '4',
    '--gpu-ram',
    '32',
    '--memory-map',
    '4t-up',
    '--link-speed',
    '0x9',
    '--omit',
    'ibm,device-tgt-addr@0001:00:01.1',
    '--atsd-entries',
    '2',
    '--dts',
  );
  assert.equal(r.status, 0, r.stderr);
  const text = r.stdout.toString();
  assert.ok(runDtc(text, 'dts', 'dtb').ok);
  const expected = generateWitherspoon({
    gpus: 4,
    gpuRamGiB: 32,
    memoryMap: '4t-up',
    linkSpeed: 0x9,
    omit: [{ property: 'ibm,device-tgt-addr', target: '0001:00:01.1' }],
    atsdEntries: 2,
  });
  assert.equal(text, toDts(expected));
  assert.match(text, /device-id = <0x1db5>/);
});

test('dt generate: bad flags are one line naming the flag, exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['--gpus', '5'], /--gpus: must be 4 or 6/],
    [['--bogus'], /--bogus/],
    [['--gpus'], /--gpus/],
    [['--memory-map', '4t-up'], /--memory-map: 4t-up holds at most 4 GPUs/],
    [['--omit', 'ibm,npu'], /--omit: 'ibm,npu' is not PROP@NODE/],
    [['--omit', 'ibm,npu@0042:00:00.0'], /--omit: ibm,npu@0042:00:00.0: no node/],
    [['--atsd-entries', '12'], /--atsd-entries: must be 0..8/],
    [['--p100', 'maybe'], /--p100/],
  ];
  for (const [i, [args, message]] of cases.entries()) {
    // The first through the bin (exit status 2 as a process sets it), the others in process.
    const r =
      i === 0 ? spawned('generate', '--dts', ...args) : await cli('generate', '--dts', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, message);
  }
});

test('dt show: whole tree, one node of a file, and errors', async () => {
  const whole = await cli('show');
  assert.equal(whole.status, 0, whole.stderr);
  assert.equal(whole.stdout.toString(), toDts(defaultPlatformTree()));
  const file = join(dir, 'p100.dtb');
  assert.equal((await cli('generate', '--p100', 'plain', '-o', file)).status, 0);
  const node = await cli('show', file, '--node', '/pciex@600c3c0000000/pci@0/3d-controller@0');
  assert.equal(node.status, 0, node.stderr);
  const text = node.stdout.toString();
  assert.match(text, /^3d-controller@0 \{/);
  assert.match(text, /device-id = <0x15f9>/);
  assert.doesNotMatch(text, /ibm,npu/);
  const missing = await cli('show', '--node', '/nope');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /--node \/nope: no such node/);
  const absent = await cli('show', join(dir, 'absent.dtb'));
  assert.equal(absent.status, 1);
  assert.match(absent.stderr, /absent\.dtb: cannot read/);
  const unknown = await cli('frobnicate');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown subcommand 'frobnicate'/);
});

test('generated trees keep the PCI names the omit targets use', () => {
  const fdt = generateWitherspoon();
  const bridge = fdt.findNode('/pciex@6230200000000/unknown-bridge@1,1')!;
  assert.equal(readString(bridge, 'ibm,loc-code'), 'GPU4');
});
