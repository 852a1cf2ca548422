/**
 * What the NVLink2 subdriver makes of each PCI function, in `dt doctor --json`'s vocabulary
 * (issue 2 item 5: address, vendor/device as hex strings, role, iommuGroup, result
 * nvlink2 | plain | error, errno name, reason). Found the way the kernel would find it: a
 * throwaway device is opened and closed (vfio_pci_enable ran the NVLink2 inits by vendor) in a
 * throwaway NVLink2 context, so probing touches neither the machine's firmware tables nor its
 * device memory. The hooks are wrapped to keep the reason of an ENODEV the core swallows.
 */

import {
  createNvlink2Context,
  type DeviceMemory,
  DeviceMemoryStore,
  nvlink2Hooks,
} from '../nvlink2/index.ts';
import type { Host, PciFunction, PciRole } from '../platform/types.ts';
import { VfioPciDevice } from '../vfio/device.ts';
import { VfioError } from '../vfio/errors.ts';
import type { SharedMemory } from '../vfio/shared-memory.ts';
import type { VariantHook } from '../vfio/variant.ts';

export type ProbeResult = 'nvlink2' | 'plain' | 'error';

/** One PCI function as `dt doctor --json` and `devices.json` list it. */
export interface FunctionStatus {
  readonly address: string;
  /** "0x10de". */
  readonly vendor: string;
  readonly device: string;
  readonly role: PciRole;
  readonly iommuGroup: number;
  readonly result: ProbeResult;
  /** errno name for plain (ENODEV) and error results. */
  readonly errno?: string;
  readonly reason?: string;
}

const hex4 = (v: number) => `0x${v.toString(16).padStart(4, '0')}`;

/** Memory that holds nothing: the probe never reads, writes or maps it. */
function nullMemory(name: string, size: bigint): DeviceMemory & SharedMemory {
  return {
    name,
    fd: -1,
    size,
    read: (_offset, buf) => void buf.fill(0),
    write: () => {},
    dataRanges: () => [],
    close: () => {},
  };
}

/** The hooks of a throwaway context, recording the first ENODEV reason of each open. */
function recordingHooks(host: Host, reasons: string[]): VariantHook[] {
  const ctx = createNvlink2Context(host, { memory: new DeviceMemoryStore(nullMemory) });
  return nvlink2Hooks(ctx).map((hook) => ({
    ...hook,
    init: (device) => {
      try {
        hook.init(device);
      } catch (err) {
        if (err instanceof VfioError && err.code === 'ENODEV') reasons.push(err.reason);
        throw err;
      }
    },
  }));
}

/** Opens and closes `fn` once, as vfio_pci_enable/disable would, and says what happened. */
export function probeFunction(host: Host, fn: PciFunction): FunctionStatus {
  const base = {
    address: fn.name,
    vendor: hex4(fn.vendor),
    device: hex4(fn.device),
    role: fn.role,
    iommuGroup: fn.iommuGroup,
  };
  const reasons: string[] = [];
  const device = new VfioPciDevice(fn, host, recordingHooks(host, reasons), { memory: nullMemory });
  try {
    device.open();
    const nvlink2 = device.regions.length > 0;
    device.close();
    if (nvlink2) return { ...base, result: 'nvlink2' };
    const reason = reasons[0] ?? `no NVLink2 init runs for vendor ${hex4(fn.vendor)}`;
    return { ...base, result: 'plain', errno: 'ENODEV', reason };
  } catch (err) {
    if (!(err instanceof VfioError)) throw err;
    return { ...base, result: 'error', errno: err.code, reason: err.reason };
  } finally {
    device.dispose();
  }
}

/** `probeFunction` for every function of `host`, in address order. */
export function probeHost(host: Host): FunctionStatus[] {
  return host.functions.map((fn) => probeFunction(host, fn));
}
