/**
 * Interrupts over the wire (vfio-user.rst "VFIO_USER_DEVICE_GET_IRQ_INFO",
 * "VFIO_USER_DEVICE_SET_IRQS"): eventfds travel as SCM_RIGHTS, the device's doorbell raises an
 * interrupt that reaches the client's eventfd, the server holds one descriptor per assigned
 * vector and closes it when the vector is disabled; bad requests close their fds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closeFd, eventfdCreate, eventfdRead } from '../src/native/index.ts';
import { IrqSetFlag, ReplyError, VfioUserClient } from '../src/vfio-user/index.ts';
import { GPU, type ServeProcess, startServe } from './support/serve-process.ts';

let serve: ServeProcess;
let gpu: VfioUserClient;
let doorbell: bigint;
before(async () => {
  serve = await startServe();
  gpu = await VfioUserClient.connect(serve.socket(GPU));
  doorbell = (await gpu.getRegionInfo(0)).info.size - 0x1000n;
  // BAR0's memory is created on first use (past page 0, which holds registers): before any fd count
  await gpu.regionRead(0, 0x1000n, 4);
});
after(async () => {
  gpu.close();
  await serve.stop();
});

const MSIX = 2;
const TRIGGER_EVENTFD = IrqSetFlag.DATA_EVENTFD | IrqSetFlag.ACTION_TRIGGER;
const DISABLE = IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_TRIGGER;

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

describe('IRQs', () => {
  it('GET_IRQ_INFO reports INTx, MSI, MSI-X, ERR and REQ', async () => {
    const infos = await Promise.all([0, 1, 2, 3, 4].map((i) => gpu.getIrqInfo(i)));
    assert.deepEqual(
      infos.map((i) => i.index),
      [0, 1, 2, 3, 4],
    );
    assert.ok(infos[MSIX]!.count > 1, 'several MSI-X vectors');
    assert.equal(infos[0]!.flags & 0x7, 0x7, 'INTx: EVENTFD|MASKABLE|AUTOMASKED');
    await assert.rejects(
      gpu.getIrqInfo(5),
      (e: unknown) => e instanceof ReplyError && e.remoteErrno === 22,
    );
  });

  it('an MSI-X vector raised by the device reaches the client eventfd; disabling closes it', async () => {
    const before = serve.fdCount();
    const efds = [eventfdCreate(0, { nonBlocking: true }), eventfdCreate(0, { nonBlocking: true })];
    try {
      await gpu.setIrqs({
        index: MSIX,
        start: 0,
        count: 2,
        flags: TRIGGER_EVENTFD,
        eventfds: efds,
      });
      assert.equal(serve.fdCount(), before + 2, 'the server keeps one fd per vector');
      await gpu.regionWrite(0, doorbell, u32(1)); // ring vector 1
      assert.equal(eventfdRead(efds[1]!), 1n);
      assert.equal(eventfdRead(efds[0]!), null);
      await gpu.regionWrite(0, doorbell, u32(0));
      assert.equal(eventfdRead(efds[0]!), 1n);
      await gpu.setIrqs({ index: MSIX, start: 0, count: 0, flags: DISABLE });
      assert.equal(serve.fdCount(), before);
    } finally {
      for (const fd of efds) closeFd(fd);
    }
  });

  it('INTx: trigger eventfd, doorbell with no MSI active raises it', async () => {
    const efd = eventfdCreate(0, { nonBlocking: true });
    try {
      await gpu.setIrqs({ index: 0, start: 0, count: 1, flags: TRIGGER_EVENTFD, eventfds: [efd] });
      await gpu.regionWrite(0, doorbell, u32(0));
      assert.equal(eventfdRead(efd), 1n);
      await gpu.setIrqs({ index: 0, start: 0, count: 0, flags: DISABLE });
    } finally {
      closeFd(efd);
    }
  });

  it('a refused SET_IRQS leaves no descriptor in the server', async () => {
    const before = serve.fdCount();
    const efds = [eventfdCreate(), eventfdCreate()];
    try {
      await assert.rejects(
        gpu.setIrqs({ index: MSIX, start: 0, count: 3, flags: TRIGGER_EVENTFD, eventfds: efds }),
        (e: unknown) => e instanceof ReplyError && e.remoteErrno === 22,
      );
      await assert.rejects(
        gpu.setIrqs({ index: MSIX, start: 4096, count: 2, flags: TRIGGER_EVENTFD, eventfds: efds }),
        (e: unknown) => e instanceof ReplyError && e.remoteErrno === 22,
      );
      assert.equal(serve.fdCount(), before);
    } finally {
      for (const fd of efds) closeFd(fd);
    }
  });
});
