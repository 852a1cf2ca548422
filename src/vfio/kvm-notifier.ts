/**
 * The group's "KVM set" notifier (drivers/vfio/vfio.c vfio_register_notifier with
 * VFIO_GROUP_NOTIFY_SET_KVM, v5.12): a guest partition (LPID) is attached to the device's group
 * by the VMM; listeners run then, and at once on registration if one is already attached.
 * The LPID outlives device opens; listeners belong to one open and are cleared at close.
 */
import { VfioError } from './errors.ts';

/** Called with the LPID of the guest partition attached to the group. */
export type KvmListener = (lpid: number) => void;

/** The group's KVM notifier: the attached LPID, and the listeners of the current open. */
export class KvmNotifier {
  private lpid: number | undefined;
  private listeners: KvmListener[] = [];

  constructor(private readonly deviceName: string) {}

  /** The attached LPID (the guest partition's), or undefined while none is. */
  get current(): number | undefined {
    return this.lpid;
  }

  /**
   * Set the LPID and run every listener.
   * @throws VfioError the first listener failure, after every listener ran; the LPID stays set
   */
  attach(lpid: number): void {
    this.lpid = lpid;
    let failure: unknown;
    for (const listener of [...this.listeners]) {
      try {
        listener(lpid);
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure instanceof VfioError) {
      throw new VfioError(
        failure.code,
        `KVM set for ${this.deviceName} (LPID ${lpid}): ${failure.reason}`,
      );
    }
    if (failure !== undefined) throw failure;
  }

  /** Forgets the LPID (KVM unset); listeners stay registered, none runs. */
  detach(): void {
    this.lpid = undefined;
  }

  /** Register; runs at once when an LPID is attached. @returns the remover */
  listen(listener: KvmListener): () => void {
    this.listeners.push(listener);
    if (this.lpid !== undefined) listener(this.lpid);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** Drop every listener (the device is closed). */
  clearListeners(): void {
    this.listeners = [];
  }
}
