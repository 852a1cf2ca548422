/**
 * A hand-built Host for the tests of the vfio core on NVLink2 hardware (core-tests/): one PHB,
 * a V100 16 GB, a V100 32 GB, an NPU2 bridge whose ibm,nvlink leads to link index 5, and a
 * P100; no ibm,npu / ibm,gpu, so the subdriver's own hooks decline every function. fakeVariant
 * gives the core the NVLink2 profiles and names with the tests' hooks. Not production code.
 */
import { cells, Fdt, FdtNode } from '../../../src/fdt/index.ts';
import { nvlink2Profile } from '../../../src/nvlink2/profile.ts';
import type { Nvlink2CapabilityValue } from '../../../src/nvlink2/region-caps.ts';
import { NVLINK2_VOCABULARY } from '../../../src/nvlink2/variant.ts';
import type { Host, PciFunction, PciRole, Phb } from '../../../src/platform/index.ts';
import {
  atsdAddresses,
  CLASS_CODE_3D_CONTROLLER,
  CLASS_CODE_NPU2_BRIDGE,
  nvlinkOfBridge,
  PCI_DEVICE_ID_IBM_NPU2_NVLINK,
  PCI_DEVICE_ID_NVIDIA_P100_SXM2,
  PCI_DEVICE_ID_NVIDIA_V100_SXM2_16GB,
  PCI_DEVICE_ID_NVIDIA_V100_SXM2_32GB,
  PCI_SUBSYSTEM_ID_NVIDIA_V100_SXM2_16GB,
  PCI_SUBSYSTEM_ID_NVIDIA_V100_SXM2_32GB,
  PCI_VENDOR_ID_IBM,
  PCI_VENDOR_ID_NVIDIA,
  pciName,
} from '../../../src/platform/index.ts';
import { hexDigits } from '../../../src/text/index.ts';
import type { VariantHook, VfioPciVariant } from '../../../src/vfio/index.ts';

export interface FakeFunctionSpec {
  readonly devfn: number;
  readonly vendor: number;
  readonly device: number;
  readonly classCode: number;
  readonly revision?: number;
  readonly subsystemVendor?: number;
  readonly subsystemDevice?: number;
  readonly role?: PciRole;
}

export const FAKE_FUNCTIONS: readonly FakeFunctionSpec[] = [
  {
    devfn: 0x00,
    vendor: PCI_VENDOR_ID_NVIDIA,
    device: PCI_DEVICE_ID_NVIDIA_V100_SXM2_16GB,
    classCode: CLASS_CODE_3D_CONTROLLER,
    revision: 0xa1,
    subsystemVendor: PCI_VENDOR_ID_NVIDIA,
    subsystemDevice: PCI_SUBSYSTEM_ID_NVIDIA_V100_SXM2_16GB,
    role: 'gpu',
  },
  {
    devfn: 0x08,
    vendor: PCI_VENDOR_ID_NVIDIA,
    device: PCI_DEVICE_ID_NVIDIA_V100_SXM2_32GB,
    classCode: CLASS_CODE_3D_CONTROLLER,
    revision: 0xa1,
    subsystemVendor: PCI_VENDOR_ID_NVIDIA,
    subsystemDevice: PCI_SUBSYSTEM_ID_NVIDIA_V100_SXM2_32GB,
    role: 'gpu',
  },
  {
    devfn: 0x10,
    vendor: PCI_VENDOR_ID_IBM,
    device: PCI_DEVICE_ID_IBM_NPU2_NVLINK,
    classCode: CLASS_CODE_NPU2_BRIDGE,
    revision: 0x01,
    role: 'bridge',
  },
  {
    devfn: 0x18,
    vendor: PCI_VENDOR_ID_NVIDIA,
    device: PCI_DEVICE_ID_NVIDIA_P100_SXM2,
    classCode: CLASS_CODE_3D_CONTROLLER,
    revision: 0xa1,
    role: 'other',
  },
];

/** A Host over a tiny tree: /pciex@0 with one node per function; the bridge's ibm,nvlink → link@5. */
export function buildFakeHost(specs: readonly FakeFunctionSpec[] = FAKE_FUNCTIONS): Host {
  const root = new FdtNode('');
  const fdt = new Fdt(root, 'fake');
  const phbNode = root.addChild('pciex@0');
  const link = root.addChild('link@5');
  link.setProperty('ibm,npu-link-index', cells.u32(5)).setProperty('phandle', cells.u32(0x50));
  const functions: PciFunction[] = [];
  const phb: Phb = { node: phbNode, domain: 0, isNpu: false, chipId: 0, phbIndex: 0, functions };
  for (const spec of specs) {
    const node = phbNode.addChild(`dev@${(spec.devfn >> 3).toString(16)},${spec.devfn & 7}`);
    if (spec.role === 'bridge') node.setProperty('ibm,nvlink', cells.u32(0x50));
    const address = { domain: 0, bus: 0, device: spec.devfn >> 3, fn: spec.devfn & 7 };
    functions.push({
      name: pciName(address),
      address,
      devfn: spec.devfn,
      node,
      phb,
      vendor: spec.vendor,
      device: spec.device,
      classCode: spec.classCode,
      revision: spec.revision ?? 0,
      subsystemVendor: spec.subsystemVendor ?? 0,
      subsystemDevice: spec.subsystemDevice ?? 0,
      role: spec.role ?? 'other',
      iommuGroup: 0,
    });
  }
  return {
    fdt,
    phbs: [phb],
    functions,
    warnings: [],
    functionByName: (name) => functions.find((f) => f.name === name),
    functionForNode: (node) => functions.find((f) => f.node === node),
    npuBridgeOfGpu: () => undefined,
    gpuOfBridge: () => undefined,
    groupMembers: () => functions,
    nvlinkOfBridge: (bridge) => nvlinkOfBridge(fdt, bridge),
    atsdAddresses: (p) => atsdAddresses(p),
  };
}

/** The fake host's function with `device` id. */
export function fakeFunction(host: Host, device: number): PciFunction {
  const fn = host.functions.find((f) => f.device === device);
  if (!fn) throw new Error(`fake host has no device ${hexDigits(device, 4)}`);
  return fn;
}

/**
 * The NVLink2 variant's profiles and names for every function of `host`, with `hooks` in place
 * of the subdriver's (none: a device with the hardware's config space and no NVLink2 regions).
 */
export function fakeVariant(
  host: Host,
  hooks: readonly VariantHook[] = [],
): VfioPciVariant<Nvlink2CapabilityValue> {
  return {
    ...NVLINK2_VOCABULARY,
    matches: () => true,
    profile: (fn) => nvlink2Profile(fn, host),
    hooks,
  };
}
