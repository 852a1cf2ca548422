/**
 * The NVLink2 subdriver's shared types, below every file that uses them: the context the inits
 * and regions work in, the kernel log line, and what the periodic duties need of an open
 * region. Types only: the concrete context is built in context.ts, the live-region table in
 * live-regions.ts, so the regions, probes and LPID calls never import one another in a circle.
 */
import type { AtsCacheSet, Host, Npu2Firmware, PciFunction } from '../platform/index.ts';
import type { Tracer } from '../trace/index.ts';
import type { AtsdRegisterPage, AtsdRegisterSet } from './atsd-register.ts';
import type { DeviceMemoryStore } from './device-memory.ts';
import type { KernelBehaviour } from './kernel-version.ts';

/** A kernel log line: dev_warn / dev_err / dev_dbg / dev_info of `device`. */
export interface KernelLogLine {
  readonly level: 'err' | 'warn' | 'info' | 'dbg';
  readonly device: string;
  readonly message: string;
}

/** A GPU RAM page found populated in a client's mapping (vfio_pci_nvgpu_mmap_fault). */
export interface FaultRecord {
  readonly hpa: bigint;
  readonly userAddress: bigint;
  /** Region offset of the page. */
  readonly offset: bigint;
  readonly fenced: boolean;
}

/** What the fault scan needs of an open GPU RAM region (gpu-ram-region.ts). */
export interface LiveGpuRamRegion {
  /** The GPU's PCI name. */
  readonly name: string;
  /** Traces and returns the pages populated since the last scan. */
  scanFaults(): FaultRecord[];
}

/** What the launch poll needs of an open ATSD region (atsd-region.ts). */
export interface LiveAtsdRegion {
  /** The register page; undefined when the bridge has no ATSD. */
  readonly page: AtsdRegisterPage | undefined;
}

/** The NVLink2 regions of open devices and the periodic duties over them (live-regions.ts). */
export interface LiveRegionSet {
  add(region: LiveGpuRamRegion | LiveAtsdRegion): void;
  remove(region: LiveGpuRamRegion | LiveAtsdRegion): void;
  /** scanFaults() on every mapped GPU RAM region; the new fault records by GPU name. */
  scanFaults(): Map<string, FaultRecord[]>;
  /** Runs scanFaults() every `intervalMs` (never keeping the process alive); returns the stop. */
  startFaultScanner(intervalMs?: number): () => void;
  /** pollMappedLaunches() on every open ATSD page; how many launches started. */
  pollMappedLaunches(): number;
}

/** Everything the subdriver works on besides the device being opened (context.ts builds it). */
export interface Nvlink2Context {
  readonly host: Host;
  readonly firmware: Npu2Firmware;
  readonly tracer: Tracer;
  readonly memory: DeviceMemoryStore;
  readonly atsCaches: AtsCacheSet;
  readonly atsd: AtsdRegisterSet;
  readonly kernel: KernelBehaviour;
  /** NVLink2 regions of open devices (fault scanning, ATSD polling). */
  readonly live: LiveRegionSet;
  log(line: KernelLogLine): void;
  /** Bytes of real RAM on `gpu` (16 or 32 GiB); accesses beyond it hit the fence. */
  gpuRamSize(gpu: PciFunction): bigint;
}
