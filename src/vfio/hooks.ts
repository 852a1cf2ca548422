/**
 * The table of variant hooks by PCI vendor. Linux 5.0–5.12 called the NVLink2 inits from
 * vfio_pci_enable() (drivers/vfio/pci/vfio_pci.c) when the vendor matched; here subdrivers
 * register hooks and the core asks the table, so the core never names a subdriver.
 */
import type { VariantHook } from './variant.ts';

/** The hooks of every registered variant, looked up by PCI vendor. */
export class VariantHookRegistry {
  private readonly hooks: VariantHook[] = [];

  constructor(hooks: Iterable<VariantHook> = []) {
    for (const hook of hooks) this.register(hook);
  }

  /** Append a hook; hooks for one vendor run in registration order. */
  register(hook: VariantHook): this {
    this.hooks.push(hook);
    return this;
  }

  /** The hooks tried for a device of `vendor` (the kernel matched the vendor only). */
  forVendor(vendor: number): readonly VariantHook[] {
    return this.hooks.filter((h) => h.vendor === vendor);
  }

  /** Every registered hook, in registration order (a copy). */
  all(): readonly VariantHook[] {
    return [...this.hooks];
  }
}
