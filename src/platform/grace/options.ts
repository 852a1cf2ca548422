/**
 * What `generateGrace` builds: the machine (Grace Hopper GH200 or Grace Blackwell GB200), how
 * many GPUs, their memory, and the faults that reach every failing step of nvgrace-gpu's probe
 * (drivers/vfio/pci/nvgrace-gpu/main.c): a property left out or cut short, a memory size of 0
 * (C2C link down), too small to split, or placed so it overflows, a readiness register that
 * never reads ready, the MIG DVSEC changed. Also the CLI's spellings of the same options.
 */
import { CodedError } from '../../errors/index.ts';

/** The Grace machine to generate: Grace Hopper (GH200) or Grace Blackwell (GB200). */
export type GraceMachine = 'grace-hopper' | 'grace-blackwell';
/** The MIG DVSEC a GPU gets: one saying the bug is there, one saying it is fixed, or none. */
export type MigDvsecMode = 'bug' | 'fixed' | 'absent';

/** Leave `property` out of the GPU(s) `target` names ("GPU0", a PCI name, or "*"). */
export interface GraceOmitFault {
  readonly property: string;
  readonly target: string;
}

/** Everything generateGrace needs, checked by resolveGraceOptions. */
export interface GraceOptions {
  readonly machine: GraceMachine;
  /** 1..4 (one superchip per GPU). */
  readonly gpus: number;
  /** `nvidia,gpu-mem-size` of each GPU, in bytes (0 is the C2C link down). */
  readonly gpuMem: bigint;
  /** `nvidia,gpu-mem-base-pa` of GPU 0; the next GPUs follow 1 TiB apart. */
  readonly gpuMemBase: bigint;
  /** u32 cells of each memory property: 2 is a u64; 1 is too short (EOVERFLOW). */
  readonly gpuMemCells: number;
  /** The C2C link status register never reads ready. */
  readonly c2cLinkDown: boolean;
  /** The HBM training status register never reads ready. */
  readonly hbmUntrained: boolean;
  /** The MIG DVSEC; undefined: by the model (Hopper has none, Blackwell says fixed). */
  readonly migDvsec: MigDvsecMode | undefined;
  readonly omit: readonly GraceOmitFault[];
}

const GiB = 1n << 30n;

/** GH200's 96 GiB HBM3 (a size that is not a power of two, as real parts' are not). */
export const DEFAULT_HOPPER_GPU_MEM = 96n * GiB;
/** GB200's 186 GiB of usable HBM3e. */
export const DEFAULT_BLACKWELL_GPU_MEM = 186n * GiB;
/** Where GH200 maps the GPU's memory in the system address space (4 TiB × 16, an emulation choice). */
export const DEFAULT_GPU_MEM_BASE = 0x4000_0000_0000n;

/** An option value the Grace generator cannot build (code DT_OPTION); the message names the option. */
export class GraceOptionError extends CodedError<'DT_OPTION'> {
  override readonly name: string = 'GraceOptionError';
  constructor(
    readonly option: string,
    detail: string,
  ) {
    super('DT_OPTION', `${option}: ${detail}`);
  }
}

/** Defaults filled in and every value checked. @throws GraceOptionError naming the option */
export function resolveGraceOptions(input: Partial<GraceOptions> = {}): GraceOptions {
  const machine = input.machine ?? 'grace-hopper';
  const o: GraceOptions = {
    machine,
    gpus: 1,
    gpuMem: machine === 'grace-blackwell' ? DEFAULT_BLACKWELL_GPU_MEM : DEFAULT_HOPPER_GPU_MEM,
    gpuMemBase: DEFAULT_GPU_MEM_BASE,
    gpuMemCells: 2,
    c2cLinkDown: false,
    hbmUntrained: false,
    migDvsec: undefined,
    omit: [],
    ...input,
  };
  if (o.machine !== 'grace-hopper' && o.machine !== 'grace-blackwell')
    throw new GraceOptionError(
      'machine',
      `must be grace-hopper or grace-blackwell, not ${String(o.machine)}`,
    );
  if (!Number.isInteger(o.gpus) || o.gpus < 1 || o.gpus > 4)
    throw new GraceOptionError('gpus', `must be 1..4, not ${o.gpus}`);
  if (o.gpuMem < 0n || o.gpuMem > 1n << 50n)
    throw new GraceOptionError('gpu-mem', `must be 0..1P, not ${o.gpuMem}`);
  if (o.gpuMemBase < 0n || o.gpuMemBase >= 1n << 64n)
    throw new GraceOptionError('gpu-mem-base', `must be a u64, not ${o.gpuMemBase}`);
  if (o.gpuMemCells !== 1 && o.gpuMemCells !== 2)
    throw new GraceOptionError('gpu-mem-cells', `must be 1 or 2, not ${o.gpuMemCells}`);
  if (o.migDvsec !== undefined && !['bug', 'fixed', 'absent'].includes(o.migDvsec))
    throw new GraceOptionError('mig-dvsec', `must be bug, fixed or absent, not ${o.migDvsec}`);
  return o;
}
