/**
 * What the NVLink2 subdriver makes of each PCI function, in `dt doctor --json`'s vocabulary:
 * the doctor's own answer (src/nvlink2/doctor.ts runDoctorOnHost opens every function as a
 * vfio-pci device with the subdriver's hooks in a throwaway NVLink2 context, so probing
 * touches neither the machine's firmware tables nor its device memory), cut to the fields
 * `devices.json` lists.
 */
import { type DoctorEntry, type DoctorOptions, runDoctorOnHost } from '../nvlink2/index.ts';
import type { Host } from '../platform/index.ts';

/**
 * What the subdriver's init made of a function: its regions, or the errno and reason (a
 * `DoctorEntry`'s result).
 */
export type ProbeResult = DoctorEntry['result'];

/** One PCI function as `dt doctor --json` and `devices.json` list it. */
export type FunctionStatus = Pick<
  DoctorEntry,
  'address' | 'vendor' | 'device' | 'role' | 'iommuGroup' | 'result' | 'errno' | 'reason'
>;

/** The doctor's verdict on every function of `host`, in address order. */
export function probeHost(host: Host, options: DoctorOptions = {}): FunctionStatus[] {
  return runDoctorOnHost(host, options).map(
    ({ address, vendor, device, role, iommuGroup, result, errno, reason }) => ({
      address,
      vendor,
      device,
      role,
      iommuGroup,
      result,
      errno,
      reason,
    }),
  );
}
