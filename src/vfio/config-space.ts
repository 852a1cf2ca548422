/**
 * A PCI function's configuration space as the vfio-pci core presents it to userspace
 * (drivers/vfio/pci/vfio_pci_config.c, v5.12): the bytes, a map from each byte to the
 * capability that owns it (pci_config_map), and per-byte write and write-1-to-clear masks
 * (struct perm_bits). BARs are virtualised like vfio_bar_fixup(): a write stores the value,
 * a read returns it masked to the BAR's size with the type bits, so writing all-ones and reading
 * back yields the size mask. Bytes nobody owns are read-only; extended space (≥ 0x100) of a
 * 4 KiB space reads zero, a terminated extended-capability list.
 */
import { hex } from '../text/index.ts';
import { VfioError } from './errors.ts';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CAP_ID_INVALID,
  PCI_ROM_ADDRESS,
} from './pci-regs.ts';

/** A BAR's type: 32-bit memory, 64-bit memory (two BAR slots) or I/O. */
export type BarKind = 'mem32' | 'mem64' | 'io';

/** One implemented BAR: its index (0–5), size (a power of two) and type. */
export interface BarLayout {
  readonly index: number;
  readonly size: bigint;
  readonly kind: BarKind;
  readonly prefetchable: boolean;
}

/** A standard capability found in the chain. */
export interface CapabilityEntry {
  readonly id: number;
  readonly offset: number;
  readonly length: number;
}

/** Called after a write landed in [offset, offset + length). */
export type ConfigWriteListener = (offset: number, length: number) => void;

/** The type bits in the low nibble of a BAR (pci_regs.h PCI_BASE_ADDRESS_*). */
export function barFlags(bar: BarLayout): number {
  if (bar.kind === 'io') return PCI_BASE_ADDRESS_SPACE_IO;
  let flags = bar.kind === 'mem64' ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0;
  if (bar.prefetchable) flags |= PCI_BASE_ADDRESS_MEM_PREFETCH;
  return flags;
}

function isPowerOfTwo(v: bigint): boolean {
  return v > 0n && (v & (v - 1n)) === 0n;
}

/**
 * A function's config space (256 or 4096 bytes) with its ownership map, write and RW1C masks and
 * virtualised BARs, as the module header describes.
 */
export class ConfigSpace {
  /** Bytes of config space: 256 (conventional PCI) or 4096 (PCIe extended). */
  readonly size: number;
  private readonly bytes: Uint8Array;
  private readonly writeMask: Uint8Array;
  private readonly rw1cMask: Uint8Array;
  /** vfio_pci_config.c pci_config_map: capability id owning each byte. */
  private readonly ownerMap: Uint8Array;
  private defaults: Uint8Array;
  private readonly barSlots: (BarLayout | undefined)[] = [];
  private readonly listeners: ConfigWriteListener[] = [];

  constructor(size: number) {
    this.size = size;
    this.bytes = new Uint8Array(size);
    this.writeMask = new Uint8Array(size);
    this.rw1cMask = new Uint8Array(size);
    this.ownerMap = new Uint8Array(size).fill(PCI_CAP_ID_INVALID);
    this.defaults = new Uint8Array(size);
  }

  /** Set a little-endian field's initial value and its writable / write-1-to-clear bits. */
  define(offset: number, width: 1 | 2 | 4, value: number, writable = 0, rw1c = 0): void {
    for (let i = 0; i < width; i++) {
      const shift = 8 * i;
      this.bytes[offset + i] = (value >>> shift) & 0xff;
      this.writeMask[offset + i] = (writable >>> shift) & 0xff;
      this.rw1cMask[offset + i] = (rw1c >>> shift) & 0xff;
    }
  }

  /** Mark [offset, offset + length) as owned by capability `id` (PCI_CAP_ID_BASIC for the header). */
  claim(offset: number, length: number, id: number): void {
    this.ownerMap.fill(id, offset, offset + length);
  }

  /**
   * Declare an implemented BAR; a 64-bit BAR also takes the next register.
   * @throws Error when the BAR's size is not a power of two (a profile bug, not input)
   */
  addBar(bar: BarLayout): void {
    if (!isPowerOfTwo(bar.size))
      throw new Error(`BAR${bar.index} size ${bar.size} is not a power of two`);
    this.barSlots[bar.index] = bar;
    const reg = PCI_BASE_ADDRESS_0 + 4 * bar.index;
    this.define(reg, 4, barFlags(bar), 0xffffffff);
    if (bar.kind === 'mem64') this.define(reg + 4, 4, 0, 0xffffffff);
  }

  /** Freeze the current contents as the reset defaults. */
  sealDefaults(): void {
    this.defaults = this.bytes.slice();
  }

  /** The implemented BARs, by index (a 64-bit BAR's upper register is not one). */
  get bars(): readonly BarLayout[] {
    return this.barSlots.filter((b): b is BarLayout => b !== undefined);
  }

  /** BAR `index` (0–5), or undefined when not implemented. */
  bar(index: number): BarLayout | undefined {
    return this.barSlots[index];
  }

  /** The capability ID owning the byte at `offset` (pci_config_map), PCI_CAP_ID_INVALID if none. */
  owner(offset: number): number {
    return this.ownerMap[offset] ?? PCI_CAP_ID_INVALID;
  }

  /** Calls `listener(offset, length)` after every guest write (`write`), masks applied. */
  onWrite(listener: ConfigWriteListener): void {
    this.listeners.push(listener);
  }

  /** A copy of every byte as it is now (a saved device's config space). */
  snapshot(): Uint8Array {
    return this.bytes.slice();
  }

  /**
   * Every byte as saved by `snapshot` on a device of the same profile (no write masks: the
   * source's registers as they were).
   * @throws VfioError EINVAL when the size differs.
   */
  restore(bytes: Uint8Array): void {
    if (bytes.length !== this.size)
      throw new VfioError(
        'EINVAL',
        `config space of ${bytes.length} bytes does not fit this function's ${this.size}`,
      );
    this.bytes.set(bytes);
  }

  /** Restore the reset defaults (the device's reset; BAR sizes are unchanged). */
  reset(): void {
    this.bytes.set(this.defaults);
  }

  private checkRange(offset: number, length: number): void {
    // vfio_pci_config.c vfio_config_do_rw(): *ppos >= cfg_size or *ppos + count > cfg_size is -EFAULT
    if (length === 0) return;
    if (offset < 0 || offset >= this.size || offset + length > this.size) {
      throw new VfioError(
        'EFAULT',
        `config space access at ${hex(offset)} length ${length} is outside its ${this.size} bytes`,
      );
    }
  }

  /**
   * The config space bytes themselves, for the native fast path, which answers reads from
   * them (reads have no side effect: BARs are virtualised at write time); never to be written.
   */
  get plainBytes(): Uint8Array {
    return this.bytes;
  }

  /**
   * Fills `buf` with the bytes at `offset` (vfio_config_do_rw, reads).
   * @throws VfioError EFAULT when [offset, offset + buf.length) is outside config space
   */
  read(offset: number, buf: Uint8Array): void {
    this.checkRange(offset, buf.length);
    buf.set(this.bytes.subarray(offset, offset + buf.length));
  }

  /**
   * A guest write: only writable bits change, 1s clear RW1C bits, BARs are masked to their
   * sizes (vfio_bar_fixup), then the `onWrite` listeners run.
   * @throws VfioError EFAULT when [offset, offset + data.length) is outside config space
   */
  write(offset: number, data: Uint8Array): void {
    this.checkRange(offset, data.length);
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      const v = data[i] ?? 0;
      const w = this.writeMask[at] ?? 0;
      const c = this.rw1cMask[at] ?? 0;
      const old = this.bytes[at] ?? 0;
      this.bytes[at] = ((old & ~w) | (v & w)) & ~(v & c) & 0xff;
    }
    if (offset < PCI_ROM_ADDRESS + 4 && offset + data.length > PCI_BASE_ADDRESS_0) this.fixupBars();
    for (const listener of this.listeners) listener(offset, data.length);
  }

  /** vfio_pci_config.c vfio_bar_fixup(): mask each BAR register to its size, add the type bits. */
  private fixupBars(): void {
    for (let i = 0; i < 6; i++) {
      const reg = PCI_BASE_ADDRESS_0 + 4 * i;
      const bar = this.barSlots[i];
      const lower = this.barSlots[i - 1];
      if (bar) {
        const mask = Number(~(bar.size - 1n) & 0xffffffffn);
        this.setU32(reg, ((this.u32(reg) & mask) | barFlags(bar)) >>> 0);
      } else if (lower?.kind === 'mem64') {
        const mask = Number((~(lower.size - 1n) >> 32n) & 0xffffffffn);
        this.setU32(reg, (this.u32(reg) & mask) >>> 0);
      } else {
        this.setU32(reg, 0);
      }
    }
    // no expansion ROM is implemented (size 0): vfio_bar_fixup() leaves the ROM BAR zero
    this.setU32(PCI_ROM_ADDRESS, 0);
  }

  /** The byte at `offset` (0 past the end); no access check, no side effect. */
  u8(offset: number): number {
    return this.bytes[offset] ?? 0;
  }

  /** The little-endian 16-bit value at `offset`, as `u8`. */
  u16(offset: number): number {
    return this.u8(offset) | (this.u8(offset + 1) << 8);
  }

  /** The little-endian 32-bit value at `offset`, unsigned, as `u8`. */
  u32(offset: number): number {
    return (this.u16(offset) | (this.u16(offset + 2) << 16)) >>> 0;
  }

  /** Device-side update (bypasses write masks), e.g. the device setting a status bit. */
  setU16(offset: number, value: number): void {
    this.bytes[offset] = value & 0xff;
    this.bytes[offset + 1] = (value >>> 8) & 0xff;
  }

  /** Device-side update of a 32-bit little-endian value (bypasses write masks), as `setU16`. */
  setU32(offset: number, value: number): void {
    this.setU16(offset, value & 0xffff);
    this.setU16(offset + 2, value >>> 16);
  }

  /** Walk the standard capability list from PCI_CAPABILITY_LIST (0x34), as lspci does. */
  capabilities(): CapabilityEntry[] {
    const found: CapabilityEntry[] = [];
    const seen = new Set<number>();
    let at = this.u8(0x34) & 0xfc;
    while (at >= 0x40 && at < 0x100 && !seen.has(at)) {
      seen.add(at);
      let length = 0;
      while (at + length < 0x100 && this.owner(at + length) === this.owner(at)) length++;
      found.push({ id: this.u8(at), offset: at, length });
      at = this.u8(at + 1) & 0xfc;
    }
    return found;
  }
}
