/**
 * `dt show` as fdtget: `dt show FILE NODE PROPERTY... -t T`, `-p`, `-l` and `-d` print what dtc's
 * fdtget prints for the same arguments (when fdtget is installed), the values before a failing
 * query included; `--json` gives the same values as data; a missing node or property is one
 * NOT_FOUND line (exit 1), a bad type or an odd NODE PROPERTY list one USAGE line (exit 2).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serializeFdt } from '../src/fdt/index.ts';
import { generateWitherspoon } from '../src/platform/index.ts';
import { runCli, runCliBytes } from './support/cli.ts';

const GPU = '/pciex@600c3c0000000/pci@0/3d-controller@0';
const BRIDGE = '/pciex@6030200000000/unknown-bridge@0';
const QUERY = [GPU, 'ibm,npu', GPU, 'ibm,loc-code', BRIDGE, 'reg', BRIDGE, 'ibm,device-tgt-addr'];

const hasFdtget = spawnSync('fdtget', ['-V']).status === 0;
const needsFdtget = hasFdtget
  ? false
  : 'fdtget not installed (apt-get install device-tree-compiler)';

let dir: string;
let dtb: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vn-dt-show-'));
  dtb = join(dir, 'w4.dtb');
  const fdt = generateWitherspoon({ gpus: 4, gpuRamGiB: 32, linkSpeed: 8, memoryMap: '4t-down' });
  writeFileSync(dtb, serializeFdt(fdt));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('dt show as fdtget', { skip: needsFdtget }, () => {
  for (const args of [
    [...QUERY],
    ['-t', 'x', ...QUERY],
    ['-t', 'bu', GPU, 'ibm,loc-code'],
    ['-p', GPU, BRIDGE],
    ['-l', '/', BRIDGE],
    ['-d', 'none', GPU, 'no-such-property', GPU, 'vendor-id'],
  ]) {
    it(`dt show FILE ${args.join(' ')}`, () => {
      const theirs = spawnSync('fdtget', [dtb, ...args]);
      const ours = runCliBytes(['dt', 'show', dtb, ...args]);
      assert.equal(theirs.status, 0, theirs.stderr.toString());
      assert.equal(ours.status, 0, ours.stderr);
      assert.deepEqual(ours.stdout, theirs.stdout);
    });
  }

  it('prints the values before a query fdtget refuses, then one line (exit 1)', () => {
    const args = ['-t', 'hx', GPU, 'ibm,npu', GPU, 'ibm,loc-code'];
    const theirs = spawnSync('fdtget', [dtb, ...args], { encoding: 'utf8' });
    const ours = runCli(['dt', 'show', dtb, ...args]);
    assert.notEqual(theirs.status, 0);
    assert.equal(ours.status, 1);
    assert.equal(ours.stdout, theirs.stdout);
    assert.match(
      ours.stderr,
      /^vfio-nvlink2: dt show: EOVERFLOW: .*ibm,loc-code: Property length must be a multiple of selected data size/,
    );
  });
});

describe('dt show queries', () => {
  it('--json: the values as data, hex strings for cells', () => {
    const r = runCli(['dt', 'show', dtb, GPU, 'ibm,npu', GPU, 'ibm,loc-code', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [
      { node: GPU, property: 'ibm,npu', value: ['0x10', '0x11', '0x12'] },
      { node: GPU, property: 'ibm,loc-code', value: ['GPU0'] },
    ]);
    const tree = JSON.parse(runCli(['dt', 'show', dtb, '--node', BRIDGE, '--json']).stdout);
    assert.equal(tree.name, 'unknown-bridge@0');
    assert.deepEqual(tree.properties['ibm,nvlink-speed'], ['0x8']);
  });

  it('reads the built-in tree when FILE is left out (NODE is a node of it)', () => {
    const r = runCli(['dt', 'show', GPU, 'vendor-id', '-t', 'x']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '10de\n');
  });

  it('a missing node or property is NOT_FOUND; bad usage is USAGE (exit 2)', () => {
    const node = runCli(['dt', 'show', dtb, '/nope', 'reg']);
    assert.equal(node.status, 1);
    assert.match(node.stderr, /^vfio-nvlink2: dt show: NOT_FOUND: \/nope: no such node in /);
    const prop = runCli(['dt', 'show', dtb, GPU, 'nope']);
    assert.equal(prop.status, 1);
    assert.match(prop.stderr, /NOT_FOUND: .*3d-controller@0: no property nope in /);
    const type = runCli(['dt', 'show', dtb, GPU, 'reg', '-t', 'q']);
    assert.equal(type.status, 2);
    assert.match(type.stderr, /USAGE: --type must be s, i, u, x or r.*not 'q'/);
    const odd = runCli(['dt', 'show', dtb, GPU]);
    assert.equal(odd.status, 2);
    assert.match(odd.stderr, /USAGE: NODE PROPERTY pairs: no PROPERTY after /);
  });
});
