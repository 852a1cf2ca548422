/**
 * The row `dt doctor --json` (and DIR/devices.json) gives each PCI function, shared by the
 * variants' doctors (src/nvlink2/doctor.ts, src/nvgrace/doctor.ts): who the function is, what
 * probing it as the server would gave, and the regions the variant added.
 */
import type { PciFunction } from '../platform/index.ts';
import { hex } from '../text/index.ts';

/**
 * One function's doctor row. `Bound` is the variant's result word ("nvlink2", "nvgrace");
 * `Region` the variant's description of each region it added.
 */
export interface DoctorRow<Bound extends string, Region> {
  /** "DDDD:BB:DD.F". */
  readonly address: string;
  /** "0x10de". */
  readonly vendor: string;
  readonly device: string;
  readonly role: 'gpu' | 'bridge' | 'other';
  /** The kernel's IOMMU group; null when it gave the function none (a root port). */
  readonly iommuGroup: number | null;
  /** The variant bound it, the core ops serve it (`plain`), or the probe failed (`error`). */
  readonly result: Bound | 'plain' | 'error';
  /** "ENODEV" for plain devices whose hook declined, the failure's errno for errors; else null. */
  readonly errno: string | null;
  readonly reason: string | null;
  readonly regions: Region[];
  /** Kernel warnings the probe logged (e.g. "Using fallback ibm,mmio-atsd[0] for ATSD."). */
  readonly warnings: string[];
}

/** The identity fields of `fn`'s row: address, IDs as 4-digit hex, role, IOMMU group. */
export function doctorRowIdentity(
  fn: PciFunction,
): Pick<DoctorRow<string, never>, 'address' | 'vendor' | 'device' | 'role' | 'iommuGroup'> {
  return {
    address: fn.name,
    vendor: hex(fn.vendor, 4),
    device: hex(fn.device, 4),
    role: fn.role,
    iommuGroup: fn.iommuGroup,
  };
}
