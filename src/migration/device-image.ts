/**
 * What of a vfio-pci device a migration stream carries, and where it goes back: the memory of
 * its BARs and of its device-specific regions that keep state (RegionOps.contents: GPU RAM, the
 * ATSD page), config space, BAR register pages and interrupt state. Not carried: the client's
 * things (DMA maps, eventfds, mappings: the destination's VMM brings its own), the LPID (the
 * destination maps the GPU into its own partition when its client opens it), and the GPU's
 * ATS cache (translations of the source partition: a cache the destination starts empty, as
 * after an ATSD invalidate-all, and refills on use).
 */
import { hexDigits } from '../text/index.ts';
import type { RegionContents, VfioPciDevice } from '../vfio/index.ts';
import type { StreamDescription } from './stream-format.ts';

/** One region's memory as migration moves it. */
export interface MemorySource {
  readonly region: number;
  readonly size: bigint;
  readonly contents: RegionContents;
}

/** Regions 0–5 (BARs with memory) and device-specific regions with contents, by index. */
export function memorySources(device: VfioPciDevice): MemorySource[] {
  const out: MemorySource[] = [];
  for (const [region, bar] of device.bars.entries()) {
    if (bar) out.push({ region, size: bar.size, contents: bar.contents() });
  }
  for (const r of device.regions) {
    const contents = r.ops.contents?.();
    if (contents) out.push({ region: r.index, size: r.size, contents });
  }
  return out;
}

/** The HEADER's description of `device` (with the LPID it runs in, if any). */
export function describeForStream(device: VfioPciDevice): StreamDescription {
  return {
    device: device.name,
    vendor: device.fn.vendor,
    deviceId: device.fn.device,
    configSize: device.config.size,
    regions: memorySources(device).map((m) => ({ index: m.region, size: m.size.toString() })),
    lpid: device.kvm ?? null,
  };
}

/** `vvvv:dddd`, four hex digits each, as lspci and every table of ours write PCI IDs. */
function pciId(vendor: number, deviceId: number): string {
  return `${hexDigits(vendor, 4)}:${hexDigits(deviceId, 4)}`;
}

/**
 * Why a stream described as `d` cannot load into `device`, or undefined when it can: same PCI
 * ids, config space size and memory regions (index and size).
 */
export function incompatibility(d: StreamDescription, device: VfioPciDevice): string | undefined {
  const here = describeForStream(device);
  if (d.vendor !== here.vendor || d.deviceId !== here.deviceId)
    return `saved from a ${pciId(d.vendor, d.deviceId)}, this is ${pciId(here.vendor, here.deviceId)}`;
  if (d.configSize !== here.configSize)
    return `config space of ${d.configSize} bytes, this function has ${here.configSize}`;
  const mine = here.regions.map((r) => `${r.index}:${r.size}`).join(' ');
  const theirs = d.regions.map((r) => `${r.index}:${r.size}`).join(' ');
  if (mine !== theirs) return `memory regions (index:size) ${theirs}, this device has ${mine}`;
  return undefined;
}
