/**
 * Builds a function's config space from its PciFunction (ids, class, revision, subsystem) and
 * its DeviceProfile, with the standard header's permissions of vfio_pci_config.c
 * init_pci_cap_basic_perm(): ids read-only, command writable in the bits the function
 * implements, status error bits RW1C, BARs virtualised, interrupt line writable, pin read-only.
 */
import type { PciFunction } from '../platform/index.ts';
import { hex } from '../text/index.ts';
import {
  addExpCapability,
  addMsiCapability,
  addMsixCapability,
  addPmCapability,
  addVendorCapability,
  linkCapabilities,
} from './capabilities-pci.ts';
import { ConfigSpace } from './config-space.ts';
import type { CapabilitySpec, DeviceProfile, ExtendedCapabilitySpec } from './device-profile.ts';
import * as R from './pci-regs.ts';

function addCapability(cs: ConfigSpace, cap: CapabilitySpec): void {
  if (cap.kind === 'pm') addPmCapability(cs, cap.at);
  else if (cap.kind === 'msi') addMsiCapability(cs, cap.at, cap.layout);
  else if (cap.kind === 'exp') addExpCapability(cs, cap.at, cap.layout);
  else if (cap.kind === 'msix') addMsixCapability(cs, cap.at, cap.layout);
  else addVendorCapability(cs, cap.at, cap.body);
}

function defineHeader(cs: ConfigSpace, fn: PciFunction, profile: DeviceProfile): void {
  cs.claim(0, R.PCI_STD_HEADER_SIZEOF, R.PCI_CAP_ID_BASIC);
  cs.define(R.PCI_VENDOR_ID, 2, fn.vendor);
  cs.define(R.PCI_DEVICE_ID, 2, fn.device);
  // INTX_DISABLE is virtual and always writable (init_pci_cap_basic_perm)
  cs.define(R.PCI_COMMAND, 2, 0, profile.commandWritable | R.PCI_COMMAND_INTX_DISABLE);
  const capList = profile.capabilities.length > 0 ? R.PCI_STATUS_CAP_LIST : 0;
  cs.define(R.PCI_STATUS, 2, capList, 0, R.PCI_STATUS_RW1C);
  cs.define(R.PCI_CLASS_REVISION, 4, ((fn.classCode << 8) | (fn.revision & 0xff)) >>> 0);
  cs.define(R.PCI_CACHE_LINE_SIZE, 1, 0, 0xff);
  cs.define(R.PCI_HEADER_TYPE, 1, profile.headerType);
  cs.define(R.PCI_SUBSYSTEM_VENDOR_ID, 2, fn.subsystemVendor);
  cs.define(R.PCI_SUBSYSTEM_ID, 2, fn.subsystemDevice);
  cs.define(R.PCI_ROM_ADDRESS, 4, 0, 0xffffffff);
  cs.define(R.PCI_INTERRUPT_LINE, 1, 0, 0xff);
  cs.define(R.PCI_INTERRUPT_PIN, 1, profile.interruptPin);
}

/**
 * Extended capabilities, read-only (no permission bits: vfio_pci_config.c vfio_ecap_init passes
 * them through), each header's next pointing at the one after. @throws Error when one does
 * not fit the extended space or overlaps the one before.
 */
function addExtendedCapabilities(cs: ConfigSpace, caps: readonly ExtendedCapabilitySpec[]): void {
  let end = R.PCI_CFG_SPACE_SIZE;
  caps.forEach((cap, i) => {
    const length = 4 + cap.body.length;
    if (cap.at < end || cap.at % 4 !== 0 || cap.at + length > cs.size)
      throw new Error(`extended capability ${cap.id} at ${hex(cap.at)} does not fit`);
    const next = caps[i + 1]?.at ?? 0;
    cs.define(cap.at, 4, ((next << 20) | ((cap.version & 0xf) << 16) | (cap.id & 0xffff)) >>> 0);
    cap.body.forEach((byte, k) => {
      cs.define(cap.at + 4 + k, 1, byte & 0xff);
    });
    end = cap.at + length;
  });
}

/** A fresh config space in its reset state. */
export function buildConfigSpace(fn: PciFunction, profile: DeviceProfile): ConfigSpace {
  const cs = new ConfigSpace(profile.configSize);
  defineHeader(cs, fn, profile);
  for (const bar of profile.bars) cs.addBar(bar);
  for (const cap of profile.capabilities) addCapability(cs, cap);
  linkCapabilities(
    cs,
    profile.capabilities.map((c) => c.at),
  );
  addExtendedCapabilities(cs, profile.extendedCapabilities ?? []);
  cs.sealDefaults();
  return cs;
}
