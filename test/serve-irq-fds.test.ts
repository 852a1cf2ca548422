/**
 * The descriptors SET_IRQS takes over the wire (vfio-user.rst "VFIO_USER_DEVICE_SET_IRQS":
 * eventfds as SCM_RIGHTS): only eventfds, as the kernel's eventfd_ctx_fdget() allows (EINVAL
 * for anything else), and only with DATA_EVENTFD — fds sent with DATA_NONE or DATA_BOOL are
 * closed, not kept. Both found by the fuzzer (src/fuzz): a directory as "eventfd" made the next
 * interrupt an internal error (EIO), a socket or memfd received the interrupt's 8 bytes, and
 * fds beside DATA_BOOL stayed open in the server for good.
 */
import assert from 'node:assert/strict';
import { openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import {
  closeFd,
  eventfdCreate,
  eventfdRead,
  memfdCreate,
  socketPair,
} from '../src/native/index.ts';
import type { VfioUserClient } from '../src/vfio-user/index.ts';
import { IrqSetFlag, ReplyError } from '../src/vfio-user/index.ts';
import { connectWhenFree, GPU, type ServeProcess, startServe } from './support/serve-process.ts';

let serve: ServeProcess;
let gpu: VfioUserClient;
before(async () => {
  serve = await startServe();
  gpu = await connectWhenFree(serve, GPU);
  await gpu.regionRead(0, 0n, 4); // BAR0's memory is created on first use: before any fd count
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
    const before = serve.fdCount();
    try {
      for (const [what, fd] of kinds) {
        await assert.rejects(
          gpu.setIrqs({ index: ERR, count: 1, flags: TRIGGER_EVENTFD, eventfds: [fd] }),
          einval,
          what,
        );
      }
      assert.equal(serve.fdCount(), before, 'every refused descriptor was closed');
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
        assert.equal(serve.fdCount(), before, 'the eventfd was given back');
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
      assert.equal(serve.fdCount(), before);
    } finally {
      closeFd(efd);
    }
  });
});
