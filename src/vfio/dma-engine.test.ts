/**
 * The DMA engine in BAR0's doorbell page (dma-engine.ts) on a plain endpoint, with a
 * plain byte array as the guest memory its port reaches: READ fills DATA, WRITE copies DATA
 * out, every fault sets STATUS to its errno and fails the region write that started it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { cells, Fdt } from '../fdt/index.ts';
import type { Host } from '../platform/index.ts';
import { buildHost } from '../platform/index.ts';
import { VfioPciDevice } from './device.ts';
import { DMA_ENGINE_MAX, DmaEngineCommand, DmaEngineReg, type DmaPort } from './dma-engine.ts';
import { VfioError } from './errors.ts';

/** QEMU's PCI test device (pci.ids 1b36:0005), the only function under one PHB. */
function plainHost(): Host {
  const fdt = new Fdt();
  const phb = fdt.root.addChild('pciex@0').setProperty('device_type', cells.string('pciex'));
  phb
    .addChild('test@0')
    .setProperty('reg', cells.u32(0, 0, 0, 0, 0))
    .setProperty('vendor-id', cells.u32(0x1b36))
    .setProperty('device-id', cells.u32(0x0005))
    .setProperty('class-code', cells.u32(0x00ff00));
  return buildHost(fdt);
}

const host = plainHost();
const devices: VfioPciDevice[] = [];
after(() => {
  for (const d of devices) d.dispose();
});

/** 64 KiB of guest memory at 0x10000, writable below 0x18000. */
function memoryPort(): DmaPort & { bytes: Uint8Array } {
  const bytes = new Uint8Array(0x10000);
  const at = (address: bigint, length: number) => {
    if (address < 0x10000n || address + BigInt(length) > 0x20000n)
      throw new VfioError('EFAULT', `0x${address.toString(16)} is not mapped`);
    return Number(address - 0x10000n);
  };
  return {
    bytes,
    read: (address, length) => bytes.slice(at(address, length), at(address, length) + length),
    write(address, data) {
      if (address + BigInt(data.length) > 0x18000n) throw new VfioError('EPERM', 'read-only');
      bytes.set(data, at(address, data.length));
    },
  };
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

function setup() {
  const d = new VfioPciDevice(host.functions[0]!, host);
  d.open();
  devices.push(d);
  const page = d.doorbell ?? 0n;
  const reg = (r: number) => page + BigInt(r);
  const status = () =>
    new DataView(d.read(0, reg(DmaEngineReg.STATUS), 4).buffer).getUint32(0, true);
  /** ADDRESS, LENGTH and COMMAND in one 16-byte write, as a driver would post them. */
  const start = (address: bigint, length: number, command: number) => {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, address, true);
    v.setUint32(8, length, true);
    v.setUint32(12, command, true);
    d.write(0, reg(DmaEngineReg.ADDRESS), b);
  };
  return { d, reg, status, start };
}

const errno = (code: string) => (e: unknown) => e instanceof VfioError && e.code === code;

describe('DMA engine', () => {
  it('READ copies guest memory into DATA; WRITE copies DATA into guest memory', () => {
    const { d, reg, status, start } = setup();
    const port = memoryPort();
    d.attachDma(port);
    port.bytes.set([1, 2, 3, 4, 5], 0x100);
    start(0x10100n, 5, DmaEngineCommand.READ);
    assert.equal(status(), 0);
    assert.deepEqual(d.read(0, reg(DmaEngineReg.DATA), 5), Uint8Array.of(1, 2, 3, 4, 5));

    const payload = new Uint8Array(DMA_ENGINE_MAX).map((_, i) => i * 7);
    d.write(0, reg(DmaEngineReg.DATA), payload);
    start(0x11000n, DMA_ENGINE_MAX, DmaEngineCommand.WRITE);
    assert.equal(status(), 0);
    assert.deepEqual(port.bytes.subarray(0x1000, 0x1000 + DMA_ENGINE_MAX), payload);
  });

  it('the command starts only when a write covers COMMAND (registers written one by one)', () => {
    const { d, reg, status } = setup();
    const port = memoryPort();
    d.attachDma(port);
    port.bytes[0] = 0x5a;
    d.write(0, reg(DmaEngineReg.ADDRESS), Uint8Array.of(0, 0, 1, 0, 0, 0, 0, 0));
    d.write(0, reg(DmaEngineReg.LENGTH), u32(1));
    assert.deepEqual(d.read(0, reg(DmaEngineReg.DATA), 1), Uint8Array.of(0));
    d.write(0, reg(DmaEngineReg.COMMAND), u32(DmaEngineCommand.READ));
    assert.deepEqual(d.read(0, reg(DmaEngineReg.DATA), 1), Uint8Array.of(0x5a));
    assert.equal(status(), 0);
  });

  it('faults set STATUS to the errno and fail the write: unmapped, read-only, length, command, no port', () => {
    const { d, status, start } = setup();
    assert.throws(() => start(0x10000n, 4, DmaEngineCommand.READ), errno('ENODEV'));
    assert.equal(status(), 19);
    d.attachDma(memoryPort());
    assert.throws(() => start(0x1fffen, 4, DmaEngineCommand.READ), errno('EFAULT'));
    assert.equal(status(), 14);
    assert.throws(() => start(0x18000n, 4, DmaEngineCommand.WRITE), errno('EPERM'));
    assert.equal(status(), 1);
    assert.throws(() => start(0x10000n, 0, DmaEngineCommand.READ), errno('EINVAL'));
    assert.throws(
      () => start(0x10000n, DMA_ENGINE_MAX + 1, DmaEngineCommand.READ),
      errno('EINVAL'),
    );
    assert.throws(() => start(0x10000n, 4, 3), errno('EINVAL'));
    assert.equal(status(), 22);
    start(0x10000n, 4, DmaEngineCommand.READ);
    assert.equal(status(), 0, 'a good command clears STATUS');
    d.attachDma(undefined);
    assert.throws(() => start(0x10000n, 4, DmaEngineCommand.READ), errno('ENODEV'));
  });
});
