/**
 * The descriptors SET_IRQS takes over the wire (vfio-user.rst "VFIO_USER_DEVICE_SET_IRQS":
 * eventfds as SCM_RIGHTS): only eventfds, as the kernel's eventfd_ctx_fdget() allows (EINVAL
 * for anything else), and only with DATA_EVENTFD — fds sent with DATA_NONE or DATA_BOOL are
 * closed, not kept. Both found by the fuzzer (src/fuzz): a directory as "eventfd" made the next
 * interrupt an internal error (EIO), a socket or memfd received the interrupt's 8 bytes, and
 * fds beside DATA_BOOL stayed open in the server for good. And an interrupt never waits for
 * the client (fs/eventfd.c eventfd_signal): a blocking eventfd left full hung every device at
 * the next interrupt (found by the fuzzer too).
 */
import assert from 'node:assert/strict';
import { openSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import {
  closeFd,
  eventfdCreate,
  eventfdRead,
  eventfdWrite,
  memfdCreate,
  socketPair,
} from '../src/native/index.ts';
import { IrqSetFlag, ReplyError, VfioUserClient } from '../src/vfio-user/index.ts';
import {
  BRIDGE,
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';

let serve: ServeProcess;

/** What `pid`'s descriptors point at (readlink of /proc/PID/fd/N), counted per target. */
function targets(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const t = readlinkSync(`/proc/${pid}/fd/${fd}`);
      out.set(t, (out.get(t) ?? 0) + 1);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Whether serve holds no more descriptors of `fds`' targets than it did in `before`. */
function keepsNoneOf(fds: readonly number[], before: Map<string, number>): boolean {
  const now = targets(serve.pid);
  return fds.every((fd) => {
    const t = readlinkSync(`/proc/self/fd/${fd}`);
    return (now.get(t) ?? 0) <= (before.get(t) ?? 0);
  });
}
let gpu: VfioUserClient;
before(async () => {
  serve = await startServe();
  gpu = await connectWhenFree(serve, GPU);
  // BAR0's memory is created on first use (past page 0, which holds registers): before any fd count
  await gpu.regionRead(0, 0x1000n, 4);
});
after(async () => {
  gpu.close();
  await serve.stop();
});

const ERR = 3;
const REQ = 4;
const TRIGGER_EVENTFD = IrqSetFlag.DATA_EVENTFD | IrqSetFlag.ACTION_TRIGGER;
const einval = (e: unknown) => e instanceof ReplyError && e.remoteErrno === 22;

describe('SET_IRQS descriptors', () => {
  it('refuses what is not an eventfd with EINVAL and keeps none of it', async () => {
    const [sock, peer] = socketPair();
    const kinds: [string, number][] = [
      ['a directory', openSync(tmpdir(), 'r')],
      ['a memfd', memfdCreate('not-an-eventfd', 4096n)],
      ['a socket', sock],
      ['/dev/null', openSync('/dev/null', 'r+')],
    ];
    // By target, not by count: serve's other descriptors come and go (its timers, other tests'
    // clients), which a count cannot tell from a kept one.
    const before = targets(serve.pid);
    try {
      for (const [what, fd] of kinds) {
        await assert.rejects(
          gpu.setIrqs({ index: ERR, count: 1, flags: TRIGGER_EVENTFD, eventfds: [fd] }),
          einval,
          what,
        );
      }
      // Bounded wait, not one look: a timer of serve may hold a descriptor for an instant.
      await waitFor('every refused descriptor closed', () =>
        keepsNoneOf(
          kinds.map(([, fd]) => fd),
          before,
        ),
      );
      // An eventfd is still taken, and the loopback trigger reaches it.
      const efd = eventfdCreate(0, { nonBlocking: true });
      try {
        await gpu.setIrqs({ index: ERR, count: 1, flags: TRIGGER_EVENTFD, eventfds: [efd] });
        await gpu.setIrqs({
          index: ERR,
          count: 1,
          flags: IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_TRIGGER,
        });
        assert.equal(eventfdRead(efd), 1n);
        await gpu.setIrqs({
          index: ERR,
          count: 0,
          flags: IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_TRIGGER,
        });
        await waitFor('the eventfd given back', () => keepsNoneOf([efd], before));
      } finally {
        closeFd(efd);
      }
    } finally {
      for (const [, fd] of kinds) closeFd(fd);
      closeFd(peer);
    }
  });

  it('closes fds sent with DATA_BOOL or DATA_NONE instead of keeping them', async () => {
    const before = serve.fdCount();
    const efd = eventfdCreate(0, { nonBlocking: true });
    try {
      const bool = IrqSetFlag.DATA_BOOL | IrqSetFlag.ACTION_TRIGGER;
      await gpu.setIrqs({
        index: REQ,
        count: 1,
        flags: bool,
        data: Uint8Array.of(0),
        eventfds: [efd],
      });
      const none = IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_TRIGGER;
      await gpu.setIrqs({ index: REQ, count: 1, flags: none, eventfds: [efd] });
      await waitFor('the descriptors given back', () => serve.fdCount() === before);
    } finally {
      closeFd(efd);
    }
  });

  it('an eventfd the client left full and blocking: the interrupt saturates, nothing waits', async () => {
    // The largest counter write(2) allows; one more would wait for the client to read.
    const FULL = 0xffff_ffff_ffff_fffen;
    const MSIX = 2;
    const none = IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_TRIGGER;
    const efd = eventfdCreate(0); // blocking, as a client may leave it
    // A hung server answers nothing: each wait for a reply ends (ETIMEDOUT) instead.
    const client = await VfioUserClient.connect(serve.socket(BRIDGE), { replyTimeoutMs: 20_000 });
    try {
      eventfdWrite(efd, FULL);
      await gpu.setIrqs({ index: ERR, count: 1, flags: TRIGGER_EVENTFD, eventfds: [efd] });
      const trigger = gpu.setIrqs({ index: ERR, count: 1, flags: none });
      // Another device is served meanwhile (a server blocked in write(2) serves none).
      await client.getDeviceInfo();
      await trigger;
      assert.equal(eventfdRead(efd), FULL, 'the counter saturated: nothing added, nothing lost');
      await gpu.setIrqs({ index: ERR, count: 1, flags: none });
      assert.equal(eventfdRead(efd), 1n, 'once read, the next interrupt counts again');
      await gpu.setIrqs({ index: ERR, count: 0, flags: none });

      // The device's own interrupt (the doorbell raises an MSI-X vector) saturates the same way.
      const doorbell = (await gpu.getRegionInfo(0)).info.size - 0x1000n;
      await gpu.setIrqs({ index: MSIX, count: 1, flags: TRIGGER_EVENTFD, eventfds: [efd] });
      eventfdWrite(efd, FULL);
      await gpu.regionWrite(0, doorbell, new Uint8Array(4)); // ring vector 0
      await client.getDeviceInfo();
      assert.equal(eventfdRead(efd), FULL);
      await gpu.setIrqs({ index: MSIX, count: 0, flags: none });
    } finally {
      eventfdRead(efd); // a server stuck in write(2) (the fault) is released by this read
      client.close();
      closeFd(efd);
    }
  });
});
