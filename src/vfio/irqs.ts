/**
 * The device's interrupts as vfio-pci exposes them (drivers/vfio/pci/vfio_pci.c
 * VFIO_DEVICE_GET_IRQ_INFO / vfio_pci_get_irq_count, drivers/vfio/pci/vfio_pci_intrs.c
 * vfio_pci_set_irqs_ioctl and its helpers, drivers/vfio/vfio.c
 * vfio_set_irqs_validate_and_prepare, v5.12). Eventfds are stored per vector; raising an
 * interrupt adds 1 to the eventfd's counter as eventfd_signal() does: never waiting for the
 * client, saturating when its counter is full. INTx is auto-masked when it fires and
 * stays pending while masked, delivered on unmask. The device owns every descriptor handed
 * to a successful setIrqs from then on: it closes one it does not keep at once, the others when
 * they are replaced, de-assigned or disabled (a failed call leaves them to the caller).
 */
import { closeSync } from 'node:fs';
import { eventfdSignal } from '../native/index.ts';
import { hex } from '../text/index.ts';
import { VfioError } from './errors.ts';

/** VFIO_PCI_*_IRQ_INDEX. */
export const IrqIndex = { INTX: 0, MSI: 1, MSIX: 2, ERR: 3, REQ: 4 } as const;
/**
 * IRQ indexes of a vfio-pci device: INTx, MSI, MSI-X, ERR, REQ (include/uapi/linux/vfio.h
 * VFIO_PCI_NUM_IRQS).
 */
export const VFIO_PCI_NUM_IRQS = 5;
/** The names of IRQ indexes 0–4 (VFIO_PCI_INTX_IRQ_INDEX … VFIO_PCI_REQ_IRQ_INDEX). */
export const IRQ_INDEX_NAMES = ['INTx', 'MSI', 'MSI-X', 'ERR', 'REQ'] as const;

/** VFIO_IRQ_INFO_* (include/uapi/linux/vfio.h). */
export const IrqInfoFlag = { EVENTFD: 0x1, MASKABLE: 0x2, AUTOMASKED: 0x4, NORESIZE: 0x8 } as const;

/** VFIO_IRQ_SET_* (include/uapi/linux/vfio.h). */
export const IrqSetFlag = {
  DATA_NONE: 0x1,
  DATA_BOOL: 0x2,
  DATA_EVENTFD: 0x4,
  ACTION_MASK: 0x8,
  ACTION_UNMASK: 0x10,
  ACTION_TRIGGER: 0x20,
} as const;
const DATA_TYPE_MASK = 0x7;
const ACTION_TYPE_MASK = 0x38;

/** struct vfio_irq_info (include/uapi/linux/vfio.h): argsz, flags, index and count. */
export interface IrqInfo {
  readonly argsz: number;
  readonly flags: number;
  readonly index: number;
  readonly count: number;
}

/** What the interrupt state needs to know of its device. */
export interface IrqSource {
  readonly name: string;
  /** vfio_pci_get_irq_count(). */
  irqCount(index: number): number;
  isPcie(): boolean;
}

const NONE = -1;

type IrqSetHandler = (
  start: number,
  count: number,
  flags: number,
  data: Uint8Array,
  fds: number[],
) => void;

function einval(reason: string): VfioError {
  return new VfioError('EINVAL', reason);
}

/** A device's interrupt state as a migration stream carries it (VfioIrqs.savedState). */
export interface SavedIrqState {
  /** The enabled IRQ index (INTx, MSI, MSI-X), or undefined when none is. */
  readonly index: number | undefined;
  readonly vectors: number;
  readonly intxMasked: boolean;
  readonly intxPending: boolean;
}

/**
 * The interrupts of one device: IRQ info, SET_IRQS (trigger, mask, unmask) and raising, as the
 * module header describes.
 */
export class VfioIrqs {
  /** vdev->irq_type: NONE, INTX, MSI or MSIX. */
  private irqType = NONE;
  private intxTrigger: number | undefined;
  private intxMasked = false;
  private intxPending = false;
  /** vdev->ctx[].trigger for MSI/MSI-X; its length is vdev->num_ctx. */
  private ctx: (number | undefined)[] = [];
  private errTrigger: number | undefined;
  private reqTrigger: number | undefined;

  constructor(private readonly source: IrqSource) {}

  /** The IRQ index whose interrupts are enabled (INTX, MSI or MSIX: one at a time), or undefined. */
  get activeIndex(): number | undefined {
    return this.irqType === NONE ? undefined : this.irqType;
  }

  /**
   * VFIO_DEVICE_GET_IRQ_INFO for `index`.
   * @throws VfioError EINVAL for an index ≥ 5, or ERR on a conventional PCI function
   */
  info(index: number, argsz = 16): IrqInfo {
    if (argsz < 16 || index < 0 || index >= VFIO_PCI_NUM_IRQS)
      throw einval(`no IRQ index ${index}`);
    if (index === IrqIndex.ERR && !this.source.isPcie())
      throw einval('ERR IRQ needs a PCI Express function');
    const flags =
      IrqInfoFlag.EVENTFD |
      (index === IrqIndex.INTX
        ? IrqInfoFlag.MASKABLE | IrqInfoFlag.AUTOMASKED
        : IrqInfoFlag.NORESIZE);
    return { argsz, flags, index, count: this.source.irqCount(index) };
  }

  /**
   * VFIO_DEVICE_SET_IRQS. Eventfds come from `fds` (vfio-user passes them as descriptors) or,
   * when `fds` is empty, from `data` as int32s; with neither, DATA_EVENTFD de-assigns (-1).
   * @throws VfioError EINVAL for a bad combination, ENOTTY for an action the index lacks
   */
  set(
    index: number,
    start: number,
    count: number,
    flags: number,
    data: Uint8Array,
    fds: readonly number[],
  ): void {
    this.validate(index, start, count, flags, data, fds);
    const action = flags & ACTION_TYPE_MASK;
    const handler = this.handlerFor(index, action);
    if (!handler) {
      const name = IRQ_INDEX_NAMES[index] ?? String(index);
      throw new VfioError('ENOTTY', `action ${hex(action)} is not supported for ${name}`);
    }
    const eventfds = flags & IrqSetFlag.DATA_EVENTFD ? this.eventfds(count, data, fds) : [];
    handler(start, count, flags, data, eventfds);
    // descriptors handed over but not kept (e.g. an INTx unmask irqfd) are closed now
    for (const fd of new Set(eventfds)) this.release(fd);
  }

  /** vfio_pci_intrs.c vfio_pci_set_irqs_ioctl(): the helper for an index and action, if any. */
  private handlerFor(index: number, action: number): IrqSetHandler | undefined {
    const trigger = action === IrqSetFlag.ACTION_TRIGGER;
    if (index === IrqIndex.INTX) {
      if (action === IrqSetFlag.ACTION_MASK)
        return (s, c, f, d) => this.setIntxMask(s, c, f, d, true);
      if (action === IrqSetFlag.ACTION_UNMASK)
        return (s, c, f, d) => this.setIntxMask(s, c, f, d, false);
      return trigger ? (s, c, f, d, e) => this.setIntxTrigger(s, c, f, d, e) : undefined;
    }
    if (index === IrqIndex.MSI || index === IrqIndex.MSIX) {
      return trigger ? (s, c, f, d, e) => this.setMsiTrigger(index, s, c, f, d, e) : undefined;
    }
    if (!trigger || (index === IrqIndex.ERR && !this.source.isPcie())) return undefined;
    return (s, c, f, d, e) => {
      if (s !== 0 || c > 1) throw einval(`${IRQ_INDEX_NAMES[index]} has a single vector`);
      this.setSingle(index, c, f, d, e);
    };
  }

  /** drivers/vfio/vfio.c vfio_set_irqs_validate_and_prepare(). */
  private validate(
    index: number,
    start: number,
    count: number,
    flags: number,
    data: Uint8Array,
    fds: readonly number[],
  ): void {
    if (index < 0 || index >= VFIO_PCI_NUM_IRQS) throw einval(`no IRQ index ${index}`);
    if ((flags & ~(DATA_TYPE_MASK | ACTION_TYPE_MASK)) !== 0)
      throw einval(`unknown flags ${hex(flags)}`);
    const max = this.source.irqCount(index);
    if (start >= max || start + count > max) {
      throw einval(`vectors ${start}+${count} exceed the ${max} of ${IRQ_INDEX_NAMES[index]}`);
    }
    const dataType = flags & DATA_TYPE_MASK;
    if (dataType === IrqSetFlag.DATA_BOOL && data.length < count)
      throw einval(`DATA_BOOL needs ${count} bytes`);
    if (dataType === IrqSetFlag.DATA_EVENTFD && fds.length > 0 && fds.length !== count) {
      throw einval(`DATA_EVENTFD with ${fds.length} descriptors for ${count} vectors`);
    }
    if (
      dataType !== IrqSetFlag.DATA_NONE &&
      dataType !== IrqSetFlag.DATA_BOOL &&
      dataType !== IrqSetFlag.DATA_EVENTFD
    ) {
      throw einval(`data type ${hex(dataType)} is not exactly one of NONE, BOOL, EVENTFD`);
    }
  }

  private eventfds(count: number, data: Uint8Array, fds: readonly number[]): number[] {
    if (fds.length > 0) return [...fds];
    if (data.length >= 4 * count) {
      const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
      return Array.from({ length: count }, (_, i) => v.getInt32(4 * i, true));
    }
    return new Array<number>(count).fill(-1);
  }

  private release(fd: number | undefined): void {
    if (fd === undefined || fd < 0) return;
    const stillUsed =
      this.intxTrigger === fd ||
      this.errTrigger === fd ||
      this.reqTrigger === fd ||
      this.ctx.includes(fd);
    if (!stillUsed) closeSync(fd);
  }

  /** vfio_pci_intrs.c vfio_pci_set_intx_mask() / _unmask(). */
  private setIntxMask(
    start: number,
    count: number,
    flags: number,
    data: Uint8Array,
    mask: boolean,
  ): void {
    if (this.irqType !== IrqIndex.INTX || start !== 0 || count !== 1)
      throw einval('INTx is not enabled');
    if (flags & IrqSetFlag.DATA_EVENTFD) {
      if (mask)
        throw new VfioError('ENOTTY', 'INTx mask by eventfd is not implemented (as in Linux)');
      return; // an unmask irqfd: accepted; the VMM also unmasks explicitly
    }
    if (flags & IrqSetFlag.DATA_BOOL && (data[0] ?? 0) === 0) return;
    if (mask) this.intxMasked = true;
    else this.unmaskIntx();
  }

  /** vfio_pci_intx_mask(): only while INTx is the enabled type. */
  maskIntx(): void {
    if (this.irqType === IrqIndex.INTX) this.intxMasked = true;
  }

  /** vfio_pci_intx_unmask(): a pending INTx fires now. */
  unmaskIntx(): void {
    if (this.irqType !== IrqIndex.INTX) return;
    this.intxMasked = false;
    if (this.intxPending) {
      this.intxPending = false;
      this.raise(IrqIndex.INTX, 0);
    }
  }

  /** vfio_pci_intrs.c vfio_pci_set_intx_trigger(). */
  private setIntxTrigger(
    start: number,
    count: number,
    flags: number,
    data: Uint8Array,
    fds: number[],
  ): void {
    if (this.irqType === IrqIndex.INTX && count === 0 && flags & IrqSetFlag.DATA_NONE) {
      this.disable();
      return;
    }
    const usable = this.irqType === IrqIndex.INTX || this.irqType === NONE;
    if (!usable || start !== 0 || count !== 1)
      throw einval('INTx trigger needs start 0, count 1, no MSI active');
    if (flags & IrqSetFlag.DATA_EVENTFD) {
      if (this.irqType === NONE) {
        this.irqType = IrqIndex.INTX;
        this.intxMasked = false;
        this.intxPending = false;
      }
      const old = this.intxTrigger;
      const fd = fds[0] ?? -1;
      this.intxTrigger = fd >= 0 ? fd : undefined;
      if (old !== fd) this.release(old);
      return;
    }
    if (this.irqType !== IrqIndex.INTX) throw einval('INTx is not enabled');
    // vfio_send_intx_eventfd(): a loopback trigger signals without auto-masking
    if (flags & IrqSetFlag.DATA_NONE || (data[0] ?? 0) !== 0) this.signal(this.intxTrigger);
  }

  /** vfio_pci_intrs.c vfio_pci_set_msi_trigger() / vfio_msi_set_block(). */
  private setMsiTrigger(
    index: number,
    start: number,
    count: number,
    flags: number,
    data: Uint8Array,
    fds: number[],
  ) {
    if (this.irqType === index && count === 0 && flags & IrqSetFlag.DATA_NONE) {
      this.disable();
      return;
    }
    if (!(this.irqType === index || this.irqType === NONE))
      throw einval('another interrupt type is enabled');
    if (flags & IrqSetFlag.DATA_EVENTFD) {
      if (this.irqType === NONE) {
        this.irqType = index;
        this.ctx = new Array<number | undefined>(start + count).fill(undefined);
      }
      if (start >= this.ctx.length || start + count > this.ctx.length) {
        throw einval(`vectors ${start}+${count} exceed the ${this.ctx.length} enabled`);
      }
      fds.forEach((fd, i) => {
        const old = this.ctx[start + i];
        this.ctx[start + i] = fd >= 0 ? fd : undefined;
        if (old !== fd) this.release(old);
      });
      return;
    }
    if (this.irqType !== index || start + count > this.ctx.length)
      throw einval(`${IRQ_INDEX_NAMES[index]} is not enabled`);
    for (let i = start; i < start + count; i++) {
      if (flags & IrqSetFlag.DATA_NONE || (data[i - start] ?? 0) !== 0) this.raise(index, i);
    }
  }

  /** vfio_pci_intrs.c vfio_pci_set_ctx_trigger_single() for ERR and REQ. */
  private setSingle(
    index: number,
    count: number,
    flags: number,
    data: Uint8Array,
    fds: number[],
  ): void {
    const current = index === IrqIndex.ERR ? this.errTrigger : this.reqTrigger;
    const assign = (fd: number | undefined): void => {
      if (index === IrqIndex.ERR) this.errTrigger = fd;
      else this.reqTrigger = fd;
      if (current !== fd) this.release(current);
    };
    if (flags & IrqSetFlag.DATA_NONE) {
      if (current !== undefined) {
        if (count) this.raise(index, 0);
        else assign(undefined);
      }
      return;
    }
    if (!count) throw einval(`${IRQ_INDEX_NAMES[index]} needs count 1`);
    if (flags & IrqSetFlag.DATA_BOOL) {
      if ((data[0] ?? 0) !== 0) this.raise(index, 0);
      return;
    }
    const fd = fds[0] ?? -1;
    if (fd === -1) assign(undefined);
    else if (fd >= 0) assign(fd);
  }

  /** Disable INTx/MSI/MSI-X (irq_type back to NONE), closing their eventfds. */
  disable(): void {
    const intx = this.intxTrigger;
    const ctx = this.ctx;
    this.irqType = NONE;
    this.intxTrigger = undefined;
    this.intxMasked = false;
    this.intxPending = false;
    this.ctx = [];
    this.release(intx);
    for (const fd of ctx) this.release(fd);
  }

  /** Everything off, ERR and REQ too (vfio_pci_release()). */
  releaseAll(): void {
    this.disable();
    const err = this.errTrigger;
    const req = this.reqTrigger;
    this.errTrigger = undefined;
    this.reqTrigger = undefined;
    this.release(err);
    this.release(req);
  }

  private triggerFor(index: number, vector: number): number | undefined {
    if (index === IrqIndex.INTX)
      return this.irqType === IrqIndex.INTX && vector === 0 ? this.intxTrigger : undefined;
    if (index === IrqIndex.MSI || index === IrqIndex.MSIX)
      return this.irqType === index ? this.ctx[vector] : undefined;
    if (index === IrqIndex.ERR) return vector === 0 ? this.errTrigger : undefined;
    if (index === IrqIndex.REQ) return vector === 0 ? this.reqTrigger : undefined;
    return undefined;
  }

  /**
   * Signal vector `vector` of `index`: write the u64 1 to its eventfd. INTx auto-masks, and
   * while masked it is only left pending. Returns whether an eventfd was written.
   */
  raise(index: number, vector: number): boolean {
    if (index === IrqIndex.INTX && this.irqType === IrqIndex.INTX) {
      if (this.intxMasked) {
        this.intxPending = true;
        return false;
      }
      this.intxMasked = true; // vfio_intx_handler(): VFIO_IRQ_INFO_AUTOMASKED
    }
    return this.signal(this.triggerFor(index, vector));
  }

  /**
   * fs/eventfd.c eventfd_signal(ctx, 1). The client shares the eventfd's file description and
   * may have left its counter full with O_NONBLOCK cleared: a plain write(2) would wait for
   * the client, and every device with it. The kernel's signal never sleeps and saturates a full
   * counter; so does this one (the counter stays readable).
   */
  private signal(fd: number | undefined): boolean {
    if (fd === undefined) return false;
    eventfdSignal(fd, 1n);
    return true;
  }

  /**
   * What a saved device carries of its interrupts: the enabled index (undefined: none), its
   * vectors, and INTx's mask and pending bits. The eventfds are the VMM's and stay with it.
   */
  get savedState(): SavedIrqState {
    return {
      index: this.activeIndex,
      vectors: this.irqType === IrqIndex.INTX ? 1 : this.ctx.length,
      intxMasked: this.intxMasked,
      intxPending: this.intxPending,
    };
  }

  /**
   * A migrated device's INTx mask and pending bits (the VMM enables the index with its own
   * eventfds on the destination; a pending INTx fires at its unmask, as on the source).
   */
  restoreIntx(masked: boolean, pending: boolean): void {
    this.intxMasked = masked;
    this.intxPending = pending;
  }

  /** INTx's mask and pending bits (vfio_pci_intx: what a saved device carries), for `restoreIntx`. */
  get intxState(): { masked: boolean; pending: boolean } {
    return { masked: this.intxMasked, pending: this.intxPending };
  }
}
