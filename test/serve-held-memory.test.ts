/**
 * A client that keeps a device's memory after it disconnects — a mapping, a descriptor, or
 * either handed to another process — keeps the device from clients of other uids: the next
 * client is refused with EBUSY, and the log names who holds what, until it lets go (the kernel
 * keeps a VFIO device open while a mapping of it lives: vma->vm_file). The holder itself may
 * open the device again, and so may a process of its uid (one trust domain; the log says so).
 * A Python process (test/support/memory_holder.py), as uid 65534 admitted by --allow-uid, is
 * the holder; this process (root) is the next client, over the real socket of a spawned `serve`.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serializeFdt } from '../src/fdt/index.ts';
import { closeFd } from '../src/native/index.ts';
import { generateWitherspoon } from '../src/platform/witherspoon/index.ts';
import { decodeStateFile, encodeStateFile } from '../src/state-dir/index.ts';
import { Command, ReplyError, VfioUserClient } from '../src/vfio-user/index.ts';
import { runCli } from './support/cli.ts';
import { frame, QEMU_VERSION_JSON, versionPayload } from './support/frames.ts';
import { alive } from './support/proc.ts';
import { type RawMessage, RawPeer } from './support/raw-peer.ts';
import {
  BRIDGE,
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';
import { within } from './support/wait.ts';

const HOLDER = new URL('./support/memory_holder.py', import.meta.url).pathname;
const EBUSY = 16;
const NOBODY = 65534;
const notRoot = process.getuid?.() !== 0 ? 'needs root to run the holder as uid 65534' : false;
const MARKER = 0x1122334455667788n;

/** The holder process: its pid and one line of answer per command. */
interface Holder {
  readonly pid: number;
  readonly fd: number;
  command(line: string): Promise<string>;
  stop(): void;
}

async function hold(
  socket: string,
  region: number,
  map: boolean,
  uid: number | null = NOBODY, // null: as this process (root)
): Promise<Holder> {
  const args = [
    HOLDER,
    ...(uid === null ? [] : ['--uid', String(uid)]),
    socket,
    String(region),
    ...(map ? [String(MARKER)] : []),
  ];
  const py: ChildProcessWithoutNullStreams = spawn('python3', args, { stdio: 'pipe' });
  let out = '';
  let err = '';
  py.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  py.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const nextLine = async (what: string): Promise<string> => {
    const line = await waitFor(`the holder's answer to ${what}`, () => {
      if (py.exitCode !== null) throw new Error(`the holder exited ${py.exitCode}: ${err}`);
      const nl = out.indexOf('\n');
      return nl < 0 ? undefined : out.slice(0, nl);
    });
    out = out.slice(line.length + 1);
    return line;
  };
  const first = await nextLine('its start');
  const m = /^held (\d+)$/.exec(first);
  assert.ok(m, `the holder said ${first}`);
  return {
    pid: py.pid ?? -1,
    fd: Number(m[1]),
    command: (line) => {
      py.stdin.write(`${line}\n`);
      return nextLine(line);
    },
    stop: () => {
      py.kill('SIGKILL');
    },
  };
}

/** The holder splices GPU RAM's first page into a pipe, then lets go of its descriptor and mapping. */
async function pinWithNoFile(h: Holder): Promise<void> {
  assert.equal(await h.command('splice'), 'spliced');
  assert.equal(await h.command('close-fd'), 'closed');
  assert.equal(await h.command('unmap'), 'unmapped');
}

/**
 * Client `c` reads what the holder wrote, writes over it; the page the holder pinned must still
 * show the old bytes (the device got fresh memory).
 */
async function pinnedKeepsOldBytes(h: Holder, c: VfioUserClient): Promise<void> {
  const kept = await c.regionRead(9, 0x100n, 8);
  assert.equal(Buffer.from(kept).readBigUInt64LE(0), MARKER, 'the copy holds what it wrote');
  const secret = Buffer.alloc(8);
  secret.writeBigUInt64LE(0x5ec2e75ec2e75ec2n);
  await c.regionWrite(9, 0x100n, secret);
  const seen = Buffer.from(await h.command('pipe'), 'hex').readBigUInt64LE(0);
  assert.equal(seen, MARKER, "the pinned page is the old one: the new client's write is not in it");
}

/**
 * Sends a VERSION to `socket` in one sendmsg, then REGION_READs of `other` (another device of
 * the same server) one after the other until the VERSION is answered: how many round trips the
 * server made meanwhile, and the answer. A server busy on its event loop answers at most one.
 */
async function versionWhileOtherReads(
  socket: string,
  other: VfioUserClient,
): Promise<{ answer: RawMessage | undefined; replies: number }> {
  let answer: RawMessage | undefined;
  const c = new RawPeer(socket, (m) => {
    answer = m;
  });
  try {
    // One sendmsg: the VERSION is in the server's socket before the first read below is sent.
    c.send(frame(0, Command.VERSION, versionPayload(0, 1, QEMU_VERSION_JSON)));
    let replies = 0;
    await within(
      'the answer to VERSION',
      (async () => {
        while (answer === undefined && c.failure === null) {
          await other.regionRead(7, 0n, 4);
          replies++;
        }
      })(),
    );
    return { answer, replies };
  } finally {
    c.close();
  }
}

/** A client that sends its VERSION and leaves at once, before any answer. */
function versionAndLeave(socket: string): void {
  const c = new RawPeer(socket, () => {});
  c.send(frame(0, Command.VERSION, versionPayload(0, 1, QEMU_VERSION_JSON)));
  c.close();
}

/** Rejects with EBUSY: the next client of another process is refused. */
async function refused(serve: ServeProcess, address: string): Promise<void> {
  await assert.rejects(
    within('the refused connect', VfioUserClient.connect(serve.socket(address))),
    (e: unknown) => e instanceof ReplyError && e.remoteErrno === EBUSY,
  );
}

/** A directory uid 65534 may pass through (0711) for the servers' socket dirs. */
const base = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-held-'));
chmodSync(base, 0o711);
let serve: ServeProcess;
before(async () => {
  serve = await startServe(['--allow-uid', String(NOBODY)], { dir: join(base, 'sockets') });
});
after(async () => {
  await serve.stop();
  rmSync(base, { recursive: true, force: true });
});

describe('memory a client of another uid keeps after it disconnects', { skip: notRoot }, () => {
  it('a mapping of GPU RAM keeps the device until it is unmapped; then the next client reads what it wrote', async () => {
    const h = await hold(serve.socket(GPU), 9, true);
    try {
      assert.equal(await h.command('close-fd'), 'closed'); // the mapping alone holds it now
      await refused(serve, GPU);
      assert.match(
        serve.stderr(),
        new RegExp(
          `refusing pid ${process.pid}: region 9 of ${GPU} is still held by pid ${h.pid} of uid ${NOBODY} \\(a mapping\\)`,
        ),
      );
      assert.doesNotMatch(serve.stderr(), /destroy context/, 'refused before the device opens');
      assert.equal(await h.command('unmap'), 'unmapped');
      const c = await VfioUserClient.connect(serve.socket(GPU));
      try {
        const got = await c.regionRead(9, 0x100n, 8);
        assert.equal(Buffer.from(got).readBigUInt64LE(0), MARKER);
      } finally {
        c.close();
      }
    } finally {
      h.stop();
    }
  });

  for (const [what, address, region] of [
    ['the ATSD page of a bridge', BRIDGE, 9],
    ['BAR0 of a GPU', GPU, 0],
  ] as const) {
    it(`a descriptor of ${what} keeps the device until it is closed`, async () => {
      const h = await hold(serve.socket(address), region, false);
      try {
        await refused(serve, address);
        assert.match(
          serve.stderr(),
          new RegExp(
            `refusing pid ${process.pid}: region ${region} of ${address} is still held by pid ${h.pid} of uid ${NOBODY} \\(fd ${h.fd}\\)`,
          ),
        );
        assert.equal(await h.command('close-fd'), 'closed');
        (await connectWhenFree(serve, address)).close();
      } finally {
        h.stop();
      }
    });
  }

  it('a process it handed its mapping and descriptor to keeps the device until it is gone', async () => {
    const h = await hold(serve.socket(GPU), 9, true);
    try {
      const answer = await h.command('fork');
      const child = Number(/^child (\d+)$/.exec(answer)?.[1]);
      assert.ok(child > 0, answer);
      await refused(serve, GPU);
      assert.match(
        serve.stderr(),
        new RegExp(`still held by pid ${child} of uid ${NOBODY} \\(fd ${h.fd}, a mapping\\)`),
        'the child is named, and the holder (which let go) is not',
      );
      process.kill(child, 'SIGKILL');
      await waitFor('the child gone', () => !alive(child));
      (await connectWhenFree(serve, GPU)).close();
    } finally {
      h.stop();
    }
  });

  it('refused again and again, the log stays within the socket bound (100 lines per 5 s)', async () => {
    const h = await hold(serve.socket(GPU), 9, true);
    try {
      const before = serve.stderr().split('\n').length;
      const started = Date.now();
      for (let i = 0; i < 150; i++) await refused(serve, GPU);
      // The bound is per 5 s interval: as many intervals as the loop touched, one more for the
      // one running when it began (no speed is asserted: a slow loop only widens the bound).
      const intervals = Math.floor((Date.now() - started) / 5000) + 2;
      await new Promise((r) => setTimeout(r, 200)); // the last lines reach our end of the pipe
      const lines = serve.stderr().split('\n').slice(before);
      const refusals = lines.filter((l) => /refusing pid/.test(l)).length;
      const summaries = lines.filter((l) => /suppressed \d+ similar/.test(l)).length;
      assert.ok(refusals <= 100 * intervals, `${refusals} refusal lines in ${intervals} intervals`);
      assert.ok(
        summaries <= intervals,
        `${summaries} summary lines in ${intervals} intervals: one per connection would be ~50`,
      );
    } finally {
      h.stop();
    }
    (await connectWhenFree(serve, GPU)).close();
  });

  it('pages it pinned with no open file (spliced into a pipe) keep the old bytes: the next client of another uid gets fresh memory', async () => {
    const h = await hold(serve.socket(GPU), 9, true);
    try {
      await pinWithNoFile(h); // no file left: the lease is free
      const c = await connectWhenFree(serve, GPU);
      try {
        await pinnedKeepsOldBytes(h, c);
      } finally {
        c.close();
      }
      await waitFor('the line saying so', () =>
        new RegExp(
          `${GPU}: region [0-9, ]*\\b9\\b[0-9, ]* moved to fresh memory for pid ${process.pid}: it was handed to uid ${NOBODY}`,
        ).test(serve.stderr()),
      );
    } finally {
      h.stop();
    }
  });

  it('the holder itself may open the device again; no other process may', async () => {
    const h = await hold(serve.socket(GPU), 9, true);
    try {
      assert.equal(await h.command('reconnect'), 'ok');
      await refused(serve, GPU);
    } finally {
      h.stop();
    }
    (await connectWhenFree(serve, GPU)).close(); // a killed holder lets go of everything
  });
});

describe('a server that cannot see the holder (serve not root)', { skip: notRoot }, () => {
  it('refuses the next client while a process it cannot inspect holds the memory', async () => {
    const SERVER = 65533; // neither the holder's uid nor ours: it cannot read the holder's /proc
    const dir = join(base, 'unprivileged');
    mkdirSync(dir);
    chmodSync(dir, 0o711); // as serve makes it with --allow-uid: the holder reaches the socket
    chownSync(dir, SERVER, SERVER);
    const plain = await startServe(['--allow-uid', String(NOBODY)], { dir, uid: SERVER });
    try {
      const h = await hold(plain.socket(GPU), 9, true);
      try {
        assert.equal(await h.command('close-fd'), 'closed');
        await refused(plain, GPU);
        assert.match(
          plain.stderr(),
          new RegExp(
            `refusing pid ${process.pid}: region 9 of ${GPU} is still held by a process this server cannot inspect \\(another uid's, or one not dumpable\\), and it went to other uids than the client's \\(0\\)`,
          ),
        );
        assert.equal(await h.command('unmap'), 'unmapped');
        (await connectWhenFree(plain, GPU)).close();
      } finally {
        h.stop();
      }
    } finally {
      await plain.stop();
    }
  });

  for (const [what, server] of [
    ['of another uid', 65533],
    ['of its own uid, not dumpable (it changed its uid: /proc/PID/fd is root-owned)', NOBODY],
  ] as const)
    it(`lets the holder ${what} reconnect: the memory went to no uid but its own`, async () => {
      const dir = join(base, `unprivileged-${server}`);
      mkdirSync(dir);
      chmodSync(dir, 0o711);
      chownSync(dir, server, server);
      const plain = await startServe(['--allow-uid', String(NOBODY)], { dir, uid: server });
      try {
        const h = await hold(plain.socket(GPU), 9, true);
        try {
          assert.equal(await h.command('close-fd'), 'closed');
          assert.equal(await h.command('reconnect'), 'ok', plain.stderr());
          await waitFor('the line letting it in', () =>
            /region 9 is also held by a process this server cannot inspect \(it went to no uid but the client's, 65534\), of the client's uid: let in/.test(
              plain.stderr(),
            ),
          );
          await refused(plain, GPU); // root's client: the memory went to uid 65534
        } finally {
          h.stop();
        }
      } finally {
        await plain.stop();
      }
    });
});

describe('a server that cannot see every holder (serve not root)', { skip: notRoot }, () => {
  it('does not take the holders it sees for all: one of another uid may hide behind them', async () => {
    const OTHER = 65533; // the hidden holder's uid; serve runs as NOBODY and cannot read its /proc
    const dir = join(base, 'unprivileged-hidden');
    mkdirSync(dir);
    chmodSync(dir, 0o711);
    chownSync(dir, NOBODY, NOBODY);
    const plain = await startServe(['--allow-uid', String(OTHER)], { dir, uid: NOBODY });
    let shown: ChildProcessWithoutNullStreams | undefined;
    try {
      const hidden = await hold(plain.socket(GPU), 9, true, OTHER);
      const client = await hold(plain.socket('0003:02:00.0'), 9, false, NOBODY);
      try {
        assert.equal(await hidden.command('close-fd'), 'closed'); // its mapping holds GPU RAM
        // A process of serve's uid that serve sees (dumpable: it did not change its uid) opens
        // the same memory through serve's own descriptor, as any process of that uid may.
        const fdDir = `/proc/${plain.pid}/fd`;
        const memfd = readdirSync(fdDir).find((n) =>
          readlinkSync(`${fdDir}/${n}`).startsWith(`/memfd:vfio-nvlink2:gpu-ram:${GPU}`),
        );
        assert.ok(memfd, "serve's GPU RAM memfd");
        shown = spawn(
          'python3',
          [
            '-c',
            'import sys,time; f=open(sys.argv[1],"rb"); print("open", flush=True); time.sleep(600)',
            `${fdDir}/${memfd}`,
          ],
          { stdio: 'pipe', uid: NOBODY, gid: NOBODY },
        );
        let said = '';
        shown.stdout.on('data', (d: Buffer) => {
          said += d.toString();
        });
        await waitFor('the shown holder open', () => said.includes('open') || undefined);
        assert.equal(
          await client.command(`reconnect ${plain.socket(GPU)}`),
          `errno ${EBUSY}`,
          'refused: the memory went to uid 65533, which may still hold it unseen',
        );
        assert.match(
          plain.stderr(),
          new RegExp(
            `region 9 of ${GPU} is still held by pid ${shown.pid} \\(fd \\d+\\), maybe also a process this server cannot inspect`,
          ),
        );
      } finally {
        hidden.stop();
        client.stop();
      }
    } finally {
      shown?.kill('SIGKILL');
      await plain.stop();
    }
  });
});

describe('an ATSD page two bridges share (5.7+: ibm,mmio-atsd[0] for a link past the list)', {
  skip: notRoot,
}, () => {
  it("pages pinned through one bridge keep the old bytes: the other bridge's next client gets fresh memory", async () => {
    const dtb = join(base, 'one-atsd.dtb');
    writeFileSync(dtb, serializeFdt(generateWitherspoon({ atsdEntries: 1 })));
    const shared = await startServe(['--dt', dtb, '--allow-uid', String(NOBODY)], {
      dir: join(base, 'one-atsd'),
    });
    try {
      // 0000:00:00.1's link index is past the one entry: it falls back to 0000:00:00.0's page.
      const h = await hold(shared.socket('0000:00:00.1'), 9, true);
      try {
        await pinWithNoFile(h);
        const c = await connectWhenFree(shared, '0000:00:00.0');
        try {
          await pinnedKeepsOldBytes(h, c);
        } finally {
          c.close();
        }
      } finally {
        h.stop();
      }
    } finally {
      await shared.stop();
    }
  });
});

describe("a holder of the client's own uid", () => {
  it('is let in, and the log says who holds what', async () => {
    const h = await hold(serve.socket(GPU), 9, true, null);
    try {
      const c = await connectWhenFree(serve, GPU);
      try {
        const got = await c.regionRead(9, 0x100n, 8);
        assert.equal(Buffer.from(got).readBigUInt64LE(0), MARKER);
      } finally {
        c.close();
      }
      await waitFor('the line naming the holder', () =>
        new RegExp(
          `${GPU}: region 9 is also held by pid ${h.pid} \\(fd ${h.fd}, a mapping\\), of the client's uid: let in`,
        ).test(serve.stderr()),
      );
    } finally {
      h.stop();
    }
  });
});

describe('memory a client of the last server kept (--state-dir)', { skip: notRoot }, () => {
  for (const [what, region] of [
    ['GPU RAM', 9],
    ['BAR1 (made lazily, so opened to be asked about)', 1],
  ] as const)
    it(`keeps the device across kill -9 and restart from another uid (${what}); its holder gets it back`, async () => {
      const state = join(base, `state-${region}`);
      const args = ['--state-dir', state, '--allow-uid', String(NOBODY)];
      const first = await startServe(args, { dir: join(base, `first-${region}`) });
      const h = await hold(first.socket(GPU), region, true);
      let second: ServeProcess | undefined;
      try {
        await first.stop('SIGKILL');
        second = await startServe(args, { dir: join(base, `second-${region}`) });
        await refused(second, GPU);
        assert.doesNotMatch(second.stderr(), /destroy context/, 'refused before the device opens');
        assert.match(
          second.stderr(),
          new RegExp(
            `region ${region} of ${GPU} is still held by pid ${h.pid} of uid ${NOBODY} \\(fd ${h.fd}, a mapping\\)`,
          ),
        );
        assert.equal(
          await h.command(`reconnect ${second.socket(GPU)}`),
          'ok',
          'the holder reconnects',
        );
        assert.equal(await h.command('close-fd'), 'closed');
        assert.equal(await h.command('unmap'), 'unmapped');
        const c = await connectWhenFree(second, GPU);
        try {
          const got = await c.regionRead(region, 0x100n, 8);
          assert.equal(
            Buffer.from(got).readBigUInt64LE(0),
            MARKER,
            'written through the mapping before the kill',
          );
        } finally {
          c.close();
        }
      } finally {
        h.stop();
        await second?.stop();
      }
    });
});

/** Rewrites DIR/machine.state as a server that kept no record of the uids would have written it. */
function dropGivenRecord(state: string): void {
  const path = join(state, 'machine.state');
  const body = decodeStateFile(path, 'machine', readFileSync(path)) as Record<string, unknown>;
  assert.ok(body.given !== undefined, 'machine.state records the uids the memory went to');
  delete body.given;
  writeFileSync(path, encodeStateFile('machine', body));
}

describe('pages a client of the last server pinned with no open file (--state-dir)', {
  skip: notRoot,
}, () => {
  for (const [what, older, to] of [
    ['machine.state names its uid', false, `uid ${NOBODY}`],
    [
      'machine.state of a server that kept no uids (they are not known)',
      true,
      'clients of the last server',
    ],
  ] as const)
    it(`keep the old bytes: the first client after kill -9 and restart gets fresh memory (${what})`, async () => {
      const state = join(base, `state-pinned-${older}`);
      const args = ['--state-dir', state, '--allow-uid', String(NOBODY)];
      const first = await startServe(args, { dir: join(base, `pinned-first-${older}`) });
      const h = await hold(first.socket(GPU), 9, true);
      let second: ServeProcess | undefined;
      try {
        await pinWithNoFile(h);
        await first.stop('SIGKILL');
        if (older) dropGivenRecord(state);
        second = await startServe(args, { dir: join(base, `pinned-second-${older}`) });
        const c = await connectWhenFree(second, GPU);
        try {
          await pinnedKeepsOldBytes(h, c);
        } finally {
          c.close();
        }
        await waitFor('the line saying so', () =>
          new RegExp(
            `region [0-9, ]*\\b9\\b[0-9, ]* moved to fresh memory for pid \\d+: it was handed to ${to}`,
          ).test(second?.stderr() ?? ''),
        );
      } finally {
        h.stop();
        await second?.stop();
      }
    });

  it("of the next client's own uid stay its memory: the restart knows the uid (no copy)", async () => {
    const state = join(base, 'state-pinned-own');
    const args = ['--state-dir', state];
    const first = await startServe(args, { dir: join(base, 'pinned-own-first') });
    const h = await hold(first.socket(GPU), 9, true, null);
    let second: ServeProcess | undefined;
    try {
      await pinWithNoFile(h);
      await first.stop('SIGKILL');
      second = await startServe(args, { dir: join(base, 'pinned-own-second') });
      const c = await connectWhenFree(second, GPU);
      try {
        const secret = Buffer.alloc(8);
        secret.writeBigUInt64LE(0x5ec2e75ec2e75ec2n);
        await c.regionWrite(9, 0x100n, secret);
        const seen = Buffer.from(await h.command('pipe'), 'hex').readBigUInt64LE(0);
        assert.equal(seen, 0x5ec2e75ec2e75ec2n, 'the pinned page is still the memory: not copied');
      } finally {
        c.close();
      }
      assert.doesNotMatch(second.stderr(), /moved to fresh memory/);
    } finally {
      h.stop();
      await second?.stop();
    }
  });
});

describe('a renew that a kill -9 interrupted (--state-dir)', () => {
  it('leaves a copy the next start removes, with a line; the memory file is whole', async () => {
    const state = join(base, 'state-renew-left');
    const first = await startServe(['--state-dir', state], { dir: join(base, 'renew-first') });
    const c = await connectWhenFree(first, GPU);
    const marker = Buffer.alloc(8);
    marker.writeBigUInt64LE(MARKER);
    await c.regionWrite(9, 0x100n, marker);
    c.close();
    await first.stop('SIGKILL');
    const memory = join(state, 'memory');
    const left = readdirSync(memory).find((n) => n.startsWith('gpu-ram_'));
    assert.ok(left, `a GPU RAM file in ${memory}`);
    const copy = join(memory, `${left}.renew-0123456789ab`);
    writeFileSync(copy, 'half a copy');
    const second = await startServe(['--state-dir', state], { dir: join(base, 'renew-second') });
    try {
      assert.equal(existsSync(copy), false, 'the copy is gone');
      assert.match(
        second.stderr(),
        /renew-0123456789ab: removed \(a copy an interrupted renew left\)/,
      );
      const d = await connectWhenFree(second, GPU);
      try {
        assert.equal(Buffer.from(await d.regionRead(9, 0x100n, 8)).readBigUInt64LE(0), MARKER);
      } finally {
        d.close();
      }
    } finally {
      await second.stop();
    }
  });
});

/** The uids machine.state in `state` says each memory went to. */
function givenUids(state: string): Record<string, number[]> {
  const path = join(state, 'machine.state');
  const body = decodeStateFile(path, 'machine', readFileSync(path)) as {
    given?: { uids: Record<string, number[]> };
  };
  return body.given?.uids ?? {};
}

/** chattr(1) +i/-i on `dir` (no file can be made in it, not even by root); false if it cannot. */
function immutable(dir: string, on: boolean): boolean {
  return spawnSync('chattr', [on ? '+i' : '-i', dir], { stdio: 'ignore' }).status === 0;
}

describe('a state directory that cannot record who the memory went to', { skip: notRoot }, () => {
  it('keeps the region from a new uid (no fd: REGION_READ still serves it) until machine.state is written', async (t) => {
    const state = join(base, 'state-unwritable');
    const own = await startServe(['--state-dir', state], { dir: join(base, 'unwritable') });
    try {
      if (!immutable(state, true)) {
        t.skip('chattr +i is not available here');
        return;
      }
      try {
        const c = await connectWhenFree(own, GPU);
        try {
          const info = await c.regionInfo(9);
          assert.equal(info.fd, null, 'no descriptor of GPU RAM went out');
          await c.regionWrite(9, 0x40n, Uint8Array.of(1, 2, 3));
          assert.deepEqual(new Uint8Array(await c.regionRead(9, 0x40n, 3)), Uint8Array.of(1, 2, 3));
        } finally {
          c.close();
        }
        assert.match(
          own.stderr(),
          /region 9 is not mapped: EIO: memory \S+ cannot go to uid 0: the state directory could not record it/,
        );
        assert.ok(
          Object.values(givenUids(state)).every((uids) => !uids.includes(0)),
          'machine.state names no uid that holds a descriptor',
        );
      } finally {
        immutable(state, false);
      }
      const d = await connectWhenFree(own, GPU);
      try {
        const info = await d.regionInfo(9);
        assert.notEqual(info.fd, null, 'written now: the descriptor goes out');
        if (info.fd !== null) closeFd(info.fd);
      } finally {
        d.close();
      }
      assert.ok(
        Object.values(givenUids(state)).some((uids) => uids.includes(0)),
        'machine.state names uid 0',
      );
    } finally {
      await own.stop();
    }
  });
});

describe('the look through /proc for who holds the memory', { skip: notRoot }, () => {
  it("runs off the event loop: another device's client gets REGION_READ replies until the refused VERSION is answered", async () => {
    // A server of its own: no look of another test answers for this one (they last 1 s).
    const own = await startServe(['--allow-uid', String(NOBODY)], { dir: join(base, 'looks') });
    const h = await hold(own.socket(GPU), 9, true);
    const other = await connectWhenFree(own, '0003:02:00.0');
    try {
      const { answer, replies } = await versionWhileOtherReads(own.socket(GPU), other);
      assert.equal(answer?.errno, EBUSY, `VERSION answered ${JSON.stringify(answer)}`);
      // Each read is sent once the last is answered: a server held by the look answers none
      // of them until it has answered the VERSION (the one it may have read first, at most).
      assert.ok(replies >= 3, `${replies} REGION_READ round trips while the look ran`);
      assert.match(own.stderr(), new RegExp(`still held by pid ${h.pid} of uid ${NOBODY}`));
    } finally {
      other.close();
      h.stop();
      await own.stop();
    }
  });

  it('a client gone while its look runs leaves nothing: no open device, no partition, no fd', async () => {
    const own = await startServe(['--allow-uid', String(NOBODY)], {
      dir: join(base, 'looks-gone'),
    });
    const h = await hold(own.socket(GPU), 9, true);
    try {
      const before = own.fdCount();
      versionAndLeave(own.socket(GPU));
      await waitFor('the server back to its descriptors', () => own.fdCount() === before);
      // The holder lets go: the next client is let in, and once it leaves no partition is left
      // (a gone client's VERSION handled after its look would have opened the device for good).
      assert.equal(await h.command('close-fd'), 'closed');
      assert.equal(await h.command('unmap'), 'unmapped');
      (await connectWhenFree(own, GPU)).close();
      await waitFor('no partition left', () => own.state().partitions.length === 0);
      assert.doesNotMatch(own.stderr(), /internal error|release failed/);
    } finally {
      h.stop();
      await own.stop();
    }
  });
});

describe('a renew of GPU RAM that went to another uid', { skip: notRoot }, () => {
  it("runs off the event loop: another device's client gets REGION_READ replies while it copies; the memory reads back the same through REGION_READ and a new mapping", async () => {
    const own = await startServe(['--allow-uid', String(NOBODY)], { dir: join(base, 'renews') });
    const MIB = 1 << 20;
    const filled = 96; // MiB populated: copy steps of 1 MiB, seconds per GiB
    const h = await hold(own.socket(GPU), 9, false);
    const other = await connectWhenFree(own, '0003:02:00.0');
    try {
      assert.equal(await h.command(`fill ${filled}`), 'filled');
      assert.equal(await h.command('close-fd'), 'closed'); // nothing holds it: it is renewed
      const { answer, replies } = await versionWhileOtherReads(own.socket(GPU), other);
      assert.equal(answer?.errno, 0, `VERSION answered ${JSON.stringify(answer)}`);
      // Each read is sent once the last is answered: a server copying on its event loop
      // answers none of them until it has answered the VERSION (at most the one read first).
      assert.ok(replies >= 3, `${replies} REGION_READ round trips while the renew ran`);
      await waitFor('the line saying so', () =>
        new RegExp(
          `${GPU}: region [0-9, ]*\\b9\\b[0-9, ]* moved to fresh memory for pid ${process.pid}: it was handed to uid ${NOBODY}`,
        ).test(own.stderr()),
      );
      const expected = (at: number, length: number): Uint8Array =>
        Uint8Array.from({ length }, (_, i) => (Math.floor((at + i) / MIB) + at + i) & 0xff);
      const d = await connectWhenFree(own, GPU);
      try {
        const ram = await d.mapRegion(9);
        try {
          for (const at of [0, MIB - 8, 37 * MIB + 4093, (filled - 1) * MIB, filled * MIB - 64]) {
            const length = 64;
            const wire = await d.regionRead(9, BigInt(at), length);
            assert.deepEqual(new Uint8Array(wire), expected(at, length), `REGION_READ at ${at}`);
            assert.deepEqual(ram.read(BigInt(at), length), expected(at, length), `mapped at ${at}`);
          }
          const past = await d.regionRead(9, BigInt(filled * MIB), 8);
          assert.deepEqual(new Uint8Array(past), new Uint8Array(8), 'a hole stays zeros');
        } finally {
          ram.unmap();
        }
      } finally {
        d.close();
      }
      assert.doesNotMatch(own.stderr(), /internal error|release failed/);
    } finally {
      other.close();
      h.stop();
      await own.stop();
    }
  });

  it('a client gone while it copies (--state-dir) leaves nothing: no fd, no partition, no copy file; the next client reads the bytes', async () => {
    const state = join(base, 'state-renew-gone');
    const own = await startServe(['--state-dir', state, '--allow-uid', String(NOBODY)], {
      dir: join(base, 'renews-gone'),
    });
    const h = await hold(own.socket(GPU), 9, false);
    try {
      assert.equal(await h.command('fill 64'), 'filled');
      assert.equal(await h.command('close-fd'), 'closed');
      const handed = (): boolean => Object.values(givenUids(state)).some((u) => u.includes(NOBODY));
      await waitFor('machine.state saying it went to uid 65534', handed);
      const before = own.fdCount();
      versionAndLeave(own.socket(GPU));
      // The copy finished and went in (the memory is fresh: it went to no uid since).
      await waitFor('machine.state saying it was renewed', () => !handed());
      await waitFor('the server back to its descriptors', () => own.fdCount() === before);
      await waitFor('no partition left', () => own.state().partitions.length === 0);
      const memory = join(state, 'memory');
      assert.deepEqual(
        readdirSync(memory).filter((n) => n.includes('.renew-')),
        [],
        `no copy left in ${memory}`,
      );
      const d = await connectWhenFree(own, GPU);
      try {
        const at = 63 * (1 << 20) + 5;
        const back = new Uint8Array(await d.regionRead(9, BigInt(at), 4));
        assert.deepEqual(
          back,
          Uint8Array.from({ length: 4 }, (_, i) => (63 + at + i) & 0xff),
        );
      } finally {
        d.close();
      }
      assert.doesNotMatch(own.stderr(), /internal error|release failed/);
    } finally {
      h.stop();
      await own.stop();
    }
  });
});

describe('inspect --socket-dir while one device is held', { skip: notRoot }, () => {
  it('reports EBUSY on its line and still describes the others (text and --json), exit 1', async () => {
    const h = await hold(serve.socket(GPU), 9, true);
    try {
      const text = runCli(['inspect', '--socket-dir', serve.dir]);
      assert.equal(text.status, 1, text.stderr);
      assert.match(
        text.stdout,
        new RegExp(
          `^${GPU}  not described: \\S+${GPU}\\.sock: VFIO_USER_VERSION \\(msg 0\\) failed: EBUSY; the device is in use`,
          'm',
        ),
      );
      assert.match(text.stdout, /^0003:02:00\.0 {2}Tesla V100/m, 'the next GPU is described');
      assert.match(text.stdout, new RegExp(`^${BRIDGE} {2}NPU2 NVLink bridge`, 'm'));
      assert.match(text.stderr, /^vfio-nvlink2: inspect: EBUSY: /m);
      const json = runCli(['inspect', '--socket-dir', serve.dir, '--json']);
      assert.equal(json.status, 1, json.stderr);
      const entries = JSON.parse(json.stdout) as { name: string; error?: { code: string } }[];
      assert.equal(entries.length, 18);
      assert.deepEqual(
        entries.filter((e) => e.error !== undefined).map((e) => [e.name, e.error?.code]),
        [[GPU, 'EBUSY']],
      );
    } finally {
      h.stop();
    }
    (await connectWhenFree(serve, GPU)).close();
  });
});
