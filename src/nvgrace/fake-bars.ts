/**
 * The fake BARs' registers in config space (drivers/vfio/pci/nvgrace-gpu/main.c:298-346
 * nvgrace_gpu_read_config_emu, :349-379 nvgrace_gpu_write_config_emu, :278-287 the value): resmem owns PCI_BASE_ADDRESS_2
 * and _3, usemem _4 and _5, each a 64-bit register pair `bar_val`. A write that touches one
 * pair is stored in its bar_val and reports only the bytes inside it (the write ends there);
 * a read is first done by the core, then the pair's bytes are replaced with
 * (bar_val & ~(bar_size − 1)) | MEM_TYPE_64 | PREFETCH — so writing all-ones reads back the
 * size. As in the driver, an access reaching both pairs is served for BAR2/3 alone, and
 * without resmem BAR2/3 are the core's. bar_val is 0 at open and at VFIO_DEVICE_RESET
 * (nvgrace_gpu_init_fake_bar_emu_regs, :63-71, from :87-108 and :263-275).
 */
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
} from '../vfio/index.ts';
import type { GraceMemRegion } from './mem-region.ts';

/** Config-space offset of BAR2 (0x18): the low half of resmem's fake 64-bit BAR. */
export const PCI_BASE_ADDRESS_2 = PCI_BASE_ADDRESS_0 + 8;
/** Config-space offset of BAR4 (0x20): the low half of usemem's fake 64-bit BAR. */
export const PCI_BASE_ADDRESS_4 = PCI_BASE_ADDRESS_0 + 16;

/**
 * vfio_pci_core_range_intersect_range() (drivers/vfio/pci/vfio_pci_config.c): [offset in buf,
 * count, offset in register], or undefined. An empty access starting inside the register
 * intersects it with count 0, as there.
 */
export function intersectRange(
  bufStart: number,
  bufCount: number,
  regStart: number,
  regCount: number,
): [number, number, number] | undefined {
  if (bufStart <= regStart && bufStart + bufCount > regStart)
    return [regStart - bufStart, Math.min(regCount, bufStart + bufCount - regStart), 0];
  if (bufStart > regStart && bufStart < regStart + regCount)
    return [0, Math.min(bufCount, regStart + regCount - bufStart), bufStart - regStart];
  return undefined;
}

interface FakeBar {
  readonly region: GraceMemRegion;
  barVal: bigint;
}

/**
 * The emulated BAR2/3 (resmem, if any) and BAR4/5 (usemem) registers with their bar_val, as
 * nvgrace_gpu_read_config_emu/nvgrace_gpu_write_config_emu (drivers/vfio/pci/nvgrace-gpu/main.c) serve them.
 */
export class FakeBarRegisters {
  private readonly resmem: FakeBar | undefined;
  private readonly usemem: FakeBar;

  constructor(usemem: GraceMemRegion, resmem: GraceMemRegion | undefined) {
    this.usemem = { region: usemem, barVal: 0n };
    this.resmem = resmem ? { region: resmem, barVal: 0n } : undefined;
  }

  /** nvgrace_gpu_init_fake_bar_emu_regs(). */
  clear(): void {
    this.usemem.barVal = 0n;
    if (this.resmem) this.resmem.barVal = 0n;
  }

  /** The pair the access touches (BAR2/3 first, as the driver's if/else), and where. */
  private find(offset: number, count: number): [FakeBar, [number, number, number]] | undefined {
    const at2 = intersectRange(offset, count, PCI_BASE_ADDRESS_2, 8);
    if (at2) return this.resmem ? [this.resmem, at2] : undefined;
    const at4 = intersectRange(offset, count, PCI_BASE_ADDRESS_4, 8);
    return at4 ? [this.usemem, at4] : undefined;
  }

  /** nvgrace_gpu_get_read_value() of a pair, as 8 little-endian bytes. */
  private value(bar: FakeBar): Uint8Array {
    const v =
      (bar.barVal & ~(bar.region.region.barSize - 1n) & ((1n << 64n) - 1n)) |
      BigInt(PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH);
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, v, true);
    return out;
  }

  /** After the core's read of `buf` at `offset`: the pair's bytes replaced. */
  afterRead(offset: number, buf: Uint8Array): void {
    const hit = this.find(offset, buf.length);
    if (!hit) return;
    const [bar, [bufOffset, count, regOffset]] = hit;
    buf.set(this.value(bar).subarray(regOffset, regOffset + count), bufOffset);
  }

  /** A write: the bytes stored in the pair it touches, or undefined for the core's. */
  write(offset: number, data: Uint8Array): number | undefined {
    const hit = this.find(offset, data.length);
    if (!hit) return undefined;
    const [bar, [bufOffset, count, regOffset]] = hit;
    const bytes = new Uint8Array(8);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, bar.barVal, true);
    bytes.set(data.subarray(bufOffset, bufOffset + count), regOffset);
    bar.barVal = view.getBigUint64(0, true);
    return count;
  }
}
