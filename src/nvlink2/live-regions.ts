/**
 * The NVLink2 regions of currently open devices, so the server (or `inspect`) can run the
 * emulation's two periodic duties without knowing devices: scanning GPU RAM mappings for
 * faulted pages (vfio_pci_nvgpu_mmap_fault) and polling mapped ATSD pages for launches.
 */
import type { FaultRecord, LiveAtsdRegion, LiveGpuRamRegion, LiveRegionSet } from './types.ts';

/**
 * The GPU RAM and ATSD regions of open devices, for the periodic fault scan and ATSD poll (see the
 * module header).
 */
export class LiveRegions implements LiveRegionSet {
  private readonly gpuRam = new Set<LiveGpuRamRegion>();
  private readonly atsd = new Set<LiveAtsdRegion>();

  add(region: LiveGpuRamRegion | LiveAtsdRegion): void {
    if ('scanFaults' in region) this.gpuRam.add(region);
    else this.atsd.add(region);
  }

  remove(region: LiveGpuRamRegion | LiveAtsdRegion): void {
    if ('scanFaults' in region) this.gpuRam.delete(region);
    else this.atsd.delete(region);
  }

  gpuRamRegions(): LiveGpuRamRegion[] {
    return [...this.gpuRam];
  }

  atsdRegions(): LiveAtsdRegion[] {
    return [...this.atsd];
  }

  /** scanFaults() on every mapped GPU RAM region; the new fault records by GPU name. */
  scanFaults(): Map<string, FaultRecord[]> {
    const out = new Map<string, FaultRecord[]>();
    for (const r of this.gpuRam) {
      const found = r.scanFaults();
      if (found.length > 0) out.set(r.name, found);
    }
    return out;
  }

  /**
   * Runs scanFaults() every `intervalMs` (unref'd: it never keeps the process alive).
   * @returns a function that stops it.
   */
  startFaultScanner(intervalMs = 100): () => void {
    const timer = setInterval(() => this.scanFaults(), intervalMs).unref();
    return () => clearInterval(timer);
  }

  /** pollMappedLaunches() on the register page of every open ATSD region; how many launches started. */
  pollMappedLaunches(): number {
    let started = 0;
    const pages = new Set([...this.atsd].flatMap((r) => (r.page ? [r.page] : [])));
    for (const p of pages) if (p.pollMappedLaunches()) started++;
    return started;
  }
}
