/**
 * The CLI's spellings of the Grace options (`dt generate --machine grace-hopper …`), as
 * `node:util` parseArgs returns them. `--gpus` and `--omit` are spelled as for Witherspoon.
 */
import {
  type GraceMachine,
  type GraceOmitFault,
  GraceOptionError,
  type GraceOptions,
  type MigDvsecMode,
  resolveGraceOptions,
} from './options.ts';

/** Flags only a Grace machine takes (besides the shared --gpus and --omit). */
export const GRACE_FLAG_SPEC = {
  'gpu-mem': { type: 'string' },
  'gpu-mem-base': { type: 'string' },
  'gpu-mem-cells': { type: 'string' },
  'c2c-link': { type: 'string' },
  'hbm-training': { type: 'string' },
  'mig-dvsec': { type: 'string' },
} as const;

/** The Grace flags of `dt generate` as parseArgs returns them (strings, unchecked). */
export interface GraceFlags {
  gpus?: string;
  omit?: string[];
  'gpu-mem'?: string;
  'gpu-mem-base'?: string;
  'gpu-mem-cells'?: string;
  'c2c-link'?: string;
  'hbm-training'?: string;
  'mig-dvsec'?: string;
}

const SHIFT: Readonly<Record<string, bigint>> = { '': 0n, K: 10n, M: 20n, G: 30n, T: 40n, P: 50n };

/** What each size flag takes, for its "must be" line. */
const SIZE_RANGE: Readonly<Record<string, string>> = {
  'gpu-mem': 'a size from 0 to 1P',
  'gpu-mem-base': 'an address from 0 to 0xffffffffffffffff',
};

/** "96G", "1536M", "0x1800000000", "0"; negative or past its range: "must be". @throws GraceOptionError */
function parseBytes(flag: string, text: string): bigint {
  const m = /^(?:0x([0-9a-f]+)|(\d+)([KMGTP])?(?:i?B)?)$/i.exec(text);
  const bytes = m
    ? m[1] !== undefined
      ? BigInt(`0x${m[1]}`)
      : BigInt(m[2] as string) << (SHIFT[(m[3] ?? '').toUpperCase()] ?? 0n)
    : undefined;
  const max = flag === 'gpu-mem' ? 1n << 50n : (1n << 64n) - 1n;
  if (bytes === undefined || bytes > max)
    throw new GraceOptionError(
      flag,
      `must be ${SIZE_RANGE[flag] ?? 'a size'} (e.g. 96G, 1536M, 0x40000000), not '${text}'`,
    );
  return bytes;
}

function choose<T extends string>(flag: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text))
    throw new GraceOptionError(flag, `must be ${allowed.join(' or ')}, not '${text}'`);
  return text as T;
}

function parseOmit(spec: string): GraceOmitFault {
  const at = spec.indexOf('@');
  if (at <= 0 || at === spec.length - 1)
    throw new GraceOptionError('omit', `'${spec}' is not PROP@GPU (e.g. nvidia,gpu-mem-size@GPU0)`);
  return { property: spec.slice(0, at), target: spec.slice(at + 1) };
}

/** Flags → checked options. @throws GraceOptionError naming the flag */
export function graceOptionsFromFlags(machine: GraceMachine, flags: GraceFlags): GraceOptions {
  const o: { -readonly [K in keyof GraceOptions]?: GraceOptions[K] } = { machine };
  if (flags.gpus !== undefined) {
    if (!/^\d+$/.test(flags.gpus))
      throw new GraceOptionError('gpus', `must be 1..4, not '${flags.gpus}'`);
    o.gpus = Number(flags.gpus);
  }
  if (flags['gpu-mem'] !== undefined) o.gpuMem = parseBytes('gpu-mem', flags['gpu-mem']);
  if (flags['gpu-mem-base'] !== undefined)
    o.gpuMemBase = parseBytes('gpu-mem-base', flags['gpu-mem-base']);
  if (flags['gpu-mem-cells'] !== undefined)
    o.gpuMemCells = Number(choose('gpu-mem-cells', flags['gpu-mem-cells'], ['1', '2']));
  if (flags['c2c-link'] !== undefined)
    o.c2cLinkDown = choose('c2c-link', flags['c2c-link'], ['up', 'down']) === 'down';
  if (flags['hbm-training'] !== undefined)
    o.hbmUntrained =
      choose('hbm-training', flags['hbm-training'], ['done', 'pending']) === 'pending';
  if (flags['mig-dvsec'] !== undefined)
    o.migDvsec = choose<MigDvsecMode>('mig-dvsec', flags['mig-dvsec'], ['bug', 'fixed', 'absent']);
  if (flags.omit) o.omit = flags.omit.map(parseOmit);
  return resolveGraceOptions(o);
}
