/**
 * What `generateWitherspoon` builds: the machine variant (GPU count, GPU RAM, link speed,
 * memory map) and the faults that leave out or alter single properties, so that every error
 * path of the NVLink2 subdriver (Linux drivers/vfio/pci/vfio_pci_nvlink2.c, v5.0–v5.12) can be
 * produced from a tree. Also the parser for the CLI's spellings of the same options.
 */
import { CodedError } from '../../errors/index.ts';
import type { MemoryMap } from './phys-map.ts';
import type { GpuCount } from './topology.ts';

/** Leave `property` out of the node(s) `target` names. */
export interface OmitFault {
  readonly property: string;
  /**
   * A PCI name ("0001:00:01.1"), an absolute node path ("/memory@3e000000000"), a GPU slot
   * label ("GPU3": that GPU's function node), or "*" (every node that has the property).
   */
  readonly target: string;
}

/** How a GPU is a P100 (10de:15f9) instead of a V100. */
export type P100Style =
  /** No NVLink2 at all: no `ibm,npu` on the GPU, no `ibm,gpu` on the bridges. */
  | 'plain'
  /** As on POWER8 NVLink1: `ibm,npu` ↔ `ibm,gpu` present, but the bridges carry no `memory-region`, `ibm,device-tgt-addr` or `ibm,nvlink-speed`. */
  | 'nvlink1';

/** What `generateWitherspoon` builds: the machine variant and the faults to put in its tree. */
export interface WitherspoonOptions {
  /** 4 (Redbud) or 6 (Sequoia) GPUs, over two sockets. */
  readonly gpus: GpuCount;
  /** 16 (10de:1db1) or 32 (10de:1db5) GiB; the memory node's `reg` is the 128 GiB aperture either way. */
  readonly gpuRamGiB: 16 | 32;
  /** `nvidia,link-speed` code on the link nodes; undefined leaves it out (so no `ibm,nvlink-speed`). */
  readonly linkSpeed: number | undefined;
  /** GPU RAM placement; '4t-up' only with 4 GPUs. */
  readonly memoryMap: MemoryMap;
  /** Give every PHB a `linux,pci-domain` (skiboot's OPAL PHB id: chip * 6 + PHB index). */
  readonly linuxPciDomain: boolean;
  readonly omit: readonly OmitFault[];
  /** How many `ibm,mmio-atsd` entries each NPU PHB has, 0..8; 0 leaves the property out. */
  readonly atsdEntries: number;
  /** How many u64 each GPU memory node's `reg` has (2 is right; 1 or 3 make the GPU RAM init fail). */
  readonly memoryRegU64s: number;
  /** Make every GPU a P100 (false: V100). */
  readonly p100: false | P100Style;
}

/**
 * The options `resolveWitherspoonOptions` fills in: 6 GPUs of 16 GiB, link speed 0x8, "4T down", no
 * faults.
 */
export const DEFAULT_WITHERSPOON_OPTIONS: WitherspoonOptions = {
  gpus: 6,
  gpuRamGiB: 16,
  linkSpeed: 0x8,
  memoryMap: '4t-down',
  linuxPciDomain: false,
  omit: [],
  atsdEntries: 8,
  memoryRegU64s: 2,
  p100: false,
};

/** An option value the generator cannot build (code DT_OPTION); the message names the option. */
export class WitherspoonOptionError extends CodedError<'DT_OPTION'> {
  override readonly name: string = 'WitherspoonOptionError';
  constructor(
    readonly option: string,
    detail: string,
  ) {
    super('DT_OPTION', `${option}: ${detail}`);
  }
}

/**
 * Defaults filled in and every value checked.
 * @throws WitherspoonOptionError naming the bad option.
 */
export function resolveWitherspoonOptions(
  input: Partial<WitherspoonOptions> = {},
): WitherspoonOptions {
  const o: WitherspoonOptions = { ...DEFAULT_WITHERSPOON_OPTIONS, ...input };
  if (o.gpus !== 4 && o.gpus !== 6)
    throw new WitherspoonOptionError('gpus', `must be 4 or 6, not ${o.gpus}`);
  if (o.gpuRamGiB !== 16 && o.gpuRamGiB !== 32) {
    throw new WitherspoonOptionError('gpu-ram', `must be 16 or 32, not ${o.gpuRamGiB}`);
  }
  if (
    o.linkSpeed !== undefined &&
    (!Number.isInteger(o.linkSpeed) || o.linkSpeed < 0 || o.linkSpeed > 0xffffffff)
  ) {
    throw new WitherspoonOptionError('link-speed', `must be a u32, not ${o.linkSpeed}`);
  }
  if (o.memoryMap !== '4t-down' && o.memoryMap !== '4t-up') {
    throw new WitherspoonOptionError(
      'memory-map',
      `must be 4t-down or 4t-up, not ${String(o.memoryMap)}`,
    );
  }
  if (o.memoryMap === '4t-up' && o.gpus !== 4) {
    throw new WitherspoonOptionError('memory-map', '4t-up holds at most 4 GPUs (use --gpus 4)');
  }
  if (!Number.isInteger(o.atsdEntries) || o.atsdEntries < 0 || o.atsdEntries > 8) {
    throw new WitherspoonOptionError('atsd-entries', `must be 0..8, not ${o.atsdEntries}`);
  }
  if (!Number.isInteger(o.memoryRegU64s) || o.memoryRegU64s < 0 || o.memoryRegU64s > 8) {
    throw new WitherspoonOptionError('memory-reg-u64s', `must be 0..8, not ${o.memoryRegU64s}`);
  }
  if (o.p100 !== false && o.p100 !== 'plain' && o.p100 !== 'nvlink1') {
    throw new WitherspoonOptionError('p100', `must be plain or nvlink1, not ${String(o.p100)}`);
  }
  return o;
}

/**
 * `PROP@TARGET` → an omit fault. The property is everything before the last `@` that is
 * followed by a target (property names never contain `@`, targets may: `/memory@3e0…`), so
 * the split is at the first `@`.
 * @throws WitherspoonOptionError
 */
export function parseOmitSpec(spec: string): OmitFault {
  const at = spec.indexOf('@');
  if (at <= 0 || at === spec.length - 1) {
    throw new WitherspoonOptionError(
      'omit',
      `'${spec}' is not PROP@NODE (e.g. ibm,nvlink-speed@0001:00:01.1)`,
    );
  }
  return { property: spec.slice(0, at), target: spec.slice(at + 1) };
}

/** The CLI's string spellings of the options (as `node:util` parseArgs returns them). */
export interface WitherspoonFlags {
  gpus?: string;
  'gpu-ram'?: string;
  'link-speed'?: string;
  'memory-map'?: string;
  'pci-domains'?: boolean;
  omit?: string[];
  'atsd-entries'?: string;
  'memory-reg-u64s'?: string;
  p100?: string;
}

/** Option definitions for `node:util` parseArgs matching `WitherspoonFlags`. */
export const WITHERSPOON_FLAG_SPEC = {
  gpus: { type: 'string' },
  'gpu-ram': { type: 'string' },
  'link-speed': { type: 'string' },
  'memory-map': { type: 'string' },
  'pci-domains': { type: 'boolean' },
  omit: { type: 'string', multiple: true },
  'atsd-entries': { type: 'string' },
  'memory-reg-u64s': { type: 'string' },
  p100: { type: 'string' },
} as const;

/** What each integer flag takes, for its "must be" line. */
const INTEGER_RANGE: Readonly<Record<string, string>> = {
  gpus: '4 or 6',
  'gpu-ram': '16 or 32',
  'link-speed': 'a u32 (0..4294967295) or none',
  'atsd-entries': '0..8',
  'memory-reg-u64s': '0..8',
};

function parseInteger(flag: string, text: string): number {
  const value = /^0x[0-9a-f]+$/i.test(text)
    ? Number.parseInt(text, 16)
    : /^\d+$/.test(text)
      ? Number(text)
      : Number.NaN;
  if (!Number.isSafeInteger(value))
    throw new WitherspoonOptionError(
      flag,
      `must be ${INTEGER_RANGE[flag] ?? 'an integer'}, not '${text}'`,
    );
  return value;
}

/**
 * CLI flags → options (unset flags keep their defaults), checked.
 * `--link-speed none` leaves the link speed out; `--p100` takes `plain` or `nvlink1`.
 * @throws WitherspoonOptionError naming the flag.
 */
export function witherspoonOptionsFromFlags(flags: WitherspoonFlags): WitherspoonOptions {
  const o: { -readonly [K in keyof WitherspoonOptions]?: WitherspoonOptions[K] } = {};
  if (flags.gpus !== undefined) o.gpus = parseInteger('gpus', flags.gpus) as GpuCount;
  if (flags['gpu-ram'] !== undefined)
    o.gpuRamGiB = parseInteger('gpu-ram', flags['gpu-ram']) as 16 | 32;
  if (flags['link-speed'] !== undefined) {
    o.linkSpeed =
      flags['link-speed'] === 'none' ? undefined : parseInteger('link-speed', flags['link-speed']);
  }
  if (flags['memory-map'] !== undefined) o.memoryMap = flags['memory-map'] as MemoryMap;
  if (flags['pci-domains']) o.linuxPciDomain = true;
  if (flags.omit) o.omit = flags.omit.map(parseOmitSpec);
  if (flags['atsd-entries'] !== undefined)
    o.atsdEntries = parseInteger('atsd-entries', flags['atsd-entries']);
  if (flags['memory-reg-u64s'] !== undefined) {
    o.memoryRegU64s = parseInteger('memory-reg-u64s', flags['memory-reg-u64s']);
  }
  if (flags.p100 !== undefined) o.p100 = flags.p100 as P100Style;
  return resolveWitherspoonOptions(o);
}
