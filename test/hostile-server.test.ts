/**
 * A client trusts nothing a server says (issue 7 item 7). hostile_server.py, a second
 * implementation in another process, falsifies one reply per scenario. Every scenario of the
 * table is run through the library calls `inspect SOCKET` and `guest SOCKET` make
 * (describeRemote, readRemoteFacts), and a subset through the commands themselves as their own
 * processes: each ends in one line naming the socket and what was wrong, after a bounded number
 * of requests, with the client's peak memory (VmHWM, read by the server at each request) within
 * 64 MiB of an honest run's. The library's mapping and the bench's GPU target refuse regions
 * their fd cannot back; a bad devices.json is refused the same way.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectGpu } from '../src/bench/gpu-target.ts';
import { readRemoteFacts } from '../src/guest/remote-facts.ts';
import { deviceNameForSocket } from '../src/serve-dir/index.ts';
import {
  DeviceSocketError,
  describeRemote,
  QEMU_MSG_TIMEOUT_MS,
  VfioUserClient,
} from '../src/vfio-user/index.ts';
import {
  type CliRun,
  type ConnectionStats,
  type HostileServer,
  runCli,
  startHostile,
} from './support/hostile-server.ts';

type Via = 'library' | 'process';

interface Row {
  readonly scenario: string;
  /** What the one line must say was wrong. */
  readonly what: RegExp;
  /** Most requests the client may send before giving up. */
  readonly requests: number;
  /** Run through the library, the command as a process, or both (the default). */
  readonly via?: readonly Via[];
}

const LIB: readonly Via[] = ['library'];
const PROC: readonly Via[] = ['process'];

/** `inspect SOCKET`: VERSION, DEVICE_GET_INFO, 10 regions (9 asked twice), 5 IRQs, config. */
const INSPECT: readonly Row[] = [
  { scenario: 'regions-4g', what: /num_regions 4294967295 exceeds 100/, requests: 2 },
  { scenario: 'irqs-4g', what: /num_irqs 4294967295 exceeds 50/, requests: 2, via: LIB },
  { scenario: 'info-1m', what: /DEVICE_GET_INFO reply of 1048592 bytes/, requests: 2 },
  { scenario: 'argsz-4g', what: /region 0: .*argsz 4294967295/, requests: 3 },
  { scenario: 'argsz-again', what: /region 0: .*argsz 64, then 96/, requests: 4, via: LIB },
  {
    scenario: 'reply-over-argsz',
    what: /GET_REGION_INFO reply of 4128 bytes/,
    requests: 3,
    via: LIB,
  },
  { scenario: 'cap-loop', what: /region 0: capability at 32: next 32/, requests: 4, via: LIB },
  { scenario: 'cap-past-end', what: /region 0: cap_offset 1000/, requests: 4, via: LIB },
  { scenario: 'cap-in-header', what: /region 0: cap_offset 8/, requests: 4, via: LIB },
  { scenario: 'cap-backward', what: /region 0: capability at 4088: next 4080/, requests: 4 },
  { scenario: 'index-mismatch', what: /region 0 .*region 5/, requests: 3, via: LIB },
  { scenario: 'config-4g', what: /region 7.* 4294967296 bytes exceeds 4096/, requests: 20 },
  { scenario: 'read-long', what: /REGION_READ reply of 336 bytes/, requests: 21 },
  { scenario: 'read-short', what: /128 of 256 bytes/, requests: 21, via: LIB },
  { scenario: 'read-elsewhere', what: /region 7 at 0x0 .*at 0x100/, requests: 21, via: LIB },
  {
    scenario: 'fds-4g',
    what: /"max_msg_fds" 1099511627776 exceeds 16/,
    requests: 1,
    via: LIB,
  },
  { scenario: 'xfer-0', what: /"max_data_xfer_size" 0 /, requests: 1 },
  {
    scenario: 'xfer-1t',
    what: /"max_data_xfer_size" 1099511627776 exceeds 67108864/,
    requests: 1,
    via: LIB,
  },
  {
    scenario: 'dma-maps-1t',
    what: /"max_dma_maps" 1099511627776 exceeds 65535/,
    requests: 1,
    via: LIB,
  },
  { scenario: 'pgsizes-odd', what: /"pgsizes" 0xfff/, requests: 1, via: LIB },
  {
    scenario: 'caps-not-object',
    what: /"capabilities" must be an object/,
    requests: 1,
    via: LIB,
  },
  { scenario: 'caps-newline', what: /not JSON/, requests: 1 },
  {
    scenario: 'irq-index',
    what: /GET_IRQ_INFO of index 0 answered with 1/,
    requests: 14,
    via: LIB,
  },
  {
    scenario: 'mute',
    what: /ETIMEDOUT: .*no reply to VFIO_USER_DEVICE_GET_INFO .*5000 ms/,
    requests: 2,
    via: PROC,
  },
  {
    scenario: 'stall-mid-reply',
    what: /ETIMEDOUT: no reply to VFIO_USER_REGION_READ .*5000 ms/,
    requests: 21,
    via: LIB,
  },
  {
    scenario: 'version-64k',
    what: /VERSION reply of 655[0-9]{2} bytes, at most 4096/,
    requests: 1,
  },
];

/**
 * `guest SOCKET`: VERSION, DEVICE_GET_INFO, 52 bytes of config (the header up to the capability
 * pointer: ids, class, BARs and ROM, as vfio_bar_prepare reads them), then each region.
 */
const GUEST: readonly Row[] = [
  { scenario: 'regions-4g', what: /num_regions 4294967295 exceeds 100/, requests: 2 },
  { scenario: 'argsz-4g', what: /region 0: .*argsz 4294967295/, requests: 4, via: LIB },
  { scenario: 'cap-loop', what: /region 0: capability at 32: next 32/, requests: 5 },
  {
    scenario: 'cap-backward',
    what: /region 0: capability at 4088: next 4080/,
    requests: 5,
    via: LIB,
  },
  { scenario: 'read-long', what: /REGION_READ reply of 132 bytes/, requests: 3, via: LIB },
  { scenario: 'read-short', what: /26 of 52 bytes/, requests: 3 },
  {
    scenario: 'mute',
    what: /ETIMEDOUT: .*no reply to VFIO_USER_DEVICE_GET_INFO .*5000 ms/,
    requests: 2,
    via: PROC,
  },
  {
    scenario: 'version-64k',
    what: /VERSION reply of 655[0-9]{2} bytes, at most 4096/,
    requests: 1,
    via: LIB,
  },
  {
    scenario: 'fds-4g',
    what: /"max_msg_fds" 1099511627776 exceeds 16/,
    requests: 1,
    via: LIB,
  },
];

const MAPPING = ['sparse-outside', 'sparse-many', 'fd-short', 'fd-offset-past', 'write-short'];
const SCENARIOS = [
  ...new Set(['benign', 'version-deep', ...INSPECT.map((r) => r.scenario), ...MAPPING]),
];

type Command = 'inspect' | 'guest';

let server: HostileServer;
/** The honest run's peak (KiB) per command and way. */
const honestPeakKb = new Map<string, number>();

before(async () => {
  server = await startHostile(SCENARIOS);
});
after(async () => {
  await server.stop();
});

/** What `guest SOCKET` does with one socket, in this process. */
async function guestFacts(socket: string): Promise<void> {
  const client = await VfioUserClient.connect(socket, { replyTimeoutMs: QEMU_MSG_TIMEOUT_MS });
  try {
    await readRemoteFacts(client, 'hostile', null);
  } finally {
    client.close();
  }
}

/**
 * Runs `command` against `scenario` the way `via` says; resolves with the error line (null
 * when it succeeded) and the server's view of the connection.
 */
async function against(
  command: Command,
  scenario: string,
  via: Via,
): Promise<{ line: string | null; stats: ConnectionStats; run?: CliRun }> {
  const n = server.connections(scenario).length + 1;
  const socket = server.socket(scenario);
  if (via === 'process') {
    const run = await runCli([command, socket]);
    const stats = await server.connectionEnded(scenario, n);
    assert.equal(run.status === 0, run.stderr === '', `exit ${run.status}: ${run.stderr}`);
    return { line: run.status === 0 ? null : oneLine(run, command), stats, run };
  }
  let line: string | null = null;
  try {
    await (command === 'inspect'
      ? describeRemote(socket, deviceNameForSocket(socket))
      : guestFacts(socket));
  } catch (e) {
    assert.ok(e instanceof Error, String(e));
    line = e.message;
    if (command === 'inspect') assert.ok(e instanceof DeviceSocketError, e.stack);
  }
  return { line, stats: await server.connectionEnded(scenario, n) };
}

/** The command's one line on stderr, checked for its shape. */
function oneLine(run: CliRun, command: string): string {
  assert.equal(run.status, 1, `exit status (stderr: ${run.stderr})`);
  const lines = run.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${run.stderr}`);
  // The vocabulary's shape: `vfio-nvlink2: <command>: <errno or CODE>: <message>`.
  assert.match(lines[0]!, new RegExp(`^vfio-nvlink2: ${command}: [A-Z][A-Z0-9_]+: `));
  assert.equal(run.stdout, '');
  return lines[0]!;
}

for (const via of ['library', 'process'] as const) {
  for (const command of ['inspect', 'guest'] as const) {
    describe(`${command} SOCKET against a hostile server (${via})`, () => {
      const key = `${command} ${via}`;
      it('an honest run succeeds (its peak memory is the reference)', async () => {
        const { line, stats } = await against(command, 'benign', via);
        assert.equal(line, null);
        assert.ok(stats.peakKb > 0);
        honestPeakKb.set(key, stats.peakKb);
      });

      const rows = (command === 'inspect' ? INSPECT : GUEST).filter((r) =>
        (r.via ?? ['library', 'process']).includes(via),
      );
      for (const row of rows) {
        it(`${row.scenario}: one line naming the socket, ≤ ${row.requests} requests, bounded memory`, async () => {
          const { line, stats } = await against(command, row.scenario, via);
          assert.ok(line !== null, 'fails');
          assert.ok(!line.includes('\n'), `one line: ${line}`);
          if (command === 'inspect' || via === 'process')
            assert.ok(line.includes(server.socket(row.scenario)), `names the socket: ${line}`);
          assert.match(line, row.what);
          assert.ok(
            stats.requests <= row.requests,
            `${stats.requests} requests, at most ${row.requests}`,
          );
          const honest = honestPeakKb.get(key);
          assert.ok(honest !== undefined);
          assert.ok(
            stats.peakKb <= honest + 64 * 1024,
            `peak ${stats.peakKb} KiB vs ${honest} KiB honest`,
          );
        });
      }
    });
  }
}

describe('inspect SOCKET: what a server may say', () => {
  it('deeply nested JSON of an unknown capability (within the size bound) is accepted', async () => {
    const { line } = await against('inspect', 'version-deep', 'library');
    assert.equal(line, null);
  });
});

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('the library against a hostile server: mappings and writes', () => {
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

  it('a REGION_WRITE acknowledged for fewer bytes than sent is EINVAL', async () => {
    const client = await VfioUserClient.connect(server.socket('write-short'));
    try {
      await assert.rejects(
        client.regionWrite(0, 0x10n, new Uint8Array(8)),
        /EINVAL: REGION_WRITE of region 0 at 0x10: 4 of 8 bytes were written/,
      );
    } finally {
      client.close();
    }
  });

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
  // Every kind of bad list is in src/serve-dir/devices-list.test.ts; here, the commands.
  const bad: [string, string, RegExp][] = [
    ['a number for an address', '[{"address":5,"socket":"x.sock"}]', /entry 0: "address"/],
    [
      '100,000 entries',
      JSON.stringify(Array.from({ length: 100_000 }, (_, i) => ({ address: `${i}` }))),
      /100000 entries, at most 4096/,
    ],
  ];
  for (const [name, text, what] of bad) {
    it(`guest --socket-dir, ${name}: one line naming the file`, async () => {
      const dir = join(server.dir, `list-${name.replace(/\W+/g, '-')}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'devices.json'), text);
      const run = await runCli(['guest', '--socket-dir', dir]);
      const line = oneLine(run, 'guest');
      assert.ok(line.includes(join(dir, 'devices.json')), line);
      assert.match(line, what);
    });
  }

  it('inspect SOCKET with a bad devices.json beside it: one line naming the file', async () => {
    const dir = join(server.dir, 'inspect-list');
    mkdirSync(dir);
    symlinkSync(server.socket('benign'), join(dir, 'dev.sock'));
    writeFileSync(join(dir, 'devices.json'), '[{"address":5,"socket":"dev.sock"}]');
    const run = await runCli(['inspect', join(dir, 'dev.sock')]);
    const line = oneLine(run, 'inspect');
    assert.ok(line.includes(join(dir, 'devices.json')), line);
    assert.match(line, /entry 0: "address"/);
  });
});
