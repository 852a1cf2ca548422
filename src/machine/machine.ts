/**
 * The emulated POWER9 host as one object: what `serve`, `inspect` and `dt doctor` all build
 * from a device tree. It holds the host model (platform/host.ts), the NVLink2 context (NPU2
 * firmware, GPU RAM and ATSD memory, tracer), its variant drivers, one vfio-pci device per PCI
 * function (created on first use, so start-up stays cheap), KVM's LPID allocator, and the
 * doctor-style status of every function. At creation the platform "boots": every GPU is mapped
 * to the host partition (LPID 0), as pci-ioda.c pnv_pci_ioda_setup_nvlink() did.
 * All device memory (GPU RAM, BARs, ATSD pages) is counted against one MemoryBudget
 * (vfio/memory-budget.ts): with a limit, region writes that would populate pages past it fail
 * with ENOMEM and the nvlink2_memory_budget tracepoint.
 */
import type { Fdt } from '../fdt/index.ts';
import { NvgraceContext, nvgraceVariant } from '../nvgrace/index.ts';
import {
  createNvlink2Context,
  DeviceMemoryStore,
  gpuRamKey,
  type KernelLogLine,
  type KernelVersion,
  type Nvlink2Context,
  nvlink2Variant,
  pnvNpu2MapHost,
} from '../nvlink2/index.ts';
import type { Host, Npu2Snapshot, PciFunction } from '../platform/index.ts';
import { buildHost } from '../platform/index.ts';
import type { Tracer } from '../trace/index.ts';
import type { VfioTracer } from '../vfio/index.ts';
import {
  budgetedMemfdMemory,
  MemoryBudget,
  type SharedMemoryFactory,
  VfioError,
  VfioPciDevice,
  type VfioPciVariant,
  variantFor,
} from '../vfio/index.ts';
import { type FunctionStatus, probeHost } from './function-status.ts';
import { LpidAllocator } from './lpid-allocator.ts';

/**
 * Options of `createMachine`: tracers, kernel-log sink, kernel version, memory budget (bytes), and
 * whether to skip the boot-time probe.
 */
export interface MachineOptions {
  /** Tracepoint sink of the NVLink2 subdriver (default: a tracer nobody listens to). */
  readonly tracer?: Tracer;
  /** Region access / interrupt events of the vfio-pci core. */
  readonly vfioTracer?: VfioTracer;
  /** Kernel log lines (dev_err, dev_warn, ...); default: discarded. */
  readonly log?: (line: KernelLogLine) => void;
  readonly kernel?: KernelVersion;
  /** Skip the boot-time host mapping (LPID 0) of every GPU. */
  readonly noBoot?: boolean;
  /** Bytes all device memory may populate together (default: counted, never refused). */
  readonly memoryBudget?: bigint;
  /**
   * Where device memory lives, given the machine's budget (default: sparse memfds;
   * serve --state-dir: files of its state directory).
   */
  readonly memory?: (budget: MemoryBudget) => SharedMemoryFactory;
  /** `buildHost(fdt)` when the caller has built it already (serve checks it first): not built again. */
  readonly host?: Host;
}

/** What the device memory holds (populated bytes), as `state.json` shows it. */
export interface MemoryUsage {
  /** The limit; undefined when none. */
  readonly budget: bigint | undefined;
  /** Every memory together (GPU RAM, BARs, ATSD pages of all devices). */
  readonly touched: bigint;
  /** Writes refused so far. */
  readonly refused: number;
  /** Each GPU's GPU RAM and BAR memory, in address order. */
  readonly gpus: readonly { address: string; gpuRam: bigint; bars: bigint }[];
}

/**
 * One emulated host for serve, inspect and doctor: the host model, the NVLink2 context, one
 * `VfioPciDevice` per function (made on first use), the LPID allocator and the partition registry.
 */
export class Machine {
  /**
   * The variant drivers of this machine, bound to each function that matches: nvgrace-gpu
   * first (it lists its device IDs; the NVLink2 subdriver takes every other NVIDIA and IBM
   * function, as the 5.x kernel tried its inits by vendor).
   */
  readonly variants: readonly VfioPciVariant[];
  /** nvgrace-gpu's state: each Grace GPU's device memory and probe outcome. */
  readonly grace: NvgraceContext;
  /** The host's LPIDs (POWER9 partition IDs): which are claimed by a guest, which are free. */
  readonly lpids = new LpidAllocator();
  readonly #devices = new Map<string, VfioPciDevice>();
  readonly #memoryFactory: SharedMemoryFactory;
  #statuses: FunctionStatus[] | undefined;

  constructor(
    readonly host: Host,
    readonly ctx: Nvlink2Context,
    private readonly vfioTracer: VfioTracer | undefined,
    private readonly kernel?: KernelVersion,
    /** Counts (and caps) the memory behind every device; ctx.memory should draw on it too. */
    readonly memory: MemoryBudget = new MemoryBudget(undefined),
    memoryFactory: SharedMemoryFactory = budgetedMemfdMemory(memory),
  ) {
    this.#memoryFactory = memoryFactory;
    this.grace = new NvgraceContext(this.#memoryFactory);
    this.variants = [nvgraceVariant(this.grace), nvlink2Variant(ctx)];
  }

  /** Every PCI function of the host, in platform order (GPUs and NPU bridges alike). */
  get functions(): readonly PciFunction[] {
    return this.host.functions;
  }

  /**
   * The PCI function named `address` ("DDDD:BB:DD.F").
   * @throws VfioError ENODEV when the platform has no such function.
   */
  function(address: string): PciFunction {
    const fn = this.host.functionByName(address);
    if (!fn) throw new VfioError('ENODEV', `the platform has no PCI function ${address}`);
    return fn;
  }

  /**
   * The one vfio-pci device of `address`, created on first use.
   * @throws VfioError ENODEV for an unknown address.
   */
  device(address: string): VfioPciDevice {
    let device = this.#devices.get(address);
    if (!device) {
      const fn = this.function(address);
      device = new VfioPciDevice(fn, this.host, variantFor(this.variants, fn), {
        memory: this.#memoryFactory,
        ...(this.vfioTracer ? { tracer: this.vfioTracer } : {}),
      });
      this.#devices.set(address, device);
    }
    return device;
  }

  /**
   * What the subdriver makes of every PCI function, in address order (the doctor's verdict,
   * found once, without side effects on this machine).
   */
  statuses(): FunctionStatus[] {
    this.#statuses ??= probeHost(this.host, this.kernel ? { kernel: this.kernel } : {});
    return this.#statuses;
  }

  /** The status of `address`. @throws VfioError ENODEV for an unknown address */
  status(address: string): FunctionStatus {
    const status = this.statuses().find((s) => s.address === address);
    if (!status) throw new VfioError('ENODEV', `the platform has no PCI function ${address}`);
    return status;
  }

  /**
   * Functions a server exposes: GPUs and NVLink bridges, less those whose variant's probe
   * failed (the kernel makes no vfio device of them).
   */
  servedFunctions(): PciFunction[] {
    return this.host.functions.filter(
      (fn) =>
        (fn.role === 'gpu' || fn.role === 'bridge') &&
        !(variantFor(this.variants, fn)?.probe && this.device(fn.name).probeError),
    );
  }

  /** A copy of every NPU's firmware tables (XTS BDF/PID maps, ATSD LPIDs). */
  firmwareSnapshot(): Npu2Snapshot[] {
    return this.ctx.firmware.snapshot();
  }

  /**
   * What the device memory holds now (every memory read again: one fstat each, so pages
   * clients touched through their mappings are in).
   */
  memoryUsage(): MemoryUsage {
    const touched = this.memory.refresh();
    const gpus = this.host.functions
      .filter((fn) => fn.role === 'gpu')
      .map((fn) => ({
        address: fn.name,
        gpuRam:
          (this.ctx.memory.peek(gpuRamKey(fn.name)) ?? this.grace.peekMemory(fn.name))?.touched() ??
          0n,
        bars: (this.#devices.get(fn.name)?.bars ?? []).reduce(
          (sum, bar) => sum + (bar?.touched() ?? 0n),
          0n,
        ),
      }));
    return { budget: this.memory.limit, touched, refused: this.memory.refused, gpus };
  }

  /** Frees every device's BAR memory and the GPU RAM/ATSD memfds (process shutdown). */
  dispose(): void {
    for (const device of this.#devices.values()) device.dispose();
    this.#devices.clear();
    this.ctx.memory.closeAll();
    this.grace.closeAll();
  }
}

/**
 * Builds the machine of `fdt`.
 * @throws HostError when the tree does not describe a usable host.
 */
export function createMachine(fdt: Fdt, options: MachineOptions = {}): Machine {
  const host = options.host ?? buildHost(fdt);
  // The kernel's own warning at boot (drivers/of/fdt.c: pr_fmt "OF: fdt: ").
  for (const message of host.warnings) options.log?.({ level: 'warn', device: 'OF: fdt', message });
  const budget = new MemoryBudget(options.memoryBudget, (r) =>
    ctx.tracer.emit('nvlink2_memory_budget', () => ({
      name: r.name,
      offset: r.offset,
      count: r.count,
      need: r.need,
      inUse: r.inUse,
      budget: r.budget,
    })),
  );
  const factory = (options.memory ?? budgetedMemfdMemory)(budget);
  const ctx = createNvlink2Context(host, {
    memory: new DeviceMemoryStore(factory),
    ...(options.tracer ? { tracer: options.tracer } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(options.kernel ? { kernel: options.kernel } : {}),
  });
  if (!options.noBoot) pnvNpu2MapHost(ctx);
  return new Machine(host, ctx, options.vfioTracer, options.kernel, budget, factory);
}
