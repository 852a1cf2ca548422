/**
 * The kernel replay behind each finding: the doctor's init (doctor.ts, the server's own hooks)
 * runs once per kernel that behaves differently (5.0, 5.1, 5.2, 5.7, 5.12), and each finding
 * says, per range of kernels, what the init did to the PCI functions it names. A function whose
 * init is not clean in some kernel and that no finding names becomes a finding of its own:
 * NV100 (enabling fails), NV101 (stays plain), NV102 (a kernel warning).
 */
import { type DoctorEntry, runDoctorOnHost } from '../doctor.ts';
import { KERNEL_VERSIONS, type KernelVersion } from '../kernel-version.ts';
import { formatKernelRanges } from './kernels.ts';
import { rule } from './rules.ts';
import type { NvTree } from './tree-view.ts';
import type { Finding, KernelEffect, Level } from './types.ts';

/** The doctor's per-function verdicts by kernel version. */
export type Replays = ReadonlyMap<KernelVersion, readonly DoctorEntry[]>;

/** The doctor's verdicts on every function, for every kernel representative. */
export function replayAllKernels(tree: NvTree): Replays | undefined {
  const host = tree.host;
  if (!host) return undefined;
  return new Map(KERNEL_VERSIONS.map((v) => [v, runDoctorOnHost(host, { kernel: v })]));
}

/**
 * Whether an init went as it should: no error, no warning, and NVLink2 regions for an NVLink
 * GPU or bridge (a plain device is right for everything else).
 */
function clean(tree: NvTree, e: DoctorEntry): boolean {
  if (e.result === 'error' || e.warnings.length > 0) return false;
  if (e.result === 'nvlink2') return true;
  const fn = tree.host?.functionByName(e.address);
  const nvlink =
    fn !== undefined && (tree.gpus.includes(fn.node) || tree.bridges.includes(fn.node));
  return !(nvlink || e.role === 'bridge');
}

function describe(e: DoctorEntry): string {
  const warnings = e.warnings.map((w) => `warning: ${w}`);
  if (e.result === 'nvlink2') return `${e.address} nvlink2, ${warnings.join(', ')}`;
  const head = `${e.address} ${e.result}${e.errno ? ` ${e.errno}` : ''}: ${e.reason ?? ''}`;
  return warnings.length ? `${head} (${warnings.join(', ')})` : head;
}

/** Per kernel range, the lines of the not-clean inits among `functions`. */
function effectsOn(tree: NvTree, replays: Replays, functions: ReadonlySet<string>) {
  const perVersion = KERNEL_VERSIONS.map((v) => ({
    v,
    lines: (replays.get(v) ?? [])
      .filter((e) => functions.has(e.address) && !clean(tree, e))
      .map(describe),
  }));
  const effects: KernelEffect[] = [];
  const groups: { key: string; versions: KernelVersion[]; lines: string[] }[] = [];
  for (const { v, lines } of perVersion) {
    if (lines.length === 0) continue;
    const key = lines.join('\n');
    const last = groups.at(-1);
    // Adjacent kernels with the same lines share one range.
    if (
      last &&
      last.key === key &&
      KERNEL_VERSIONS.indexOf(last.versions.at(-1)!) === KERNEL_VERSIONS.indexOf(v) - 1
    )
      last.versions.push(v);
    else groups.push({ key, versions: [v], lines });
  }
  for (const g of groups) effects.push({ kernels: formatKernelRanges(g.versions), lines: g.lines });
  const affected = perVersion.filter((p) => p.lines.length > 0).map((p) => p.v);
  return { effects, affected };
}

/**
 * Fills each finding's `kernels` and `effects` from the replays and returns the findings for
 * functions whose init is not clean and that no finding names.
 */
export function attributeReplays(tree: NvTree, replays: Replays, findings: Finding[]): Finding[] {
  const claimed = new Set<string>();
  for (const f of findings) {
    for (const name of f.functions) claimed.add(name);
    const { effects, affected } = effectsOn(tree, replays, new Set(f.functions));
    f.effects = effects;
    f.kernels = affected.length ? formatKernelRanges(affected) : rule(f.ruleId).kernels;
  }
  const extra: Finding[] = [];
  const entries = replays.get('5.12') ?? [];
  for (const e of entries) {
    if (claimed.has(e.address)) continue;
    const all = KERNEL_VERSIONS.map((v) => replays.get(v)?.find((x) => x.address === e.address));
    const bad = all.filter((x): x is DoctorEntry => x !== undefined && !clean(tree, x));
    if (bad.length === 0) continue;
    const fn = tree.host?.functionByName(e.address);
    if (!fn) continue;
    const ruleId = bad.some((x) => x.result === 'error')
      ? 'NV100'
      : bad.some((x) => x.result === 'plain')
        ? 'NV101'
        : 'NV102';
    const emptySlot =
      ruleId === 'NV101' && tree.bridges.includes(fn.node) && tree.ownerGpu(fn.node) === undefined;
    const level: Level = emptySlot ? 'note' : rule(ruleId).level;
    const { effects, affected } = effectsOn(tree, replays, new Set([e.address]));
    const worst =
      bad.find((x) => x.result === 'error') ?? bad.find((x) => x.result === 'plain') ?? bad[0]!;
    extra.push({
      ruleId,
      level,
      message:
        ruleId === 'NV102'
          ? `${e.address}: the init warns: ${worst.warnings.join('; ')}`
          : `${e.address}: ${worst.result === 'error' ? 'enabling fails' : 'stays a plain vfio-pci device'}: ${worst.errno ?? ''} ${worst.reason ?? ''}${emptySlot ? ' (a bridge of an empty slot?)' : ''}`.replace(
              '  ',
              ' ',
            ),
      node: fn.node.path,
      functions: [e.address],
      kernels: formatKernelRanges(affected),
      effects,
    });
  }
  return extra;
}
