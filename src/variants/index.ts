/**
 * The variant drivers this project has, in one list (the kernel's drivers/vfio/pci/Kconfig):
 * what a reader of any served device needs to name its regions and decode its capabilities,
 * as a VMM built against include/uapi/linux/vfio.h knows every variant's structs. Layered above
 * each variant folder and below the wire; a new variant adds itself here.
 */
import {
  NVLINK2_REGION_CAPABILITIES,
  NVLINK2_VOCABULARY,
  type Nvlink2CapabilityValue,
} from '../nvlink2/index.ts';
import type { RegionCapabilityKind, VariantVocabulary } from '../vfio/index.ts';

/** Every variant's capability values (a discriminated union by `kind`). */
export type KnownCapabilityValue = Nvlink2CapabilityValue;

/** Every variant's vocabulary. */
export const VARIANT_VOCABULARIES: readonly VariantVocabulary[] = [NVLINK2_VOCABULARY];

/** Every variant's region capabilities, for decodeRegionInfo. */
export const KNOWN_REGION_CAPABILITIES: readonly RegionCapabilityKind<KnownCapabilityValue>[] = [
  ...NVLINK2_REGION_CAPABILITIES,
];
