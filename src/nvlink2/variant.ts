/**
 * The NVLink2 subdriver as a vfio-pci variant (Linux 5.0–5.12 vfio_pci_nvlink2.c, which
 * vfio_pci.c called by vendor): it drives NVIDIA and IBM functions, gives the V100/P100 GPUs and
 * the NPU2 bridges their profiles, registers the GPU RAM and ATSD regions through its two hooks
 * and names them. NVLINK2_VOCABULARY is the part a reader of replies needs (no host).
 */
import { PCI_VENDOR_ID_IBM, PCI_VENDOR_ID_NVIDIA } from '../platform/index.ts';
import type { VariantVocabulary, VfioPciVariant } from '../vfio/index.ts';
import {
  NVLINK2_ATSD_REGION_TYPE,
  NVLINK2_RAM_REGION_TYPE,
  nvlink2Hooks,
  VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD,
  VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM,
} from './hooks.ts';
import { nvlink2ModelName, nvlink2Profile } from './profile.ts';
import { NVLINK2_REGION_CAPABILITIES, type Nvlink2CapabilityValue } from './region-caps.ts';
import type { Nvlink2Context } from './types.ts';

/** The names of the NVLink2 regions, capabilities and functions. */
export const NVLINK2_VOCABULARY: VariantVocabulary<Nvlink2CapabilityValue> = {
  name: 'vfio_pci_nvlink2',
  regions: [
    {
      type: NVLINK2_RAM_REGION_TYPE,
      subtype: VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM,
      name: 'NVLINK2 RAM',
    },
    {
      type: NVLINK2_ATSD_REGION_TYPE,
      subtype: VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD,
      name: 'NVLINK2 ATSD',
    },
  ],
  regionCapabilities: NVLINK2_REGION_CAPABILITIES,
  modelName: nvlink2ModelName,
};

/**
 * The variant over `ctx` (one per emulated host): every NVIDIA and IBM function, as the 5.x
 * kernel tried its inits for those vendors; the hooks decline (ENODEV) the ones without NVLink2.
 */
export function nvlink2Variant(ctx: Nvlink2Context): VfioPciVariant<Nvlink2CapabilityValue> {
  return {
    ...NVLINK2_VOCABULARY,
    matches: (fn) => fn.vendor === PCI_VENDOR_ID_NVIDIA || fn.vendor === PCI_VENDOR_ID_IBM,
    profile: (fn) => nvlink2Profile(fn, ctx.host),
    hooks: nvlink2Hooks(ctx),
  };
}
