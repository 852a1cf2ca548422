/**
 * A Session driven in process over a socketpair(2): the server's dispatch and handlers behind
 * the MessageTransport seam (a wire Connection on each end of the pair), no spawned `serve`.
 * Requests are packed by hand (test/support/frames.ts) and replies compared byte for byte; the
 * partition policy is the test's own, as the server is given it from outside.
 */
import assert from 'node:assert/strict';
import { fstatSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import {
  FLAG_ERROR,
  FLAG_REPLY,
  frame,
  pack,
  QEMU_VERSION_JSON,
  versionPayload,
} from '../../../test/support/frames.ts';
import {
  buildFakeHost,
  fakeFunction,
  fakeVariant,
} from '../../../test/support/nvlink2/fake-host.ts';
import { closeFd, socketPair } from '../../native/index.ts';
import { VfioPciDevice } from '../../vfio/index.ts';
import {
  type CloseReason,
  Command,
  Connection,
  type FramedMessage,
  messageSizeLimit,
} from '../wire/index.ts';
import type { PartitionPolicy } from './partition-policy.ts';
import { SERVER_FRAMER_LIMITS, Session } from './session.ts';

const host = buildFakeHost();
/**
 * A V100 as the core sees it with the NVLink2 profile (its BARs) and no hooks (no GPU RAM or
 * ATSD region): 9 regions, 5 IRQ indexes, config space region 7.
 */
const device = new VfioPciDevice(fakeFunction(host, 0x1db1), host, fakeVariant(host));
after(() => device.dispose());

const CONFIG = 7;
const LPID = 7;
const EINVAL = 22;
const ENOTTY = 25;
const EFAULT = 14;

interface Pair {
  /** Sends `bytes` as they are; resolves with the next message from the server. */
  ask(bytes: Uint8Array): Promise<FramedMessage>;
  /** Sends `bytes` as they are; nothing comes back. */
  post(bytes: Uint8Array): void;
  close(): void;
  /** What the partition policy was asked, in order. */
  readonly calls: string[];
  readonly logs: string[];
  /** Resolves once the session has released everything. */
  readonly released: Promise<void>;
  /** Resolves when the client's end sees the connection close. */
  readonly clientClosed: Promise<CloseReason>;
}

/** A session on one end of a socketpair, a client Connection on the other. */
function sessionPair(): Pair {
  const [serverFd, clientFd] = socketPair();
  const calls: string[] = [];
  const policy: PartitionPolicy = {
    acquire: (pid, name) => {
      calls.push(`acquire ${pid} ${name}`);
      return LPID;
    },
    release: (pid, name) => {
      calls.push(`release ${pid} ${name}`);
    },
  };
  const logs: string[] = [];
  let onReleased = () => {};
  const released = new Promise<void>((resolve) => {
    onReleased = resolve;
  });
  let session: Session | undefined;
  const transport = new Connection(
    serverFd,
    {
      onMessage: (m) => session?.handleMessage(m),
      placeBody: (h) => session?.placeBody(h) ?? null,
      onClose: (r) => session?.handleClose(r),
    },
    SERVER_FRAMER_LIMITS,
  );
  session = new Session(transport, {
    device,
    partitions: policy,
    peerPid: process.pid,
    log: (line) => logs.push(line),
    onClosed: () => onReleased(),
  });

  const inbox: FramedMessage[] = [];
  const waiting: { resolve: (m: FramedMessage) => void; reject: (e: Error) => void }[] = [];
  let onClientClosed: (r: CloseReason) => void = () => {};
  const clientClosed = new Promise<CloseReason>((resolve) => {
    onClientClosed = resolve;
  });
  const client = new Connection(
    clientFd,
    {
      onMessage: (m) => {
        const w = waiting.shift();
        if (w) w.resolve(m);
        else inbox.push(m);
      },
      onClose: (r) => {
        // Every wait ends with the connection: a reply that never comes fails the test.
        for (const w of waiting.splice(0)) w.reject(new Error(`connection closed (${r.kind})`));
        onClientClosed(r);
      },
    },
    { maxMessageSize: messageSizeLimit(1 << 20), maxFds: 16 },
  );
  const next = () =>
    inbox.length > 0
      ? Promise.resolve(inbox.shift() as FramedMessage)
      : new Promise<FramedMessage>((resolve, reject) => {
          if (client.closed) reject(new Error('connection closed'));
          else waiting.push({ resolve, reject });
        });
  return {
    ask: (bytes) => {
      client.sendRaw(bytes);
      return next();
    },
    post: (bytes) => client.sendRaw(bytes),
    close: () => client.close(),
    calls,
    logs,
    released,
    clientClosed,
  };
}

/** The reply's header as [msgId, command, size, flags, errno]. */
const headerOf = (m: FramedMessage) => [
  m.header.msgId,
  m.header.command,
  m.header.size,
  m.header.flags,
  m.header.errno,
];
const payloadOf = (m: FramedMessage) => new Uint8Array(m.payload);

async function negotiated(): Promise<Pair> {
  const p = sessionPair();
  const m = await p.ask(frame(1, Command.VERSION, versionPayload(0, 0, QEMU_VERSION_JSON)));
  assert.equal(m.header.flags, FLAG_REPLY, `VERSION failed: ${p.logs.join('; ')}`);
  return p;
}

async function regionRead(p: Pair, msgId: number, offset: bigint, count: number) {
  const m = await p.ask(frame(msgId, Command.REGION_READ, pack(offset, CONFIG, count)));
  assert.deepEqual(headerOf(m), [msgId, Command.REGION_READ, 16 + 16 + count, FLAG_REPLY, 0]);
  assert.deepEqual(payloadOf(m).subarray(0, 16), pack(offset, CONFIG, count));
  return payloadOf(m).slice(16);
}

describe('Session in process over a socketpair', { timeout: 120_000 }, () => {
  it('VERSION: the reply, the device opened with the LPID the policy gave, released at close', async () => {
    const p = sessionPair();
    try {
      const m = await p.ask(frame(1, Command.VERSION, versionPayload(0, 0, QEMU_VERSION_JSON)));
      assert.deepEqual(headerOf(m).slice(0, 2), [1, Command.VERSION]);
      assert.deepEqual(headerOf(m).slice(3), [FLAG_REPLY, 0]);
      const payload = payloadOf(m);
      assert.deepEqual(payload.subarray(0, 4), pack(['u16', 0], ['u16', 0]), 'major 0, minor 0');
      assert.equal(payload.at(-1), 0, 'the JSON ends with NUL');
      const json = JSON.parse(new TextDecoder().decode(payload.subarray(4, -1)));
      assert.equal(json.capabilities.max_msg_fds, 16);
      assert.equal(json.capabilities.max_data_xfer_size, 1 << 20);
      assert.deepEqual(p.calls, [`acquire ${process.pid} ${device.name}`]);
      assert.equal(device.isOpen, true);
      assert.equal(device.kvm, LPID, 'KVM set with the LPID the policy gave');
    } finally {
      p.close();
    }
    await p.released;
    assert.deepEqual(p.calls, [
      `acquire ${process.pid} ${device.name}`,
      `release ${process.pid} ${device.name}`,
    ]);
    assert.equal(device.isOpen, false);
    assert.equal(device.kvm, undefined);
  });

  it('DEVICE_GET_INFO: argsz 16, flags PCI|RESET, 9 regions, 5 IRQ indexes', async () => {
    const p = await negotiated();
    try {
      const m = await p.ask(frame(2, Command.DEVICE_GET_INFO, pack(16, 0, 0, 0)));
      assert.deepEqual(headerOf(m), [2, Command.DEVICE_GET_INFO, 32, FLAG_REPLY, 0]);
      assert.deepEqual(payloadOf(m), pack(16, 0x3, 9, 5));
    } finally {
      p.close();
    }
    await p.released;
  });

  it("DEVICE_GET_REGION_INFO: the kernel's struct with the protocol's three changes", async () => {
    const p = await negotiated();
    const fds: number[] = [];
    try {
      const RW = 0x1 | 0x2;
      const MMAP = 0x4;
      const CAPS = 0x8;
      // Config space: no caps, no fd, the kernel's index << 40 as offset.
      const config = await p.ask(
        frame(2, Command.DEVICE_GET_REGION_INFO, pack(32, 0, CONFIG, 0, 0n, 0n)),
      );
      assert.deepEqual(headerOf(config), [2, Command.DEVICE_GET_REGION_INFO, 48, FLAG_REPLY, 0]);
      assert.deepEqual(payloadOf(config), pack(32, RW, CONFIG, 0, 4096n, 7n << 40n));
      assert.deepEqual(config.fds, []);
      // BAR0 asked with argsz 32: its SPARSE_MMAP and MSIX_MAPPABLE caps do not fit; argsz
      // names what does, CAPS is cleared (nothing follows), and no fd comes without the caps.
      const short = await p.ask(
        frame(3, Command.DEVICE_GET_REGION_INFO, pack(32, 0, 0, 0, 0n, 0n)),
      );
      assert.deepEqual(payloadOf(short), pack(72, RW | MMAP, 0, 0, 16n << 20n, 0n));
      assert.deepEqual(short.fds, []);
      // BAR0 with room: argsz is the reply's size (not the caller's 1024), the chain follows at
      // 32 (SPARSE_MMAP: id 1, version 1, next 64, one area past NV_PMC_BOOT_0's page and
      // short of the doorbell page; MSIX_MAPPABLE: id 3, version 1, next 0), and the fd comes
      // with its mmap offset.
      const full = await p.ask(
        frame(4, Command.DEVICE_GET_REGION_INFO, pack(1024, 0, 0, 0, 0n, 0n)),
      );
      fds.push(...full.fds);
      assert.deepEqual(headerOf(full), [4, Command.DEVICE_GET_REGION_INFO, 88, FLAG_REPLY, 0]);
      assert.deepEqual(
        payloadOf(full),
        pack(
          72,
          RW | MMAP | CAPS,
          0,
          32,
          16n << 20n,
          0n,
          ['u16', 1],
          ['u16', 1],
          64,
          1,
          0,
          0x1000n,
          0xffe000n,
          ['u16', 3],
          ['u16', 1],
          0,
        ),
      );
      assert.equal(full.fds.length, 1, 'the BAR memory fd');
      assert.equal(fstatSync(full.fds[0] as number).size, 16 << 20);
    } finally {
      for (const fd of fds) closeFd(fd);
      p.close();
    }
    await p.released;
  });

  it('REGION_WRITE then REGION_READ of config space; DEVICE_RESET restores its bytes', async () => {
    const p = await negotiated();
    try {
      const header = await regionRead(p, 2, 0n, 0x40);
      assert.deepEqual(header.subarray(0, 4), Uint8Array.of(0xde, 0x10, 0xb1, 0x1d), '10de:1db1');
      assert.deepEqual(header.subarray(4, 6), Uint8Array.of(0, 0), 'COMMAND at reset');

      const w = await p.ask(
        frame(3, Command.REGION_WRITE, pack(4n, CONFIG, 2, ['bytes', Uint8Array.of(0x06, 0)])),
      );
      assert.deepEqual(headerOf(w), [3, Command.REGION_WRITE, 32, FLAG_REPLY, 0]);
      assert.deepEqual(payloadOf(w), pack(4n, CONFIG, 2));
      assert.deepEqual(await regionRead(p, 4, 4n, 2), Uint8Array.of(0x06, 0x00), 'MEMORY|MASTER');

      const r = await p.ask(frame(5, Command.DEVICE_RESET));
      assert.deepEqual(headerOf(r), [5, Command.DEVICE_RESET, 16, FLAG_REPLY, 0]);
      assert.deepEqual(await regionRead(p, 6, 0n, 0x40), header, 'the header as it was');
    } finally {
      p.close();
    }
    await p.released;
  });

  it('bad requests get their errno as a header-only error reply, and the session goes on', async () => {
    const p = await negotiated();
    try {
      const cases: [string, Uint8Array, number][] = [
        ['unknown command 0xffff', frame(0x10, 0xffff), EINVAL],
        ['command 14 (unassigned)', frame(0x11, 14), EINVAL],
        ['DMA_READ goes server to client', frame(0x12, Command.DMA_READ, pack(0n, 8n)), EINVAL],
        ['REGION_READ of 12 bytes', frame(0x13, Command.REGION_READ, pack(0n, CONFIG)), EINVAL],
        ['DEVICE_RESET with a payload', frame(0x14, Command.DEVICE_RESET, pack(1)), EINVAL],
        ['a second VERSION', frame(0x15, Command.VERSION, versionPayload(0, 0, null)), EINVAL],
        [
          'REGION_READ past config space',
          frame(0x16, Command.REGION_READ, pack(0x1000n, CONFIG, 4)),
          EFAULT,
        ],
        ['DEVICE_FEATURE probe', frame(0x17, Command.DEVICE_FEATURE, pack(8, 1 << 16)), ENOTTY],
      ];
      for (const [what, bytes, errno] of cases) {
        const m = await p.ask(bytes);
        const msgId = new DataView(bytes.buffer).getUint16(0, true);
        const command = new DataView(bytes.buffer).getUint16(2, true);
        assert.deepEqual(headerOf(m), [msgId, command, 16, FLAG_REPLY | FLAG_ERROR, errno], what);
      }
      assert.ok(
        p.logs.some((l) => /REGION_READ \(msg 22\): EFAULT: .*past its end/.test(l)),
        p.logs.join('\n'),
      );
      const m = await p.ask(frame(0x20, Command.DEVICE_GET_INFO, pack(16, 0, 0, 0)));
      assert.deepEqual(payloadOf(m), pack(16, 0x3, 9, 5));
    } finally {
      p.close();
    }
    await p.released;
  });

  it('a command before VERSION is EINVAL and opens nothing', async () => {
    const p = sessionPair();
    try {
      const m = await p.ask(frame(9, Command.DEVICE_GET_INFO, pack(16, 0, 0, 0)));
      assert.deepEqual(headerOf(m), [9, Command.DEVICE_GET_INFO, 16, FLAG_REPLY | FLAG_ERROR, 22]);
      assert.deepEqual(p.calls, []);
      assert.equal(device.isOpen, false);
    } finally {
      p.close();
    }
    await p.released;
    assert.deepEqual(p.calls, []);
  });

  it('a header under 16 bytes ends only that connection, with one log line, and releases', async () => {
    const p = await negotiated();
    p.post(frame(0x30, Command.DEVICE_GET_INFO, new Uint8Array(0), { size: 8 }));
    assert.equal((await p.clientClosed).kind, 'eof');
    await p.released;
    assert.equal(device.isOpen, false);
    assert.equal(p.calls.at(-1), `release ${process.pid} ${device.name}`);
    assert.ok(
      p.logs.some((l) => l.includes(`closing the connection of pid ${process.pid}`)),
      p.logs.join('\n'),
    );
  });
});
