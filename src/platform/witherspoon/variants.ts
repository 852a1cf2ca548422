/**
 * Every fault-free machine `dt generate` can write: GPU count × GPU RAM × link speed × memory
 * map (4T up only with 4 GPUs) × `linux,pci-domain` on or off. The link speeds are the three
 * codes skiboot defines (hdata/spira.c add_npu: 0x3 20 Gbps, 0x8 25.78125 Gbps, 0x9 25 Gbps).
 * Tests enumerate these to hold every clean tree to dtc's checks and to zero doctor findings.
 */
import type { WitherspoonOptions } from './options.ts';

/** The options of every clean variant, each with a short label for test names. */
export function cleanWitherspoonVariants(): {
  label: string;
  options: Partial<WitherspoonOptions>;
}[] {
  const out: { label: string; options: Partial<WitherspoonOptions> }[] = [];
  for (const gpus of [4, 6] as const) {
    for (const memoryMap of gpus === 4 ? (['4t-down', '4t-up'] as const) : (['4t-down'] as const)) {
      for (const gpuRamGiB of [16, 32] as const) {
        for (const linkSpeed of [0x3, 0x8, 0x9]) {
          for (const linuxPciDomain of [false, true]) {
            const label = `--gpus ${gpus} --gpu-ram ${gpuRamGiB} --link-speed ${linkSpeed} --memory-map ${memoryMap}${linuxPciDomain ? ' --pci-domains' : ''}`;
            out.push({ label, options: { gpus, memoryMap, gpuRamGiB, linkSpeed, linuxPciDomain } });
          }
        }
      }
    }
  }
  return out;
}
