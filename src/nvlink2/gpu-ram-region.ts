/**
 * The GPU RAM region (Linux v5.12 drivers/vfio/pci/vfio_pci_nvlink2.c vfio_pci_nvgpu_regops):
 * type 0x800010de subtype 1, the 128 GiB aperture, backed by the GPU's one sparse memfd from
 * the store (it outlives this open: GPU RAM keeps its contents across a client's reconnect).
 *
 * - rw: offset ≥ size → EINVAL; count clipped to the end; pread/pwrite on the memfd. The GPU
 *   has only 16 or 32 GiB of real RAM behind the aperture: an access reaching past it is what
 *   the NVLink fence stops in hardware, here an EIO naming the address plus the
 *   nvlink2_gpu_ram_fence tracepoint (nothing is read or written).
 * - mmap: once per open device (EPERM), length > size → EINVAL; the grant is the memfd itself,
 *   whose pages populate lazily as the client touches them. The first mmap records the DMA
 *   pre-registration (mm_iommu_newdev of the whole mapping as device memory at gpu_hpa) and
 *   traces vfio_pci_nvgpu_mmap. We also refuse offset + length > size (EINVAL), which the kernel
 *   did not check (its fault handler would have inserted pfns past the aperture).
 * - faults: the kernel traced vfio_pci_nvgpu_mmap_fault from its fault handler. A client's
 *   mapping of a memfd faults in the client, so we discover faulted pages afterwards:
 *   `scanFaults()` asks the memfd which pages hold data (SEEK_DATA), and traces each newly
 *   populated 64 KiB (POWER) page inside the mapping once, with hpa = gpu_hpa + offset, the
 *   user address of that page and ret 0x100 (VM_FAULT_NOPAGE). Pages our own rw wrote are not
 *   counted (a page both written by rw and touched through the mapping is missed); a populated
 *   page past the real RAM is also reported as a fence.
 * - release: drop the pre-registration, stop listening for KVM, pnv_npu2_unmap_lpar_dev(), and
 *   (ours) the memory budget a write received in place but never committed held.
 * - capability: NVLINK2_SSATGT v1 with the bridge's ibm,device-tgt-addr.
 */

import type { PlainRange } from '../native/index.ts';
import { hex } from '../text/index.ts';
import type {
  MmapGrant,
  MmapRequest,
  RegionCapability,
  RegionContents,
  RegionOps,
} from '../vfio/index.ts';
import { VfioError } from '../vfio/index.ts';
import { traceRegionAccess } from './context.ts';
import { type DeviceMemory, gpuRamKey } from './device-memory.ts';
import type { GpuRamConfig } from './gpu-ram-probe.ts';
import { pnvNpu2UnmapLparDev } from './npu-lpar.ts';
import { encodeSsatgtCap } from './region-caps.ts';
import type { FaultRecord, LiveGpuRamRegion, Nvlink2Context } from './types.ts';

export type { FaultRecord } from './types.ts';

/** PAGE_SIZE of the emulated POWER host. */
export const POWER_PAGE_SIZE = 0x10000n;
/** VM_FAULT_NOPAGE (include/linux/mm_types.h): what vmf_insert_pfn returns on success. */
export const VM_FAULT_NOPAGE = 0x100;

/** mm_iommu_newdev(mm, ua, entries, dev_hpa): the mapping registered as device memory. */
export interface DmaPreregistration {
  readonly userAddress: bigint;
  /** Pages of the mapping (64 KiB each). */
  readonly entries: bigint;
  readonly deviceHpa: bigint;
}

/** The one mmap of a GPU RAM region per open: offset, length (bytes) and user address. */
export interface GpuRamMapping {
  readonly offset: bigint;
  readonly length: bigint;
  readonly userAddress: bigint;
}

/**
 * The GPU RAM region of one open GPU: rw, mmap, release and capabilities as the module header
 * describes; errors are VfioError (EINVAL, EPERM, EIO at the fence).
 */
export class GpuRamRegion implements RegionOps, LiveGpuRamRegion {
  readonly memory: DeviceMemory;
  readonly realRam: bigint;
  private mapping: GpuRamMapping | undefined;
  private prereg: DmaPreregistration | undefined;
  private readonly reported = new Set<bigint>();
  private readonly writtenByRw = new Set<bigint>();
  private released = false;

  /**
   * `index` is the region index the core gave it (registerDeviceRegion); `stopKvm` removes
   * the KVM listener the hook registered for the GPU (run at release).
   */
  constructor(
    private readonly ctx: Nvlink2Context,
    readonly config: GpuRamConfig,
    readonly index: number,
    private readonly stopKvm: () => void,
  ) {
    this.memory = ctx.memory.get(gpuRamKey(config.gpu.name), config.size);
    this.realRam = ctx.gpuRamSize(config.gpu);
  }

  get name(): string {
    return this.config.gpu.name;
  }

  get size(): bigint {
    return this.config.size;
  }

  get currentMapping(): GpuRamMapping | undefined {
    return this.mapping;
  }

  get preregistration(): DmaPreregistration | undefined {
    return this.prereg;
  }

  private fence(offset: bigint, count: bigint, via: string): VfioError {
    const hpa = this.config.hpa + offset;
    this.ctx.tracer.emit('nvlink2_gpu_ram_fence', () => ({
      name: this.name,
      hpa,
      offset,
      count,
      ram: this.realRam,
    }));
    const gib = this.realRam >> 30n;
    return new VfioError(
      'EIO',
      `GPU ${this.name} RAM fence: ${via} at hpa ${hex(hpa)} (region ${this.index} offset ${hex(offset)}, ${count} bytes) is beyond its ${gib} GiB of real RAM`,
    );
  }

  /**
   * `length` clipped at the region's end.
   * @throws VfioError EINVAL past the end, EIO (with the fence tracepoint) past the real RAM.
   */
  private clip(offset: bigint, length: number, write: boolean): number {
    if (offset >= this.size) {
      throw new VfioError(
        'EINVAL',
        `region ${this.index} (NVIDIA NV2 RAM of ${this.name}) offset ${hex(offset)} is past its end (size ${hex(this.size)})`,
      );
    }
    const remaining = this.size - offset;
    const count = BigInt(length) < remaining ? length : Number(remaining);
    if (count > 0 && offset + BigInt(count) > this.realRam)
      throw this.fence(offset, BigInt(count), write ? 'write' : 'read');
    return count;
  }

  rw(offset: bigint, buf: Uint8Array, write: boolean): number {
    const count = this.clip(offset, buf.length, write);
    if (count === 0) return 0;
    const span = buf.subarray(0, count);
    if (write) {
      this.memory.write(offset, span);
      for (let p = offset / POWER_PAGE_SIZE; p * POWER_PAGE_SIZE < offset + BigInt(count); p++)
        this.writtenByRw.add(p);
    } else this.memory.read(offset, span);
    traceRegionAccess(this.ctx, this, offset, count, write);
    return count;
  }

  /**
   * A read lending the GPU RAM itself (a view of the memfd's shared mapping), so a 1 MiB
   * REGION_READ is sent without a pread into a fresh buffer; a copy where the memory was never
   * written (a view would populate it, and scanFaults would take that for a client fault).
   */
  readView(offset: bigint, count: number): Uint8Array {
    const n = this.clip(offset, count, false);
    if (n === 0) return new Uint8Array(0);
    const view = this.memory.view(offset, n);
    if (view === null) {
      const copy = new Uint8Array(n);
      this.memory.read(offset, copy);
      traceRegionAccess(this.ctx, this, offset, n, false);
      return copy;
    }
    traceRegionAccess(this.ctx, this, offset, n, false);
    return view;
  }

  /** GPU RAM below the fence, in its memfd: plain memory for the native fast path. */
  plainRanges(index: number): PlainRange[] {
    const fd = this.memory.ownFd;
    let end = this.size;
    if (this.realRam < end) end = this.realRam; // the fence: past it, EIO and a tracepoint
    if (fd === undefined || this.released || end <= 0n) return [];
    return [{ region: index, start: 0n, end, writable: true, fd }];
  }

  /** GPU RAM itself for a write that is neither clipped nor fenced (see RegionOps). */
  writeTarget(offset: bigint, count: number): Uint8Array | null {
    if (count === 0 || offset < 0n || offset + BigInt(count) > this.realRam) return null;
    if (offset + BigInt(count) > this.size) return null;
    return this.memory.writeTarget(offset, count);
  }

  /**
   * GPU RAM for migration: the memfd's populated pages, whoever wrote them (our rw, a client's
   * mapping); written as a client's data (counted by the memory budget).
   */
  contents(): RegionContents {
    return {
      dataRanges: () => this.memory.dataRanges(0n, this.size),
      read: (offset, buf) => this.memory.read(offset, buf),
      view: (offset, length) => this.memory.view(offset, length),
      write: (offset, data) => this.memory.writeThrough(offset, data),
      clear: (kept) => this.memory.clear(kept),
    };
  }

  /** GPU RAM's memory (RegionOps.mappedMemory). */
  mappedMemory(): DeviceMemory | undefined {
    return this.released ? undefined : this.memory;
  }

  mmap(request: MmapRequest): MmapGrant {
    if (this.mapping) {
      throw new VfioError(
        'EPERM',
        `GPU RAM of ${this.name} is already mapped (one mapping per open device)`,
      );
    }
    if (request.length > this.size) {
      throw new VfioError(
        'EINVAL',
        `GPU RAM mmap of ${hex(request.length)} bytes exceeds region size ${hex(this.size)}`,
      );
    }
    if (request.offset + request.length > this.size) {
      throw new VfioError(
        'EINVAL',
        `GPU RAM mmap at offset ${hex(request.offset)} of ${hex(request.length)} bytes runs past the region (size ${hex(this.size)})`,
      );
    }
    this.mapping = {
      offset: request.offset,
      length: request.length,
      userAddress: request.userAddress,
    };
    this.prereg = {
      userAddress: request.userAddress,
      entries: request.length / POWER_PAGE_SIZE,
      deviceHpa: this.config.hpa,
    };
    this.ctx.tracer.emit('vfio_pci_nvgpu_mmap', () => ({
      name: this.name,
      hpa: this.config.hpa,
      ua: request.userAddress,
      size: request.length,
      ret: 0,
    }));
    return { fd: this.memory.fd, fdOffset: request.offset, length: request.length };
  }

  /**
   * Traces vfio_pci_nvgpu_mmap_fault for every page of the mapping that became populated since
   * the last scan (see the file header). Returns the new pages.
   */
  scanFaults(): FaultRecord[] {
    const m = this.mapping;
    if (!m) return [];
    const found: FaultRecord[] = [];
    for (const [from, to] of this.memory.dataRanges(m.offset, m.offset + m.length)) {
      for (let page = from / POWER_PAGE_SIZE; page * POWER_PAGE_SIZE < to; page++) {
        if (this.reported.has(page) || this.writtenByRw.has(page)) continue;
        this.reported.add(page);
        const offset = page * POWER_PAGE_SIZE;
        const record: FaultRecord = {
          hpa: this.config.hpa + offset,
          userAddress: m.userAddress + offset - m.offset,
          offset,
          fenced: offset >= this.realRam,
        };
        found.push(record);
        this.ctx.tracer.emit('vfio_pci_nvgpu_mmap_fault', () => ({
          name: this.name,
          hpa: record.hpa,
          ua: record.userAddress,
          ret: VM_FAULT_NOPAGE,
        }));
        if (record.fenced) this.fence(offset, POWER_PAGE_SIZE, 'mapped access');
      }
    }
    return found;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.prereg = undefined; // mm_iommu_put()
    this.mapping = undefined;
    this.memory.dropWriteTarget(); // a write its client left inside holds no budget
    this.stopKvm();
    this.ctx.live.remove(this);
    pnvNpu2UnmapLparDev(this.ctx, this.config.gpu);
  }

  capabilities(): RegionCapability[] {
    return [encodeSsatgtCap(this.config.tgt)];
  }
}
