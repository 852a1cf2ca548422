/**
 * A vfio-pci device: one PCI function of the emulated host as a VMM sees it through VFIO
 * (drivers/vfio/pci/vfio_pci.c, v5.12). Lifecycle as vfio_pci_open / vfio_pci_enable and
 * vfio_pci_release / vfio_pci_disable. A variant with a probe (VfioPciVariant.probe, its
 * pci_driver.probe) runs it at construction and may put device ops in place of the core's for
 * some standard regions and config-space bytes; a failed probe makes every open fail with its
 * errno. The first open runs the variant hooks registered for
 * the device's vendor (ENODEV leaves a plain device, any other errno fails the open with
 * "Failed to setup <name> region"); the last close releases every device-specific region and
 * every interrupt. Device state — config space and BAR contents, and whatever regions keep —
 * survives a close, so a VMM can reconnect. The group's KVM notifier is `attachKvm` /
 * `onKvmSet`.
 */

import type { PlainRange } from '../native/index.ts';
import type { Host, PciFunction } from '../platform/index.ts';
import { PCI_CLASS_DISPLAY_VGA } from '../platform/index.ts';
import type { BarMemory } from './bar-region.ts';
import { createBars, doorbellOffset } from './bar-setup.ts';
import { buildConfigSpace } from './config-builder.ts';
import type { ConfigSpace } from './config-space.ts';
import { type DeviceProfile, genericProfile } from './device-profile.ts';
import { type DmaPort, runDmaCommand } from './dma-engine.ts';
import { VfioError } from './errors.ts';
import { VariantHookRegistry } from './hooks.ts';
import { encodeTypeCap } from './info-caps.ts';
import { IrqIndex, type IrqInfo, VfioIrqs } from './irqs.ts';
import { type KvmListener, KvmNotifier } from './kvm-notifier.ts';
import * as R from './pci-regs.ts';
import {
  type MmapGrant,
  type MmapRequest,
  RegionFlag,
  type RegionOps,
  type VfioRegion,
} from './region.ts';
import {
  encodeRegionInfo,
  type RegionDescription,
  type RegionInfoReply,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_NUM_REGIONS,
  VFIO_REGION_INFO_SIZE,
} from './region-info.ts';
import { createMemfdMemory, type SharedMemory, type SharedMemoryFactory } from './shared-memory.ts';
import {
  describeStandardRegion,
  type StandardRegions,
  standardRegionRw,
} from './standard-regions.ts';
import type { VfioTracer } from './tracer.ts';
import type { VariantDevice, VariantDeviceOps, VfioPciVariant } from './variant.ts';

export type { KvmListener } from './kvm-notifier.ts';

/** VFIO_DEVICE_FLAGS_* (include/uapi/linux/vfio.h). */
export const DeviceFlag = { RESET: 0x1, PCI: 0x2 } as const;

/** struct vfio_device_info. */
export interface DeviceInfo {
  readonly argsz: number;
  readonly flags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
}

/** What `VfioPciDevice.snapshotState` returns: config space, each BAR's register pages. */
export interface DeviceStateBytes {
  readonly config: Uint8Array;
  /** By BAR index; undefined where the slot has no BAR memory. */
  readonly registers: readonly (Uint8Array | undefined)[];
  /**
   * The migration state of a stream load not finished (RESUMING; ERROR after a load that
   * failed): the device's memory is partly the stream's. Absent when no load is under way.
   */
  readonly migrationLoad?: string;
}

/** Options of `VfioPciDevice`: its tracer and where its memory comes from. */
export interface VfioPciDeviceOptions {
  readonly tracer?: VfioTracer;
  /** Where BAR memory lives; defaults to sparse tmpfs files another process can map. */
  readonly memory?: SharedMemoryFactory;
}

/**
 * One PCI function as vfio-pci presents it: open/close, region info/read/write/mmap, IRQs, reset
 * and the KVM notifier, as the module header describes. Errors are VfioError with the kernel's
 * errno.
 */
export class VfioPciDevice implements VariantDevice, StandardRegions {
  /** What the function is before any variant runs: IDs, config size, BARs, capabilities. */
  readonly profile: DeviceProfile;
  /** Config space as vfio-pci virtualizes it (vfio_pci_config.c: emulated and raw bits). */
  readonly config: ConfigSpace;
  /** BARs 0–5 (index = BAR number); undefined where the function has none. */
  readonly bars: readonly (BarMemory | undefined)[];
  /** Whether the VGA region (index 8) exists: a VGA-class function (vfio_pci_is_vga). */
  readonly hasVga: boolean;
  /** INTx, MSI, MSI-X, ERR and REQ interrupts (VFIO_DEVICE_SET_IRQS state). */
  readonly irqs: VfioIrqs;
  /** Receives region accesses and events when set; undefined costs nothing. */
  readonly tracer: VfioTracer | undefined;
  private readonly hooks: VariantHookRegistry;
  private openCount = 0;
  private deviceRegions: VfioRegion[] = [];
  private readonly kvmNotifier: KvmNotifier;
  private intxDisabled = false;
  private dmaPort: DmaPort | undefined;
  private readonly stateListeners: (() => void)[] = [];
  /** Stopped for migration (STOP, STOP_COPY, RESUMING…): no DMA, no interrupt. */
  private stopped = false;
  /** See DeviceStateBytes.migrationLoad. */
  #migrationLoad: string | undefined;
  /** What the variant's probe put in place of the core's ops (undefined: the core's alone). */
  private readonly variantOps: VariantDeviceOps | undefined;
  #memoryCreated = 0;
  /** The variant's probe failed: the function is no vfio device and every open fails so. */
  readonly probeError: VfioError | undefined;

  /**
   * `variant` is the variant driver bound to `fn` (variantFor), if any: its profile replaces
   * the generic one and its hooks run at enable; without one the device is plain vfio-pci.
   */
  constructor(
    readonly fn: PciFunction,
    readonly host: Host,
    readonly variant: VfioPciVariant | undefined = undefined,
    options: VfioPciDeviceOptions = {},
  ) {
    this.hooks = new VariantHookRegistry(variant?.hooks ?? []);
    this.kvmNotifier = new KvmNotifier(fn.name);
    this.tracer = options.tracer;
    this.profile = variant?.profile(fn) ?? genericProfile(fn);
    this.config = buildConfigSpace(fn, this.profile);
    this.hasVga = fn.classCode >> 8 === PCI_CLASS_DISPLAY_VGA;
    this.bars = createBars(
      fn.name,
      this.profile,
      this.config,
      Object.assign(
        (name: string, size: bigint) => {
          this.#memoryCreated++; // a BAR's memory, made at its first use: new plain ranges
          return (options.memory ?? createMemfdMemory)(name, size);
        },
        { kept: (name: string) => options.memory?.kept?.(name) ?? false },
      ),
      (v) => this.ringDoorbell(v),
      (command) => this.runDma(command),
    );
    this.irqs = new VfioIrqs({
      name: fn.name,
      irqCount: (index) => this.irqCount(index),
      isPcie: () => this.capabilityOffset(R.PCI_CAP_ID_EXP) !== undefined,
    });
    for (const bar of this.bars) bar?.onRegisterWrite(() => this.stateChanged());
    this.config.onWrite((offset, length) => {
      this.checkIntxDisable(offset, length);
      this.checkFlr(offset, length);
      this.stateChanged();
    });
    let ops: VariantDeviceOps | undefined;
    let probeError: VfioError | undefined;
    try {
      ops = variant?.probe?.(this);
    } catch (err) {
      if (!(err instanceof VfioError)) throw err;
      probeError = err;
    }
    this.variantOps = ops;
    this.probeError = probeError;
  }

  get name(): string {
    return this.fn.name;
  }

  /** Whether an open (vfio_pci_open) is outstanding: the open count is above zero. */
  get isOpen(): boolean {
    return this.openCount > 0;
  }

  /**
   * vfio_pci_open(): the first open enables the device and runs the vendor's hooks.
   * @throws VfioError the hook's errno, "Failed to setup <name> region: <reason>"
   */
  open(): void {
    if (this.probeError) {
      const e = this.probeError;
      throw new VfioError(e.code, `${this.name} is no vfio device: probe failed: ${e.reason}`);
    }
    if (this.openCount === 0) this.enable();
    this.openCount++;
    this.#everOpened = true;
    this.tracer?.deviceOpen?.(this.name);
  }

  /** vfio_pci_release(): the last close disables the device. @throws VfioError EBADF when not open */
  close(): void {
    if (this.openCount === 0) throw new VfioError('EBADF', `device ${this.name} is not open`);
    this.openCount--;
    if (this.openCount === 0) this.disable();
    this.tracer?.deviceClose?.(this.name);
  }

  /** vfio_pci_enable(): the variant's hooks for the device's vendor run here, in order. */
  private enable(): void {
    this.deviceRegions = [];
    this.kvmNotifier.clearListeners();
    for (const hook of this.hooks.forVendor(this.fn.vendor)) {
      try {
        hook.init(this);
      } catch (err) {
        if (err instanceof VfioError && err.code === 'ENODEV') continue;
        this.disable(); // disable_exit: releases the regions registered so far
        if (err instanceof VfioError) {
          throw new VfioError(err.code, `Failed to setup ${hook.name} region: ${err.reason}`);
        }
        throw err;
      }
    }
    this.variantOps?.open?.();
  }

  /** vfio_pci_disable(): interrupts off, device-specific regions released. */
  private disable(): void {
    this.irqs.releaseAll();
    const regions = this.deviceRegions;
    this.#closedRegionMemory = mappedMemoryOf(regions);
    this.deviceRegions = [];
    this.kvmNotifier.clearListeners();
    for (const region of regions) region.ops.release?.();
  }

  /** VFIO_DEVICE_GET_INFO. */
  info(): DeviceInfo {
    return {
      argsz: 16,
      flags: DeviceFlag.RESET | DeviceFlag.PCI,
      numRegions: VFIO_PCI_NUM_REGIONS + this.deviceRegions.length,
      numIrqs: 5,
    };
  }

  /** vfio_pci_register_dev_region(): the next index; `makeOps` builds the ops for it. */
  registerDeviceRegion(
    type: number,
    subtype: number,
    size: bigint,
    flags: number,
    makeOps: (index: number) => RegionOps,
  ): VfioRegion {
    const index = VFIO_PCI_NUM_REGIONS + this.deviceRegions.length;
    const region: VfioRegion = { index, type, subtype, ops: makeOps(index), size, flags };
    this.deviceRegions.push(region);
    return region;
  }

  /** Device-specific regions (index ≥ 9) registered by the hooks of the current open. */
  get regions(): readonly VfioRegion[] {
    return [...this.deviceRegions];
  }

  private deviceRegion(index: number): VfioRegion {
    const region = this.deviceRegions[index - VFIO_PCI_NUM_REGIONS];
    if (!region) {
      throw new VfioError(
        'EINVAL',
        `${this.name} has no region ${index} (${this.info().numRegions} regions)`,
      );
    }
    return region;
  }

  /** What GET_REGION_INFO reports for `index` before encoding. @throws VfioError EINVAL */
  describeRegion(index: number): RegionDescription {
    if (!Number.isInteger(index) || index < 0) throw new VfioError('EINVAL', `no region ${index}`);
    if (index < VFIO_PCI_NUM_REGIONS)
      return this.variantOps?.describeRegion?.(index) ?? describeStandardRegion(this, index);
    const region = this.deviceRegion(index);
    const caps = [
      encodeTypeCap(region.type ?? 0, region.subtype ?? 0),
      ...(region.ops.capabilities?.() ?? []),
    ];
    // vfio_pci_mmap(): a device region maps only with ops->mmap and the MMAP flag
    const mmap = region.flags & RegionFlag.MMAP ? region.ops.mmap?.bind(region.ops) : undefined;
    const base = { index, flags: region.flags, size: region.size, caps };
    return mmap ? { ...base, mmap } : base;
  }

  /**
   * VFIO_DEVICE_GET_REGION_INFO for `index` with the caller's `argsz` (and cap_offset).
   * @throws VfioError EINVAL for an unknown index or argsz < 32
   */
  regionInfo(index: number, argsz = 1024, callerCapOffset = 0): RegionInfoReply {
    if (argsz < VFIO_REGION_INFO_SIZE)
      throw new VfioError('EINVAL', `argsz ${argsz} is smaller than 32`);
    return encodeRegionInfo(this.describeRegion(index), argsz, callerCapOffset);
  }

  /**
   * vfio_pci_rw(): read into or write from `buf` at `offset` of region `index`.
   * @returns bytes done (BAR and device-region accesses are clipped at the region's end)
   * @throws VfioError EINVAL (bad index or offset), EFAULT (config space bounds)
   */
  rw(index: number, offset: bigint, buf: Uint8Array, write: boolean): number {
    if (offset < 0n) throw new VfioError('EINVAL', `negative offset ${offset}`);
    const done =
      index >= VFIO_PCI_NUM_REGIONS
        ? this.deviceRegion(index).ops.rw(offset, buf, write)
        : this.standardRw(index, offset, buf, write);
    this.tracer?.regionAccess?.({ device: this.name, index, offset, count: done, write });
    return done;
  }

  /** Regions 0–8: the variant's ops where it fakes the region or config bytes, else the core's. */
  private standardRw(index: number, offset: bigint, buf: Uint8Array, write: boolean): number {
    const ops = this.variantOps;
    const faked = ops?.regionOps?.(index);
    if (faked) return faked.rw(offset, buf, write);
    if (index === VFIO_PCI_CONFIG_REGION_INDEX && ops) {
      if (write) {
        const taken = buf.length > 0 ? ops.configWrite?.(Number(offset), buf) : undefined;
        if (taken !== undefined) return taken;
      } else {
        const done = standardRegionRw(this, index, offset, buf, write);
        ops.afterConfigRead?.(Number(offset), buf.subarray(0, done));
        return done;
      }
    }
    return standardRegionRw(this, index, offset, buf, write);
  }

  /**
   * vfio_pci_rw() reading up to `count` bytes, lent by the region when it can (a view of its
   * memory, valid until the next access: send or copy it first), else read into a new buffer.
   * @throws VfioError as `rw`
   */
  readView(index: number, offset: bigint, count: number): Uint8Array {
    if (offset < 0n) throw new VfioError('EINVAL', `negative offset ${offset}`);
    const ops =
      index >= VFIO_PCI_NUM_REGIONS
        ? this.deviceRegion(index).ops
        : (this.variantOps?.regionOps?.(index) ?? this.bars[index]);
    if (ops?.readView === undefined) return this.read(index, offset, count);
    const data = ops.readView(offset, count);
    this.tracer?.regionAccess?.({
      device: this.name,
      index,
      offset,
      count: data.length,
      write: false,
    });
    return data;
  }

  /** Where a write to a device-specific region may be received in place (RegionOps.writeTarget). */
  writeTarget(index: number, offset: bigint, count: number): Uint8Array | null {
    const region = this.deviceRegions[index - VFIO_PCI_NUM_REGIONS];
    return region?.ops.writeTarget?.(offset, count) ?? null;
  }

  /**
   * The memory a mapping of this device's regions reaches, as it exists now: per region index,
   * the memory its mmap grants are made from (RegionOps.mappedMemory). A peer that kept
   * such a mapping, or a descriptor of it, after its session ended still reaches the device:
   * the kernel keeps a VFIO device open until its last mapping goes (vma->vm_file).
   */
  mappedMemory(): { readonly region: number; readonly memory: SharedMemory }[] {
    const found: { region: number; memory: SharedMemory }[] = [];
    for (let index = 0; index < VFIO_PCI_NUM_REGIONS; index++) {
      const ops = this.variantOps?.regionOps?.(index) ?? this.bars[index];
      const memory = ops?.mappedMemory?.();
      if (memory !== undefined) found.push({ region: index, memory });
    }
    // Closed, the device-specific regions are gone, not their memory (kept by its store).
    const regions = this.isOpen
      ? mappedMemoryOf(this.deviceRegions)
      : this.#everOpened
        ? this.#closedRegionMemory
        : this.#memoryBeforeOpen();
    return [...found, ...regions];
  }

  /** Never opened: the memory the hooks' regions will map that exists already (one region each). */
  #memoryBeforeOpen(): { region: number; memory: SharedMemory }[] {
    const found: { region: number; memory: SharedMemory }[] = [];
    this.hooks.forVendor(this.fn.vendor).forEach((hook, i) => {
      const memory = hook.memoryBeforeOpen?.(this);
      if (memory !== undefined) found.push({ region: VFIO_PCI_NUM_REGIONS + i, memory });
    });
    return found;
  }

  /**
   * Whether the device was ever opened (before that, `mappedMemory` knows the BARs' and what
   * the hooks' memoryBeforeOpen find, not memory a hook makes at its first open).
   */
  get everOpened(): boolean {
    return this.#everOpened;
  }

  /** The device-specific regions' mapped memory when it was last closed (see mappedMemory). */
  #closedRegionMemory: { region: number; memory: SharedMemory }[] = [];
  #everOpened = false;

  /** Counts BAR memories created: when it changes, `plainRanges` has more to say. */
  get plainGeneration(): number {
    return this.#memoryCreated;
  }

  /**
   * The ranges the native fast path may serve (src/native/fast-path.ts): config space for
   * reads (writes change state), each BAR's mappable memory less the MSI-X table, and what
   * device-specific regions declare (GPU RAM below its fence). Nothing a variant fakes or
   * watches (afterConfigRead, regionOps), and nothing at all while a VfioTracer wants region
   * accesses.
   */
  plainRanges(): PlainRange[] {
    if (this.tracer?.regionAccess !== undefined) return [];
    const ops = this.variantOps;
    const ranges: PlainRange[] = [];
    if (ops?.afterConfigRead === undefined && !ops?.regionOps?.(VFIO_PCI_CONFIG_REGION_INDEX)) {
      const bytes = this.config.plainBytes;
      const region = VFIO_PCI_CONFIG_REGION_INDEX;
      ranges.push({ region, start: 0n, end: BigInt(this.config.size), writable: false, bytes });
    }
    for (const [index, bar] of this.bars.entries()) {
      if (bar && !ops?.regionOps?.(index)) ranges.push(...bar.plainRanges(index));
    }
    for (const region of this.deviceRegions)
      ranges.push(...(region.ops.plainRanges?.(region.index) ?? []));
    return ranges;
  }

  /** Read up to `length` bytes; the result is shorter when clipped at the region's end. */
  read(index: number, offset: bigint | number, length: number): Uint8Array {
    const buf = new Uint8Array(length);
    return buf.subarray(0, this.rw(index, BigInt(offset), buf, false));
  }

  /**
   * Write `data` (copied first) at `offset` of region `index`; returns the bytes written,
   * fewer when clipped at the region's end (vfio_pci_rw).
   * @throws VfioError as `rw`: EINVAL (bad index or offset), EFAULT (config space bounds)
   */
  write(index: number, offset: bigint | number, data: Uint8Array): number {
    return this.rw(index, BigInt(offset), data.slice(), true);
  }

  /**
   * vfio_pci_mmap(): a mapping of region `index` (offset inside the region).
   * @throws VfioError EINVAL when the region is not mmap-able or the range exceeds it
   */
  mmap(index: number, request: MmapRequest): MmapGrant {
    const region = this.describeRegion(index);
    if (!region.mmap)
      throw new VfioError('EINVAL', `region ${index} of ${this.name} cannot be mmapped`);
    return region.mmap(request);
  }

  /** VFIO_DEVICE_GET_IRQ_INFO. @throws VfioError EINVAL */
  irqInfo(index: number, argsz = 16): IrqInfo {
    return this.irqs.info(index, argsz);
  }

  /** VFIO_DEVICE_SET_IRQS; see VfioIrqs.set. The device owns the descriptors from then on. */
  setIrqs(
    index: number,
    start: number,
    count: number,
    flags: number,
    data: Uint8Array,
    fds: readonly number[] = [],
  ) {
    this.irqs.set(index, start, count, flags, data, fds);
  }

  /**
   * Whether the device runs (a migration state with RUNNING in it). A stopped device neither
   * initiates DMA nor raises interrupts (vfio.h vfio_device_mig_state "STOP"): doorbell and DMA
   * commands written meanwhile land in their registers and are not run.
   */
  get running(): boolean {
    return !this.stopped;
  }

  /** Stops (false) or resumes (true) the device; see `running`. */
  setRunning(running: boolean): void {
    this.stopped = !running;
  }

  /**
   * Records that a migration stream is being loaded into the device (`state`: RESUMING, or
   * ERROR after a load that failed) or no longer is (undefined), and tells the state listeners
   * when that changes: a state directory keeps it, so that a restart knows the memory is partly
   * a stream's (snapshotState's `migrationLoad`).
   */
  setMigrationLoad(state: string | undefined): void {
    if (this.#migrationLoad === state) return;
    this.#migrationLoad = state;
    this.stateChanged();
  }

  /** Raise vector `vector` of IRQ `index` (write 1 to its eventfd); false if nothing listened. */
  raiseInterrupt(index: number, vector: number): boolean {
    if (this.stopped) return false;
    const delivered = this.irqs.raise(index, vector);
    this.tracer?.interrupt?.({ device: this.name, index, vector, delivered });
    return delivered;
  }

  /** BAR0 offset of the emulated doorbell (see bar-setup.ts), or undefined without BAR0. */
  get doorbell(): bigint | undefined {
    const bar0 = this.bars[0];
    return bar0 ? doorbellOffset(bar0.size) : undefined;
  }

  private ringDoorbell(value: number): void {
    const index = this.irqs.activeIndex ?? IrqIndex.INTX;
    this.raiseInterrupt(index, index === IrqIndex.INTX ? 0 : value);
  }

  /**
   * The guest memory the device's DMA engine reaches (dma-engine.ts), given by whoever opened
   * it (the vfio-user session: its DMA_MAP table); undefined detaches it.
   */
  attachDma(port: DmaPort | undefined): void {
    this.dmaPort = port;
  }

  private runDma(command: number): void {
    const bar0 = this.bars[0];
    if (!bar0 || this.stopped) return;
    const regs = {
      read: (offset: bigint, length: number) => {
        const buf = new Uint8Array(length);
        bar0.rw(offset, buf, false);
        return buf;
      },
      write: (offset: bigint, data: Uint8Array) => void bar0.rw(offset, data, true),
    };
    runDmaCommand(regs, doorbellOffset(bar0.size), this.dmaPort, command, this.name);
  }

  /** vfio_pci_get_irq_count(). */
  irqCount(index: number): number {
    if (index === IrqIndex.INTX) return this.config.u8(R.PCI_INTERRUPT_PIN) ? 1 : 0;
    if (index === IrqIndex.MSI) {
      const at = this.capabilityOffset(R.PCI_CAP_ID_MSI);
      return at === undefined
        ? 0
        : 1 << ((this.config.u16(at + R.PCI_MSI_FLAGS) & R.PCI_MSI_FLAGS_QMASK) >> 1);
    }
    if (index === IrqIndex.MSIX) {
      const at = this.capabilityOffset(R.PCI_CAP_ID_MSIX);
      return at === undefined
        ? 0
        : (this.config.u16(at + R.PCI_MSIX_FLAGS) & R.PCI_MSIX_FLAGS_QSIZE) + 1;
    }
    if (index === IrqIndex.ERR)
      return this.capabilityOffset(R.PCI_CAP_ID_EXP) === undefined ? 0 : 1;
    return index === IrqIndex.REQ ? 1 : 0;
  }

  /** Config-space offset of the first standard capability `id` (PCI_CAP_ID_*), or undefined. */
  capabilityOffset(id: number): number | undefined {
    return this.config.capabilities().find((c) => c.id === id)?.offset;
  }

  /**
   * VFIO_DEVICE_RESET: the variant's reset first (its ioctl falls through to the core's), then
   * config space and the BARs' register pages back to their defaults; the rest of BAR memory and
   * BAR sizes stay.
   */
  reset(): void {
    this.variantOps?.reset?.();
    this.resetFunction();
    this.stateChanged();
  }

  /**
   * Calls `listener` after every change of the state the device keeps outside its memory
   * (config space: a write, an FLR, VFIO_DEVICE_RESET), e.g. to persist it (serve --state-dir).
   */
  onStateChange(listener: () => void): void {
    this.stateListeners.push(listener);
  }

  /**
   * The state the device keeps outside its memory: config space and each BAR's register pages
   * (undefined for a BAR slot without memory), as `restoreState` takes them back.
   */
  snapshotState(): DeviceStateBytes {
    return {
      config: this.config.snapshot(),
      registers: this.bars.map((bar) => bar?.registerSnapshot()),
      ...(this.#migrationLoad === undefined ? {} : { migrationLoad: this.#migrationLoad }),
    };
  }

  /**
   * Puts back a `snapshotState` of a device built the same way, with what derives from it
   * (INTx masked by PCI_COMMAND_INTX_DISABLE); no listener runs. `migrationLoad` is not put
   * back: the load it names died with the server that ran it (the caller reports it).
   * @throws VfioError EINVAL for config space or register pages of another size or BAR.
   */
  restoreState(state: DeviceStateBytes): void {
    this.config.restore(state.config);
    state.registers.forEach((bytes, i) => {
      const bar = this.bars[i];
      if ((bytes === undefined) !== (bar === undefined))
        throw new VfioError('EINVAL', `${this.name}: BAR${i} ${bar ? 'has' : 'has no'} memory`);
      if (bar && bytes) bar.restoreRegisterSnapshot(bytes);
    });
    this.intxDisabled = (this.config.u16(R.PCI_COMMAND) & R.PCI_COMMAND_INTX_DISABLE) !== 0;
  }

  /**
   * Puts back a migrated device's config space and register pages (records of a migration
   * stream, each page by its BAR and start), with what derives from them (INTx masked by
   * PCI_COMMAND_INTX_DISABLE), ends the record of a load under way (`setMigrationLoad`), then
   * tells the state listeners once (a state directory keeps it).
   * @throws VfioError EINVAL for config space of another size or a page this device has not.
   */
  restoreMigrated(
    config: Uint8Array,
    pages: readonly { bar: number; start: bigint; bytes: Uint8Array }[],
  ): void {
    this.config.restore(config);
    for (const p of pages) {
      const bar = this.bars[p.bar];
      if (!bar) throw new VfioError('EINVAL', `${this.name}: BAR${p.bar} has no memory`);
      bar.restoreRegisters(p.start, p.bytes);
    }
    this.intxDisabled = (this.config.u16(R.PCI_COMMAND) & R.PCI_COMMAND_INTX_DISABLE) !== 0;
    // The load is over: one state change that carries both (a state directory writes it once;
    // two writes would let a kill between them restart as "cut in RESUMING" after a whole load).
    this.#migrationLoad = undefined;
    this.stateChanged();
  }

  private stateChanged(): void {
    for (const listener of this.stateListeners) listener();
  }

  /** The function's own reset (also an FLR through config space, which no variant sees). */
  private resetFunction(): void {
    this.config.reset();
    for (const bar of this.bars) bar?.reset();
    this.intxDisabled = false;
  }

  /**
   * vfio_pci_config.c vfio_basic_config_write(): the virtual PCI_COMMAND_INTX_DISABLE masks
   * INTx when set and unmasks it when cleared.
   */
  private checkIntxDisable(offset: number, length: number): void {
    if (offset > R.PCI_COMMAND + 1 || offset + length <= R.PCI_COMMAND + 1) return;
    const disabled = (this.config.u16(R.PCI_COMMAND) & R.PCI_COMMAND_INTX_DISABLE) !== 0;
    if (disabled === this.intxDisabled) return;
    this.intxDisabled = disabled;
    if (disabled) this.irqs.maskIntx();
    else this.irqs.unmaskIntx();
  }

  /** A function-level reset initiated through PCI_EXP_DEVCTL_BCR_FLR. */
  private checkFlr(offset: number, length: number): void {
    const exp = this.capabilityOffset(R.PCI_CAP_ID_EXP);
    if (exp === undefined) return;
    const devctl = exp + R.PCI_EXP_DEVCTL;
    if (
      offset <= devctl + 1 &&
      offset + length > devctl + 1 &&
      this.config.u16(devctl) & R.PCI_EXP_DEVCTL_BCR_FLR
    ) {
      this.resetFunction();
    }
  }

  /** The LPID of the guest the device's group is attached to, if any. */
  get kvm(): number | undefined {
    return this.kvmNotifier.current;
  }

  /**
   * The group's KVM is set (VFIO_GROUP_NOTIFY_SET_KVM): every listener runs with `lpid`.
   * @throws VfioError the first listener failure, after every listener ran; the LPID stays set
   */
  attachKvm(lpid: number): void {
    this.kvmNotifier.attach(lpid);
  }

  /** The group's KVM is cleared. */
  detachKvm(): void {
    this.kvmNotifier.detach();
  }

  /**
   * Listen for "KVM set"; runs at once when a KVM is already set. Listeners live until the
   * device is closed. @returns a function removing the listener
   * @throws VfioError when the immediate call fails
   */
  onKvmSet(listener: KvmListener): () => void {
    return this.kvmNotifier.listen(listener);
  }

  /** Free BAR memory (the device object is discarded). Closes the device first if open. */
  dispose(): void {
    if (this.openCount > 0) {
      this.openCount = 0;
      this.disable();
    }
    for (const bar of this.bars) bar?.dispose();
  }
}

/** Per device-specific region, the memory its mappings reach. */
function mappedMemoryOf(
  regions: readonly VfioRegion[],
): { region: number; memory: SharedMemory }[] {
  const found: { region: number; memory: SharedMemory }[] = [];
  for (const region of regions) {
    const memory = region.ops.mappedMemory?.();
    if (memory !== undefined) found.push({ region: region.index, memory });
  }
  return found;
}
