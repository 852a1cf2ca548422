/**
 * nvgrace-gpu as a vfio-pci variant (Linux 6.9+ drivers/vfio/pci/nvgrace-gpu/main.c, lines
 * cited in this folder are of torvalds/linux 1b0ecb5b): it
 * binds the GPUs of its pci_device_id table, gives them their profiles and probes them
 * (probe.ts). It registers no device-specific region: its memory is shown as BARs. It has no
 * migration: the features are ENOTTY as for any device without mig_ops.
 */
import type { VariantVocabulary, VfioPciVariant } from '../vfio/index.ts';
import type { NvgraceContext } from './context.ts';
import { probeNvgrace } from './probe.ts';
import { graceGpuModel, nvgraceModelName, nvgraceProfile } from './profile.ts';

/** nvgrace-gpu's name and vocabulary: no device-specific regions or region capabilities, and its model names. */
export const NVGRACE_VOCABULARY: VariantVocabulary = {
  name: 'nvgrace-gpu-vfio-pci',
  regions: [],
  regionCapabilities: [],
  modelName: nvgraceModelName,
};

/** The nvgrace-gpu variant over `ctx`: matches nvgrace_gpu_vfio_pci_table's GPUs, gives their profiles and probes them. */
export function nvgraceVariant(ctx: NvgraceContext): VfioPciVariant {
  return {
    ...NVGRACE_VOCABULARY,
    matches: (fn) => graceGpuModel(fn.vendor, fn.device) !== undefined,
    profile: (fn) => nvgraceProfile(fn),
    hooks: [],
    migrates: false, // nvgrace_gpu_init_dev: no vfio_migration_ops, no log_ops
    probe: (device) => probeNvgrace(ctx, device),
  };
}
