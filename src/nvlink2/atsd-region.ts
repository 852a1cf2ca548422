/**
 * The NPU2 ATSD region (Linux v5.12 drivers/vfio/pci/vfio_pci_nvlink2.c vfio_pci_npu2_regops):
 * type 0x80001014 subtype 1, one 64 KiB page of ATSD registers (atsd-register.ts emulates
 * them), or size 0 when the bridge has no ATSD.
 * - rw: offset ≥ size → EINVAL, count clipped; a write touching LAUNCH starts a launch.
 * - mmap: the length must be exactly one 64 KiB page (EINVAL); traces vfio_pci_npu2_mmap with
 *   the ATSD address. Like remap_pfn_range of mmio_atsd, the page is mapped whatever the offset.
 *   With no ATSD (size 0) we refuse with EINVAL where the kernel would have mapped physical
 *   page 0.
 * - release: stops the mapping watcher for the mappings of this open.
 * - capabilities: NVLINK2_SSATGT (tgt) then NVLINK2_LNKSPD (link speed), both v1.
 */

import { hex } from '../text/index.ts';
import type {
  MmapGrant,
  MmapRequest,
  RegionCapability,
  RegionContents,
  RegionOps,
  SharedMemory,
} from '../vfio/index.ts';
import { VfioError } from '../vfio/index.ts';
import type { AtsdConfig } from './atsd-probe.ts';
import { ATSD_PAGE_SIZE, AtsdRegisterPage } from './atsd-register.ts';
import { traceRegionAccess } from './context.ts';
import { atsdKey } from './device-memory.ts';
import { encodeLnkspdCap, encodeSsatgtCap } from './region-caps.ts';
import type { LiveAtsdRegion, Nvlink2Context } from './types.ts';

/** The launch executor of the register at `address`: the bound LPID, every GPU behind that NPU. */
function executorFor(ctx: Nvlink2Context, config: AtsdConfig) {
  return (launch: bigint, ava: bigint, source: string): number => {
    const at = ctx.firmware.atsdAt(config.mmioAtsd);
    const lpid = at?.binding.lpid ?? 0;
    // One ATSD reaches every GPU of its NPU (npu-dma.c used one register per NPU for all links);
    // the bound LPID keeps other partitions' translations out of reach.
    const gpus = new Set(
      at ? at.npu.links.flatMap((l) => (l.gpuName ? [l.gpuName] : [])) : [config.gpu.name],
    );
    let invalidated = 0;
    for (const g of gpus)
      invalidated += ctx.atsCaches.get(g).invalidate(launch, ava, lpid).dropped.length;
    ctx.tracer.emit('nvlink2_atsd_launch', () => ({
      name: source,
      atsd: config.mmioAtsd,
      lpid,
      launch,
      ava,
      invalidated,
    }));
    return invalidated;
  };
}

/**
 * The ATSD region of one open NVLink bridge: rw, mmap, release and capabilities as the module
 * header describes; errors are VfioError (EINVAL, …).
 */
export class AtsdRegion implements RegionOps, LiveAtsdRegion {
  /** The register page; undefined when the bridge has no ATSD. */
  readonly page: AtsdRegisterPage | undefined;
  private mappings = 0;

  /** `index` is the region index the core gave it (registerDeviceRegion). */
  constructor(
    private readonly ctx: Nvlink2Context,
    readonly config: AtsdConfig,
    readonly index: number,
  ) {
    const address = config.mmioAtsd;
    this.page =
      address === 0n
        ? undefined
        : ctx.atsd.get(
            address,
            () =>
              new AtsdRegisterPage(
                address,
                ctx.memory.get(atsdKey(address), ATSD_PAGE_SIZE),
                executorFor(ctx, config),
              ),
          );
  }

  get name(): string {
    return this.config.bridge.name;
  }

  get size(): bigint {
    return this.page ? ATSD_PAGE_SIZE : 0n;
  }

  rw(offset: bigint, buf: Uint8Array, write: boolean): number {
    if (offset >= this.size || !this.page) {
      throw new VfioError(
        'EINVAL',
        `region ${this.index} (NVIDIA NV2 ATSD of ${this.name}) offset ${hex(offset)} is past its end (size ${hex(this.size)})`,
      );
    }
    const remaining = this.size - offset;
    const count = BigInt(buf.length) < remaining ? buf.length : Number(remaining);
    const span = buf.subarray(0, count);
    if (write) {
      this.page.memory.write(offset, span);
      this.page.afterRegionWrite(offset, count, this.name);
    } else this.page.memory.read(offset, span);
    traceRegionAccess(this.ctx, this, offset, count, write);
    return count;
  }

  /**
   * The ATSD page for migration (LAUNCH, AVA, STAT as they are: pending launches are settled
   * first, so STAT is idle and LAUNCH zero), written without starting a launch; undefined
   * without an ATSD.
   */
  /** The ATSD page's memory (RegionOps.mappedMemory). */
  mappedMemory(): SharedMemory | undefined {
    return this.page?.memory;
  }

  contents(): RegionContents | undefined {
    const page = this.page;
    if (!page) return undefined;
    return {
      dataRanges: () => {
        page.settle();
        return page.memory.dataRanges(0n, ATSD_PAGE_SIZE);
      },
      read: (offset, buf) => page.memory.read(offset, buf),
      write: (offset, data) => page.memory.writeOwn(offset, data),
      clear: (kept) => page.memory.clear(kept),
    };
  }

  mmap(request: MmapRequest): MmapGrant {
    if (request.length !== ATSD_PAGE_SIZE) {
      throw new VfioError(
        'EINVAL',
        `ATSD mmap of ${this.name} must be exactly one page (0x10000 bytes), not ${hex(request.length)}`,
      );
    }
    const ret = this.page ? 0 : -22;
    this.ctx.tracer.emit('vfio_pci_npu2_mmap', () => ({
      name: this.name,
      hpa: this.config.mmioAtsd,
      ua: request.userAddress,
      size: request.length,
      ret,
    }));
    if (!this.page)
      throw new VfioError('EINVAL', `bridge ${this.name} has no ATSD register to map`);
    this.page.mapped();
    this.mappings++;
    return { fd: this.page.memory.fd, fdOffset: 0n, length: ATSD_PAGE_SIZE };
  }

  release(): void {
    this.ctx.live.remove(this);
    for (; this.mappings > 0; this.mappings--) this.page?.unmapped();
  }

  capabilities(): RegionCapability[] {
    return [encodeSsatgtCap(this.config.tgt), encodeLnkspdCap(this.config.linkSpeed)];
  }
}
