/**
 * `inspect --dt` over the built-in Witherspoon with the real NVLink2 hooks: argument parsing,
 * the in-process description of a GPU and a bridge (the reference's region-info tables), and
 * the command in a child process (--json, exit codes).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import type { DeviceDescription } from '../vfio/describe.ts';
import { CliError } from './cli-error.ts';
import { inspectInProcess, parseInspectArgs } from './inspect.ts';

const quiet = () => {};

function cli(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'inspect', ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
}

describe('inspect arguments', () => {
  it('takes FILE and ADDRESS in any order, and short addresses', () => {
    assert.deepEqual(parseInspectArgs(['--dt', 'tree.dtb', '04:01.0', '--hex']), {
      file: 'tree.dtb',
      address: '0000:04:01.0',
      hex: true,
      json: false,
    });
    assert.deepEqual(parseInspectArgs(['0004:03:00.0', '--dt', '--json']), {
      file: undefined,
      address: '0004:03:00.0',
      hex: false,
      json: true,
    });
  });

  it('rejects a missing --dt, unknown flags and extra arguments with exit 2', () => {
    for (const argv of [[], ['--dt', '--bogus'], ['--dt', 'a', 'b']]) {
      assert.throws(
        () => parseInspectArgs(argv),
        (e: unknown) => e instanceof CliError && e.exitCode === 2,
      );
    }
  });
});

describe('inspect --dt in process (built-in platform)', () => {
  const all = inspectInProcess(
    { file: undefined, address: undefined, hex: false, json: false },
    quiet,
  );
  const byName = new Map(all.map((d) => [d.name, d]));

  it('shows every GPU and NVLink bridge: 6 GPUs, 12 bridges', () => {
    assert.equal(all.filter((d) => d.model.startsWith('Tesla V100')).length, 6);
    assert.equal(all.filter((d) => d.model === 'NPU2 NVLink bridge').length, 12);
  });

  it('a GPU has the NVLINK2 RAM region: TYPE@32 next 48, SSATGT@48, argsz 64', () => {
    const gpu = all.find((d) => d.model.startsWith('Tesla')) as DeviceDescription;
    const ram = gpu.regions[9];
    assert.equal(ram?.name, 'NVLINK2 RAM');
    assert.equal(ram?.argsz, 64);
    assert.equal(ram?.size, '0x2000000000');
    assert.deepEqual(
      ram?.caps?.map((c) => [c.name, c.offset, c.next]),
      [
        ['TYPE', 32, 48],
        ['NVLINK2_SSATGT', 48, 0],
      ],
    );
    assert.equal(ram?.hex?.length, 128);
  });

  it('a bridge has the NVLINK2 ATSD region: TYPE, SSATGT, LNKSPD 0x8, argsz 80', () => {
    const bridge = byName.get('0000:00:00.0') as DeviceDescription;
    const atsd = bridge.regions[9];
    assert.equal(atsd?.name, 'NVLINK2 ATSD');
    assert.equal(atsd?.argsz, 80);
    assert.deepEqual(atsd?.caps?.[2]?.value, { linkSpeed: '0x8' });
    assert.equal(bridge.config.size, 256);
    assert.deepEqual(
      bridge.irqs.map((i) => i.count),
      [1, 0, 0, 1, 1],
    );
  });

  it('a GPU and its bridges share the tgt', () => {
    const tgts = new Set(
      all.map((d) => d.regions[9]?.caps?.find((c) => c.name === 'NVLINK2_SSATGT')?.value.tgt),
    );
    assert.equal(tgts.size, 6);
  });
});

describe('inspect in a child process', () => {
  it('--json for one address prints one object', () => {
    const r = cli('--dt', '0004:03:00.0', '--json');
    assert.equal(r.status, 0, r.stderr);
    const d = JSON.parse(r.stdout) as DeviceDescription;
    assert.equal(d.name, '0004:03:00.0');
    assert.equal(d.info.numRegions, 10);
  });

  it('text with --hex shows the reply bytes; an unknown address exits 1', () => {
    const r = cli('--dt', '0000:00:00.0', '--hex');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /9 NVLINK2 ATSD/);
    assert.match(r.stdout, /0040: 05 00 01 00 00 00 00 00 08 00 00 00 00 00 00 00/);
    const bad = cli('--dt', '0009:00:00.0');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /no PCI function 0009:00:00.0/);
  });
});
