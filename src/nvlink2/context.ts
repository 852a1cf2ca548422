/**
 * Everything the NVLink2 subdriver works on besides the device being opened: the host model,
 * the NPU firmware, the GPUs' ATS caches, the device memory store, the ATSD register pages, a
 * tracer and the kernel log. One context per emulated host; the vfio-user server builds it once
 * and passes it to `nvlink2Hooks` (no module-level state anywhere).
 */

import type { Host, PciFunction } from '../platform/index.ts';
import {
  AtsCacheSet,
  Npu2Firmware,
  PCI_DEVICE_ID_NVIDIA_V100_SXM2_32GB,
} from '../platform/index.ts';
import { Tracer } from '../trace/index.ts';
import { AtsdRegisterSet } from './atsd-register.ts';
import { DeviceMemoryStore } from './device-memory.ts';
import { type KernelVersion, kernelBehaviour } from './kernel-version.ts';
import { LiveRegions } from './live-regions.ts';
import type { KernelLogLine, Nvlink2Context } from './types.ts';

export type { KernelLogLine, Nvlink2Context } from './types.ts';

/**
 * What an NVLink2 context is built from besides the host: firmware, tracer, GPU memory store, ATS
 * caches, kernel version, kernel-log sink and real GPU RAM sizes (each a default when not given).
 */
export interface Nvlink2ContextOptions {
  readonly firmware?: Npu2Firmware;
  readonly tracer?: Tracer;
  readonly memory?: DeviceMemoryStore;
  readonly atsCaches?: AtsCacheSet;
  readonly kernel?: KernelVersion;
  /** Default: discard. */
  readonly log?: (line: KernelLogLine) => void;
  readonly gpuRamSize?: (gpu: PciFunction) => bigint;
}

const GiB = 1n << 30n;

/** Real RAM by device ID: 10de:1db5 V100 SXM2 32GB, else 16 GiB (10de:1db1 V100 SXM2 16GB). */
export function defaultGpuRamSize(gpu: PciFunction): bigint {
  return gpu.device === PCI_DEVICE_ID_NVIDIA_V100_SXM2_32GB ? 32n * GiB : 16n * GiB;
}

/**
 * The NVLink2 subdriver's shared state for `host`: firmware, ATS caches, GPU memory, live regions,
 * tracer and kernel log.
 */
export function createNvlink2Context(
  host: Host,
  options: Nvlink2ContextOptions = {},
): Nvlink2Context {
  const log = options.log ?? (() => {});
  return {
    host,
    firmware:
      options.firmware ??
      Npu2Firmware.fromHost(host, (level, message) => log({ level, device: 'skiboot', message })),
    tracer: options.tracer ?? new Tracer(),
    memory: options.memory ?? new DeviceMemoryStore(),
    atsCaches: options.atsCaches ?? new AtsCacheSet(),
    atsd: new AtsdRegisterSet(),
    kernel: kernelBehaviour(options.kernel),
    live: new LiveRegions(),
    log,
    gpuRamSize: options.gpuRamSize ?? defaultGpuRamSize,
  };
}

/** The tracepoints a region read or write reports (the native fast path is off while listened). */
export const REGION_ACCESS_TRACEPOINTS = ['nvlink2_region_read', 'nvlink2_region_write'] as const;

/** The region read/write tracepoint of an NVLink2 region access (argument built only if traced). */
export function traceRegionAccess(
  ctx: Nvlink2Context,
  region: { readonly name: string; readonly index: number },
  offset: bigint,
  count: number,
  write: boolean,
): void {
  ctx.tracer.emit(write ? 'nvlink2_region_write' : 'nvlink2_region_read', () => ({
    name: region.name,
    index: region.index,
    offset,
    count,
  }));
}
