/**
 * What the NVLink2 subdriver makes of each PCI function, in `dt doctor --json`'s vocabulary:
 * the doctor's own answer (src/nvlink2/doctor.ts runDoctorOnHost opens every function as a
 * vfio-pci device with the subdriver's hooks in a throwaway NVLink2 context, so probing
 * touches neither the machine's firmware tables nor its device memory), cut to the fields
 * `devices.json` lists.
 */
import type { DoctorOptions } from '../nvlink2/index.ts';
import type { Host } from '../platform/index.ts';
import { type HostDoctorEntry, runHostDoctor } from './host-doctor.ts';

/**
 * What the variant that binds a function made of it: its regions, or the errno and reason (a
 * `HostDoctorEntry`'s result).
 */
export type ProbeResult = HostDoctorEntry['result'];

/** One PCI function as `dt doctor --json` and `devices.json` list it. */
export type FunctionStatus = Pick<
  HostDoctorEntry,
  'address' | 'vendor' | 'device' | 'role' | 'iommuGroup' | 'result' | 'errno' | 'reason'
>;

/**
 * The doctors' verdict on every function of `host`, in address order (their regions are not
 * listed: a status has none).
 */
export function probeHost(host: Host, options: DoctorOptions = {}): FunctionStatus[] {
  return runHostDoctor(host, { ...options, regions: false }).map(
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
