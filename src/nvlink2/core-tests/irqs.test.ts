/**
 * IRQ info and SET_IRQS with vfio-pci's rules (vfio_pci.c GET_IRQ_INFO, vfio_pci_intrs.c,
 * vfio.c vfio_set_irqs_validate_and_prepare), and interrupts arriving on an "eventfd" — here a
 * temporary file, which receives the same 8-byte u64 writes an eventfd would.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  buildFakeHost,
  fakeFunction,
  fakeVariant,
} from '../../../test/support/nvlink2/fake-host.ts';
import { IrqIndex, IrqInfoFlag, IrqSetFlag, VfioError, VfioPciDevice } from '../../vfio/index.ts';

const host = buildFakeHost();
const dir = mkdtempSync(join(tmpdir(), 'vfio-irqs-'));
const devices: VfioPciDevice[] = [];
let files = 0;
after(() => {
  for (const d of devices) d.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function device(id: number): VfioPciDevice {
  const d = new VfioPciDevice(fakeFunction(host, id), host, fakeVariant(host));
  d.open();
  devices.push(d);
  return d;
}

/** A stand-in eventfd: its path (to count the u64 writes) and a descriptor the device will own. */
function fakeEventfd(): { path: string; fd: number } {
  const path = join(dir, `efd-${files++}`);
  return { path, fd: openSync(path, 'w+') };
}

function signals(path: string): number {
  const bytes = readFileSync(path);
  for (let i = 0; i < bytes.length; i += 8) assert.equal(bytes.readBigUInt64LE(i), 1n);
  return bytes.length / 8;
}

function errno(code: string) {
  return (e: unknown) => e instanceof VfioError && e.code === code;
}

const TRIGGER_EVENTFD = IrqSetFlag.DATA_EVENTFD | IrqSetFlag.ACTION_TRIGGER;
const NONE = new Uint8Array(0);

describe('IRQ info', () => {
  it('V100: INTx 1 maskable/automasked, MSI 1, MSI-X 6, ERR 1, REQ 1 (NORESIZE)', () => {
    const d = device(0x1db1);
    const info = [0, 1, 2, 3, 4].map((i) => d.irqInfo(i));
    assert.deepEqual(
      info.map((i) => i.count),
      [1, 1, 6, 1, 1],
    );
    assert.equal(
      info[0]?.flags,
      IrqInfoFlag.EVENTFD | IrqInfoFlag.MASKABLE | IrqInfoFlag.AUTOMASKED,
    );
    for (const i of info.slice(1))
      assert.equal(i.flags, IrqInfoFlag.EVENTFD | IrqInfoFlag.NORESIZE);
  });

  it('NPU2 bridge: INTx only, no MSI or MSI-X', () => {
    const b = device(0x04ea);
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((i) => b.irqInfo(i).count),
      [1, 0, 0, 1, 1],
    );
  });

  it('index 5 and argsz < 16 are EINVAL', () => {
    const d = device(0x1db1);
    assert.throws(() => d.irqInfo(5), errno('EINVAL'));
    assert.throws(() => d.irqInfo(0, 12), errno('EINVAL'));
  });
});

describe('SET_IRQS errors', () => {
  const d = device(0x1db1);
  const cases: [string, number, number, number, number, Uint8Array, string][] = [
    ['index past REQ', 5, 0, 1, TRIGGER_EVENTFD, NONE, 'EINVAL'],
    [
      'unknown flag bits',
      1,
      0,
      1,
      0x40 | IrqSetFlag.ACTION_TRIGGER | IrqSetFlag.DATA_NONE,
      NONE,
      'EINVAL',
    ],
    [
      'two data types',
      2,
      0,
      1,
      IrqSetFlag.DATA_NONE | IrqSetFlag.DATA_BOOL | IrqSetFlag.ACTION_TRIGGER,
      NONE,
      'EINVAL',
    ],
    ['vectors past the MSI-X table', 2, 4, 3, TRIGGER_EVENTFD, NONE, 'EINVAL'],
    ['MSI start past its one vector', 1, 1, 1, TRIGGER_EVENTFD, NONE, 'EINVAL'],
    [
      'BOOL without data',
      0,
      0,
      1,
      IrqSetFlag.DATA_BOOL | IrqSetFlag.ACTION_TRIGGER,
      NONE,
      'EINVAL',
    ],
    [
      'MSI mask (not supported by vfio-pci)',
      1,
      0,
      1,
      IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_MASK,
      NONE,
      'ENOTTY',
    ],
    [
      'two actions',
      0,
      0,
      1,
      IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_MASK | IrqSetFlag.ACTION_TRIGGER,
      NONE,
      'ENOTTY',
    ],
    ['ERR mask', 3, 0, 1, IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_MASK, NONE, 'ENOTTY'],
    [
      'INTx unmask while INTx is off',
      0,
      0,
      1,
      IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_UNMASK,
      NONE,
      'EINVAL',
    ],
    [
      'MSI-X loopback while off',
      2,
      0,
      1,
      IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_TRIGGER,
      NONE,
      'EINVAL',
    ],
  ];
  for (const [name, index, start, count, flags, data, code] of cases) {
    it(`${name} → ${code}`, () => {
      assert.throws(() => d.setIrqs(index, start, count, flags, data), errno(code));
    });
  }

  it('MSI while MSI-X is enabled is EINVAL; count 0 DATA_NONE TRIGGER disables', () => {
    const e = fakeEventfd();
    d.setIrqs(IrqIndex.MSIX, 0, 1, TRIGGER_EVENTFD, NONE, [e.fd]);
    assert.throws(
      () => d.setIrqs(IrqIndex.MSI, 0, 1, TRIGGER_EVENTFD, NONE, [fakeEventfd().fd]),
      errno('EINVAL'),
    );
    d.setIrqs(IrqIndex.MSIX, 0, 0, IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_TRIGGER, NONE);
    assert.equal(d.irqs.activeIndex, undefined);
  });

  it('MSI and MSI-X on the bridge (no vectors) are EINVAL', () => {
    const b = device(0x04ea);
    assert.throws(() => b.setIrqs(IrqIndex.MSI, 0, 1, TRIGGER_EVENTFD, NONE, []), errno('EINVAL'));
  });
});

describe('interrupts arrive', () => {
  it('MSI-X: vectors signal their own eventfd; -1 de-assigns', () => {
    const d = device(0x1db1);
    const e = [fakeEventfd(), fakeEventfd(), fakeEventfd()];
    d.setIrqs(
      IrqIndex.MSIX,
      0,
      3,
      TRIGGER_EVENTFD,
      NONE,
      e.map((x) => x.fd),
    );
    assert.equal(d.raiseInterrupt(IrqIndex.MSIX, 2), true);
    assert.equal(d.raiseInterrupt(IrqIndex.MSIX, 2), true);
    assert.equal(d.raiseInterrupt(IrqIndex.MSIX, 0), true);
    assert.deepEqual(
      e.map((x) => signals(x.path)),
      [1, 0, 2],
    );
    const minusOne = new Uint8Array(4).fill(0xff);
    d.setIrqs(IrqIndex.MSIX, 2, 1, TRIGGER_EVENTFD, minusOne);
    assert.equal(d.raiseInterrupt(IrqIndex.MSIX, 2), false);
  });

  it('the BAR0 doorbell raises the MSI-X vector written to it', () => {
    const d = device(0x1db1);
    const e = [fakeEventfd(), fakeEventfd()];
    d.setIrqs(
      IrqIndex.MSIX,
      0,
      2,
      TRIGGER_EVENTFD,
      NONE,
      e.map((x) => x.fd),
    );
    assert.equal(d.doorbell, (16n << 20n) - 0x1000n);
    d.write(0, d.doorbell ?? 0n, Uint8Array.of(1, 0, 0, 0));
    assert.deepEqual(
      e.map((x) => signals(x.path)),
      [0, 1],
    );
  });

  it('INTx auto-masks, stays pending while masked, fires again on unmask', () => {
    const d = device(0x04ea);
    const e = fakeEventfd();
    d.setIrqs(IrqIndex.INTX, 0, 1, TRIGGER_EVENTFD, NONE, [e.fd]);
    d.write(0, d.doorbell ?? 0n, Uint8Array.of(0, 0, 0, 0));
    d.write(0, d.doorbell ?? 0n, Uint8Array.of(0, 0, 0, 0));
    assert.equal(signals(e.path), 1);
    assert.deepEqual(d.irqs.intxState, { masked: true, pending: true });
    d.setIrqs(IrqIndex.INTX, 0, 1, IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_UNMASK, NONE);
    assert.equal(signals(e.path), 2);
    d.setIrqs(IrqIndex.INTX, 0, 1, IrqSetFlag.DATA_BOOL | IrqSetFlag.ACTION_MASK, Uint8Array.of(1));
    assert.equal(d.raiseInterrupt(IrqIndex.INTX, 0), false);
  });

  it('PCI_COMMAND_INTX_DISABLE masks INTx; clearing it delivers the pending one', () => {
    const d = device(0x04ea);
    const e = fakeEventfd();
    d.setIrqs(IrqIndex.INTX, 0, 1, TRIGGER_EVENTFD, NONE, [e.fd]);
    d.write(7, 0x04, Uint8Array.of(0x00, 0x04));
    assert.equal(d.raiseInterrupt(IrqIndex.INTX, 0), false);
    assert.equal(signals(e.path), 0);
    d.write(7, 0x04, Uint8Array.of(0x00, 0x00));
    assert.equal(signals(e.path), 1);
  });

  it('ERR and REQ: one eventfd each; DATA_BOOL loopback signals; close releases them', () => {
    const d = device(0x1db1);
    const err = fakeEventfd();
    const req = fakeEventfd();
    d.setIrqs(IrqIndex.ERR, 0, 1, TRIGGER_EVENTFD, NONE, [err.fd]);
    d.setIrqs(IrqIndex.REQ, 0, 1, TRIGGER_EVENTFD, NONE, [req.fd]);
    d.setIrqs(
      IrqIndex.REQ,
      0,
      1,
      IrqSetFlag.DATA_BOOL | IrqSetFlag.ACTION_TRIGGER,
      Uint8Array.of(1),
    );
    assert.equal(d.raiseInterrupt(IrqIndex.ERR, 0), true);
    assert.deepEqual([signals(err.path), signals(req.path)], [1, 1]);
    d.close();
    assert.equal(d.raiseInterrupt(IrqIndex.ERR, 0), false);
    assert.throws(() => closeSync(err.fd), /EBADF/, 'the device closed the descriptor it owned');
    d.open();
  });
});
