/**
 * Creates the BarMemory objects of a function from its profile: preset registers, the MSI-X
 * table with every vector masked (its reset state, PCI spec 6.8.2.9), and the emulated
 * interrupt doorbell — a 32-bit register at the start of BAR0's last 4 KiB page; a region
 * write there raises an interrupt (vector = the value written, on the active MSI/MSI-X
 * index, or INTx); in the same page, the DMA engine's registers (dma-engine.ts), whose COMMAND
 * register starts a transfer when a region write covers it. The pages holding the profile's
 * registers and the doorbell page are register pages: kept from the mappable areas (the
 * sparse-mmap capability) and in the server's memory, so only region accesses reach them.
 */
import { pageSize } from '../native/index.ts';
import { BarMemory, type BarPreset, type BarRange } from './bar-region.ts';
import type { ConfigSpace } from './config-space.ts';
import type { DeviceProfile } from './device-profile.ts';
import { DmaEngineReg } from './dma-engine.ts';
import {
  PCI_CAP_ID_MSIX,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_TABLE,
} from './pci-regs.ts';
import type { SharedMemoryFactory } from './shared-memory.ts';

/** Size of one MSI-X table entry; vector control is its last dword. */
const MSIX_ENTRY_SIZE = 16;
const MSIX_ENTRY_CTRL_MASKBIT = 1;

/** Offset of the doorbell register in BAR0 of a BAR0 of `size` bytes. */
export function doorbellOffset(bar0Size: bigint): bigint {
  return bar0Size - 0x1000n;
}

function u32le(value: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value >>> 0, true);
  return b;
}

function presetsFor(bar: number, profile: DeviceProfile, config: ConfigSpace): BarPreset[] {
  const presets: BarPreset[] = profile.registers
    .filter((r) => r.bar === bar)
    .map((r) => ({ offset: r.offset, bytes: u32le(r.value), readOnly: r.readOnly === true }));
  const msix = config.capabilities().find((c) => c.id === PCI_CAP_ID_MSIX);
  if (msix) {
    const table = config.u32(msix.offset + PCI_MSIX_TABLE);
    const entries = (config.u16(msix.offset + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1;
    if ((table & 7) === bar) {
      const base = table & ~7;
      for (let i = 0; i < entries; i++) {
        presets.push({
          offset: base + i * MSIX_ENTRY_SIZE + 12,
          bytes: u32le(MSIX_ENTRY_CTRL_MASKBIT),
        });
      }
    }
  }
  return presets;
}

/** vdev->msix_offset / msix_size when the MSI-X table lives in BAR `bar` (vfio_pci_enable). */
function msixTable(bar: number, config: ConfigSpace): { start: bigint; end: bigint } | undefined {
  const msix = config.capabilities().find((c) => c.id === PCI_CAP_ID_MSIX);
  if (!msix) return undefined;
  const table = config.u32(msix.offset + PCI_MSIX_TABLE);
  if ((table & 7) !== bar) return undefined;
  const entries = (config.u16(msix.offset + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1;
  const start = BigInt(table & ~7);
  return { start, end: start + BigInt(entries * MSIX_ENTRY_SIZE) };
}

/**
 * The register pages of BAR `bar` of `size` bytes: the host pages (at least 4 KiB, the
 * doorbell page's size) holding a profile register, and BAR0's doorbell page; sorted, merged.
 */
export function registerPagesOf(bar: number, size: bigint, profile: DeviceProfile): BarRange[] {
  const page = BigInt(Math.max(pageSize(), 0x1000));
  const starts = profile.registers
    .filter((r) => r.bar === bar)
    .map((r) => (BigInt(r.offset) / page) * page);
  if (bar === 0) starts.push((doorbellOffset(size) / page) * page);
  const ranges: BarRange[] = [];
  for (const start of [...new Set(starts)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const end = start + page < size ? start + page : size;
    const last = ranges.at(-1);
    if (last && last.end >= start) ranges[ranges.length - 1] = { start: last.start, end };
    else ranges.push({ start, end });
  }
  return ranges;
}

/** One BarMemory per implemented memory BAR, indexed by BAR number. */
export function createBars(
  deviceName: string,
  profile: DeviceProfile,
  config: ConfigSpace,
  memory: SharedMemoryFactory,
  onDoorbell: (value: number) => void,
  onDmaCommand: (command: number) => void = () => {},
): (BarMemory | undefined)[] {
  const bars: (BarMemory | undefined)[] = [];
  for (const layout of profile.bars) {
    if (layout.kind === 'io') continue;
    const name = `${deviceName}-BAR${layout.index}`;
    const presets = presetsFor(layout.index, profile, config);
    const bell = layout.index === 0 ? doorbellOffset(layout.size) : -1n;
    const command = bell + BigInt(DmaEngineReg.COMMAND);
    const covered = (offset: bigint, data: Uint8Array, reg: bigint) =>
      offset <= reg && offset + BigInt(data.length) >= reg + 4n
        ? new DataView(data.buffer, data.byteOffset + Number(reg - offset), 4).getUint32(0, true)
        : undefined;
    const hook =
      layout.index === 0
        ? (offset: bigint, data: Uint8Array) => {
            const ring = covered(offset, data, bell);
            if (ring !== undefined) onDoorbell(ring);
            const start = covered(offset, data, command);
            if (start !== undefined) onDmaCommand(start);
          }
        : undefined;
    bars[layout.index] = new BarMemory(
      name,
      layout.size,
      memory,
      presets,
      hook,
      msixTable(layout.index, config),
      registerPagesOf(layout.index, layout.size, profile),
    );
  }
  return bars;
}
