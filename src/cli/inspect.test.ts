/**
 * `inspect --dt` over the built-in Witherspoon with the real NVLink2 hooks: argument parsing,
 * the in-process description of a GPU and a bridge (the reference's region-info tables), and
 * the command in a child process (--json, exit codes).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../../test/support/cli.ts';
import { within } from '../../test/support/wait.ts';
import { type DeviceDescription, VfioError } from '../vfio/index.ts';
import { CliError } from './cli-error.ts';
import {
  inspectInProcess,
  listsPartitionOf,
  memoryLines,
  parseInspectArgs,
  settledState,
} from './inspect.ts';

const quiet = () => {};

function cli(...args: string[]) {
  return runCli(['inspect', ...args]);
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
    assert.deepEqual(atsd?.caps?.[2]?.value, { linkSpeed: 8 });
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

describe('inspect --socket-dir: state.json once serve released our sessions', () => {
  const state = (pids: number[], bars: number) =>
    `${JSON.stringify({
      pid: 1,
      partitions: pids.map((pid) => ({ pid, lpid: 1, devices: ['0007:03:00.0'] })),
      lpidsInUse: pids.length ? [1] : [],
      firmware: [],
      memory: {
        budget: 1048576,
        touched: bars,
        refused: 0,
        gpus: [{ address: '0007:03:00.0', gpuRam: 0, bars }],
      },
    })}\n`;

  it('lists a partition of a pid only in serve`s partitions array', () => {
    assert.equal(listsPartitionOf(state([7, process.pid], 0), process.pid), true);
    assert.equal(listsPartitionOf(state([7], 0), process.pid), false);
    for (const text of ['', '{', 'null', '[]', '{"partitions":{}}', '{"partitions":[null,1]}'])
      assert.equal(listsPartitionOf(text, process.pid), false, text);
  });

  it('memory lines of a state.json that is not serve`s: one line naming the file and the member', () => {
    const good = JSON.parse(state([], 0)) as { memory: { gpus: Record<string, unknown>[] } };
    const bad = (change: (s: typeof good) => void) => {
      const s = structuredClone(good);
      change(s);
      return JSON.stringify(s);
    };
    const cases: [string, string][] = [
      ['{', 'DIR/state.json: not JSON ('],
      ['[]', 'DIR/state.json: "the top level" must be an object, got an array'],
      [
        bad((s) => {
          s.memory.gpus[0]!.bars = '8';
        }),
        'DIR/state.json: "memory.gpus[0].bars" must be a non-negative integer, got "8"',
      ],
      [
        bad((s) => {
          delete (s as Partial<typeof good>).memory;
        }),
        'DIR/state.json: "memory" must be an object, got undefined',
      ],
    ];
    for (const [text, message] of cases)
      assert.throws(
        () => memoryLines(text, 'DIR/state.json'),
        (err: VfioError) =>
          err instanceof VfioError && err.reason.startsWith(message) && !err.reason.includes('\n'),
        text,
      );
  });

  it('waits for the rewrite that drops our pid (another process renames it in later)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-inspect-state-'));
    const path = join(dir, 'state.json');
    try {
      writeFileSync(path, state([process.pid], 0)); // our session not yet released
      // The release, as serve writes it: a temporary file renamed over state.json.
      const writer = spawn(process.execPath, [
        '-e',
        `const fs = require('node:fs');
         setTimeout(() => {
           fs.writeFileSync(process.argv[1] + '.tmp', process.argv[2]);
           fs.renameSync(process.argv[1] + '.tmp', process.argv[1]);
         }, 200);`,
        path,
        state([], 8192),
      ]);
      const exited = new Promise((resolve) => writer.once('exit', resolve));
      const text = await settledState(path, process.pid, 60_000);
      assert.deepEqual(memoryLines(text).slice(1), ['  0007:03:00.0  GPU RAM 0 bytes  BARs 8 KiB']);
      await within('the state.json writer to exit', exited);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives what it has once the wait is over (a server that never releases us)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-inspect-state-'));
    const path = join(dir, 'state.json');
    try {
      writeFileSync(path, state([process.pid], 4096));
      const text = await settledState(path, process.pid, 30);
      assert.deepEqual(memoryLines(text).slice(1), ['  0007:03:00.0  GPU RAM 0 bytes  BARs 4 KiB']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
