/**
 * A client trusts nothing a server says (issue 7 item 7): `inspect SOCKET` and `guest SOCKET`
 * run as their own processes against hostile_server.py, a second implementation in a third
 * process that falsifies one reply per scenario. Each ends in one line on stderr naming the
 * socket and what was wrong, after a bounded number of requests and with the client's peak
 * memory within 64 MiB of an honest run's. The library's own mapping and the bench's GPU
 * target refuse regions their fd cannot back; a bad devices.json is refused the same way.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectGpu } from '../src/bench/gpu-target.ts';
import { VfioUserClient } from '../src/vfio-user/client.ts';
import {
  type CliRun,
  type ConnectionStats,
  type HostileServer,
  runCli,
  startHostile,
} from './support/hostile-server.ts';

interface Row {
  readonly scenario: string;
  /** What the one line must say was wrong. */
  readonly what: RegExp;
  /** Most requests the client may send before giving up. */
  readonly requests: number;
}

/** `inspect SOCKET`: VERSION, DEVICE_GET_INFO, 10 regions (9 asked twice), 5 IRQs, config. */
const INSPECT: readonly Row[] = [
  { scenario: 'regions-4g', what: /num_regions 4294967295 exceeds 100/, requests: 2 },
  { scenario: 'irqs-4g', what: /num_irqs 4294967295 exceeds 50/, requests: 2 },
  { scenario: 'info-1m', what: /DEVICE_GET_INFO reply of 1048592 bytes/, requests: 2 },
  { scenario: 'argsz-4g', what: /region 0: .*argsz 4294967295/, requests: 3 },
  { scenario: 'argsz-again', what: /region 0: .*argsz 64, then 96/, requests: 4 },
  { scenario: 'reply-over-argsz', what: /GET_REGION_INFO reply of 4128 bytes/, requests: 3 },
  { scenario: 'cap-loop', what: /region 0: capability at 32: next 32/, requests: 4 },
  { scenario: 'cap-past-end', what: /region 0: cap_offset 1000/, requests: 4 },
  { scenario: 'cap-in-header', what: /region 0: cap_offset 8/, requests: 4 },
  { scenario: 'cap-backward', what: /region 0: capability at 4088: next 4080/, requests: 4 },
  { scenario: 'index-mismatch', what: /region 0 .*region 5/, requests: 3 },
  { scenario: 'config-4g', what: /region 7.* 4294967296 bytes exceeds 4096/, requests: 20 },
  { scenario: 'read-long', what: /REGION_READ reply of 336 bytes/, requests: 21 },
  { scenario: 'read-short', what: /128 of 256 bytes/, requests: 21 },
  { scenario: 'read-elsewhere', what: /region 7 at 0x0 .*at 0x100/, requests: 21 },
  { scenario: 'fds-4g', what: /"max_msg_fds" 1099511627776 exceeds 16/, requests: 1 },
  { scenario: 'xfer-0', what: /"max_data_xfer_size" 0 /, requests: 1 },
  { scenario: 'xfer-1t', what: /"max_data_xfer_size" 1099511627776 exceeds 67108864/, requests: 1 },
  { scenario: 'dma-maps-1t', what: /"max_dma_maps" 1099511627776 exceeds 65535/, requests: 1 },
  { scenario: 'pgsizes-odd', what: /"pgsizes" 0xfff/, requests: 1 },
  { scenario: 'caps-not-object', what: /"capabilities" must be an object/, requests: 1 },
  { scenario: 'caps-newline', what: /not JSON/, requests: 1 },
  {
    scenario: 'version-64k',
    what: /VERSION reply of 655[0-9]{2} bytes, at most 4096/,
    requests: 1,
  },
];

/** `guest SOCKET`: VERSION, DEVICE_GET_INFO, 12 bytes of config, then each region. */
const GUEST: readonly Row[] = [
  { scenario: 'regions-4g', what: /num_regions 4294967295 exceeds 100/, requests: 2 },
  { scenario: 'argsz-4g', what: /region 0: .*argsz 4294967295/, requests: 4 },
  { scenario: 'cap-loop', what: /region 0: capability at 32: next 32/, requests: 5 },
  { scenario: 'cap-backward', what: /region 0: capability at 4088: next 4080/, requests: 5 },
  { scenario: 'read-long', what: /REGION_READ reply of 92 bytes/, requests: 3 },
  { scenario: 'read-short', what: /6 of 12 bytes/, requests: 3 },
  {
    scenario: 'version-64k',
    what: /VERSION reply of 655[0-9]{2} bytes, at most 4096/,
    requests: 1,
  },
  { scenario: 'fds-4g', what: /"max_msg_fds" 1099511627776 exceeds 16/, requests: 1 },
];

const MAPPING = ['sparse-outside', 'sparse-many', 'fd-short', 'fd-offset-past'];
const SCENARIOS = [
  ...new Set(['benign', 'version-deep', ...INSPECT.map((r) => r.scenario), ...MAPPING]),
];

let server: HostileServer;
/** The honest run's peak (KiB) per command. */
const honestPeakKb = new Map<string, number>();

before(async () => {
  server = await startHostile(SCENARIOS);
});
after(async () => {
  await server.stop();
});

/** Runs the command against `scenario` and returns the run and the server's view of it. */
async function against(
  command: 'inspect' | 'guest',
  scenario: string,
): Promise<{ run: CliRun; stats: ConnectionStats }> {
  const n = server.connections(scenario).length + 1;
  const run = await runCli([command, server.socket(scenario)]);
  const stats = await server.connectionEnded(scenario, n);
  return { run, stats };
}

function assertOneLine(run: CliRun, command: string, socket: string, what: RegExp): void {
  assert.equal(run.status, 1, `exit status (stderr: ${run.stderr})`);
  const lines = run.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${run.stderr}`);
  const line = lines[0]!;
  assert.ok(line.startsWith(`vfio-nvlink2: ${command}: `), line);
  assert.ok(line.includes(socket), `names the socket: ${line}`);
  assert.match(line, what);
  assert.equal(run.stdout, '');
}

for (const command of ['inspect', 'guest'] as const) {
  describe(`${command} SOCKET against a hostile server`, () => {
    it('an honest run succeeds (its peak memory is the reference)', async () => {
      const { run, stats } = await against(command, 'benign');
      assert.equal(run.status, 0, run.stderr);
      assert.ok(stats.peakKb > 0);
      honestPeakKb.set(command, stats.peakKb);
    });

    for (const row of command === 'inspect' ? INSPECT : GUEST) {
      it(`${row.scenario}: one line naming the socket, ≤ ${row.requests} requests, bounded memory`, async () => {
        const { run, stats } = await against(command, row.scenario);
        assertOneLine(run, command, server.socket(row.scenario), row.what);
        assert.ok(
          stats.requests <= row.requests,
          `${stats.requests} requests, at most ${row.requests}`,
        );
        const honest = honestPeakKb.get(command);
        assert.ok(honest !== undefined);
        assert.ok(
          stats.peakKb <= honest + 64 * 1024,
          `peak ${stats.peakKb} KiB vs ${honest} KiB honest`,
        );
      });
    }
  });
}

describe('inspect SOCKET: what a server may say', () => {
  it('deeply nested JSON of an unknown capability (within the size bound) is accepted', async () => {
    const { run } = await against('inspect', 'version-deep');
    assert.equal(run.status, 0, run.stderr);
  });
});

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('mapping a region the server describes', () => {
  const cases: [string, RegExp][] = [
    ['sparse-outside', /region 9: sparse-mmap area 0x3000\+0x2000 .*0x4000/],
    ['sparse-many', /region 9: 1000 sparse-mmap areas, at most 64/],
    ['fd-short', /region 9: .*0x400000000 .*fd of 0x4000 bytes/],
    ['fd-offset-past', /region 9: .*0x4000000000000000.*fd of 0x4000 bytes/],
  ];
  for (const [scenario, what] of cases) {
    it(`${scenario}: mapRegion refuses with EINVAL and keeps no fd`, async () => {
      const client = await VfioUserClient.connect(server.socket(scenario));
      try {
        const before = openFds();
        await assert.rejects(client.mapRegion(9), (e: Error) => {
          assert.match(e.message, /^EINVAL: /);
          assert.match(e.message, what);
          return true;
        });
        assert.equal(openFds(), before);
      } finally {
        client.close();
      }
    });
  }

  it("the bench's GPU target refuses GPU RAM its fd cannot back", async () => {
    const gpu = await connectGpu(server.socket('fd-short'));
    try {
      assert.throws(() => gpu.mapGpuRam(), /EINVAL: region 9: .*fd of 0x4000 bytes/);
    } finally {
      gpu.close();
    }
  });
});

describe('a devices.json beside the sockets is validated before use', () => {
  const bad: [string, string, RegExp][] = [
    ['not an array', '{"a":1}', /must be an array/],
    ['a number for an address', '[{"address":5,"socket":"x.sock"}]', /entry 0: "address"/],
    ['a socket that is not a string', '[{"address":"0002:01:00.0","socket":[]}]', /"socket"/],
    [
      'a group that is not an integer',
      '[{"address":"0002:01:00.0","iommuGroup":-1}]',
      /"iommuGroup"/,
    ],
    [
      '100,000 entries',
      JSON.stringify(Array.from({ length: 100_000 }, (_, i) => ({ address: `${i}` }))),
      /100000 entries, at most 4096/,
    ],
    ['5 MiB of it', `[${' '.repeat(5 << 20)}]`, /bytes, at most/],
  ];
  for (const [name, text, what] of bad) {
    it(`guest --socket-dir, ${name}: one line naming the file`, async () => {
      const dir = join(server.dir, `list-${name.replace(/\W+/g, '-')}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'devices.json'), text);
      const run = await runCli(['guest', '--socket-dir', dir]);
      assertOneLine(run, 'guest', join(dir, 'devices.json'), what);
    });
  }

  it('inspect SOCKET with a bad devices.json beside it: one line naming the file', async () => {
    const dir = join(server.dir, 'inspect-list');
    mkdirSync(dir);
    symlinkSync(server.socket('benign'), join(dir, 'dev.sock'));
    writeFileSync(join(dir, 'devices.json'), '[{"address":5,"socket":"dev.sock"}]');
    const run = await runCli(['inspect', join(dir, 'dev.sock')]);
    assertOneLine(run, 'inspect', join(dir, 'devices.json'), /entry 0: "address"/);
  });
});
