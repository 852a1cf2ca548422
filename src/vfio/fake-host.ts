/**
 * A hand-built Host for the vfio core's tests (and for anyone who needs a device without
 * the platform builder): one PHB, a V100 16 GB, a V100 32 GB, an NPU2 bridge linked to the
 * first GPU, and a P100. Not used by production code.
 */
import { cells, Fdt, FdtNode } from '../fdt/tree.ts';
import { atsdAddresses, nvlinkOfBridge } from '../platform/host.ts';
import { pciName } from '../platform/pci-name.ts';
import type { Host, PciFunction, PciRole, Phb } from '../platform/types.ts';
import { hexDigits } from '../text/index.ts';

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
    vendor: 0x10de,
    device: 0x1db1,
    classCode: 0x030200,
    revision: 0xa1,
    subsystemVendor: 0x10de,
    subsystemDevice: 0x1212,
    role: 'gpu',
  },
  {
    devfn: 0x08,
    vendor: 0x10de,
    device: 0x1db5,
    classCode: 0x030200,
    revision: 0xa1,
    subsystemVendor: 0x10de,
    subsystemDevice: 0x1249,
    role: 'gpu',
  },
  {
    devfn: 0x10,
    vendor: 0x1014,
    device: 0x04ea,
    classCode: 0x068001,
    revision: 0x01,
    role: 'bridge',
  },
  {
    devfn: 0x18,
    vendor: 0x10de,
    device: 0x15f9,
    classCode: 0x030200,
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
