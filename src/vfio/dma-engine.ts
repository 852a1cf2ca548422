/**
 * The emulation's DMA engine: a few registers in BAR0's doorbell page (bar-setup.ts) through
 * which a client makes the device read or write guest memory, the way a GPU's copy engine
 * would, through the DMA port the VMM gave it (the IOMMU view: vfio-user DMA_MAP regions). A
 * real GPU's engines are not modelled; this is the one device-initiated access to client
 * memory, there so that that path is exercised end to end.
 *
 * Offsets from the doorbell page (all little-endian):
 *   0x10 ADDRESS u64  DMA address
 *   0x18 LENGTH  u32  bytes, 1..0x800
 *   0x1c COMMAND u32  written last: 1 READ guest memory into DATA, 2 WRITE DATA to guest memory
 *   0x20 STATUS  u32  set by the device: 0 done, else the errno of the fault
 *   0x800 DATA   0x800 bytes
 * A fault (nothing mapped there, read-only, the client's file shrank) sets STATUS and fails the
 * region write that issued the command with the same errno, which the server logs.
 */

import { messageOf } from '../errors/index.ts';
import { hex } from '../text/index.ts';
import { VfioError } from './errors.ts';

/** The guest memory a device reaches (DMA_READ/DMA_WRITE semantics). */
export interface DmaPort {
  /** @throws VfioError EFAULT, EPERM, ... */
  read(address: bigint, length: number): Uint8Array;
  /** @throws VfioError EFAULT, EPERM, ... */
  write(address: bigint, data: Uint8Array): void;
}

/**
 * Register offsets of the DMA engine from the doorbell page (bytes; the module header has the
 * layout).
 */
export const DmaEngineReg = {
  ADDRESS: 0x10,
  LENGTH: 0x18,
  COMMAND: 0x1c,
  STATUS: 0x20,
  DATA: 0x800,
} as const;

/** Values of the COMMAND register: READ guest memory into DATA, WRITE DATA to guest memory. */
export const DmaEngineCommand = { READ: 1, WRITE: 2 } as const;

/** Largest transfer: the DATA window. */
export const DMA_ENGINE_MAX = 0x800;

/** How the engine reaches BAR0's memory (its region rw, without the write hook's side effects). */
export interface DmaEngineRegisters {
  read(offset: bigint, length: number): Uint8Array;
  write(offset: bigint, data: Uint8Array): void;
}

function u32(value: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value >>> 0, true);
  return b;
}

/**
 * Runs `command` with the registers at `page` (the doorbell page's BAR0 offset), then sets
 * STATUS. @throws VfioError the fault's errno (EINVAL for a bad command or length, ENODEV with
 * no port, or the port's), after STATUS holds it.
 */
export function runDmaCommand(
  regs: DmaEngineRegisters,
  page: bigint,
  port: DmaPort | undefined,
  command: number,
  device: string,
): void {
  const head = regs.read(page + BigInt(DmaEngineReg.ADDRESS), 12);
  const v = new DataView(head.buffer, head.byteOffset, head.length);
  const address = v.getBigUint64(0, true);
  const length = v.getUint32(8, true);
  const what = `${device} DMA engine ${command === DmaEngineCommand.WRITE ? 'write' : 'read'} of ${hex(address)}+${length}`;
  try {
    if (command !== DmaEngineCommand.READ && command !== DmaEngineCommand.WRITE)
      throw new VfioError('EINVAL', `${device} DMA engine: unknown command ${command}`);
    if (length === 0 || length > DMA_ENGINE_MAX)
      throw new VfioError('EINVAL', `${what}: length must be 1..${DMA_ENGINE_MAX}`);
    if (!port) throw new VfioError('ENODEV', `${what}: no DMA port (no client attached)`);
    const data = page + BigInt(DmaEngineReg.DATA);
    if (command === DmaEngineCommand.READ) regs.write(data, port.read(address, length));
    else port.write(address, regs.read(data, length));
  } catch (err) {
    const e =
      err instanceof VfioError
        ? new VfioError(
            err.code,
            err.reason.startsWith(device) ? err.reason : `${what}: ${err.reason}`,
          )
        : new VfioError('EIO', `${what}: ${messageOf(err)}`);
    regs.write(page + BigInt(DmaEngineReg.STATUS), u32(e.errno));
    throw e;
  }
  regs.write(page + BigInt(DmaEngineReg.STATUS), u32(0));
}
