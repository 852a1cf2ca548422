/**
 * The benchmark's results: each figure with its value, the floor it was measured against in the
 * same run, their ratio and the target from issue 4 item 7, judged once here. Rendered as a
 * table for people and as JSON for tools (`bench-results.json`).
 */
import { layoutTable } from '../text/index.ts';

/** How a figure meets its target: a ratio to the floor or an absolute bound (at most / at least). */
export type Target =
  | { readonly kind: 'ratio-at-most'; readonly limit: number }
  | { readonly kind: 'ratio-at-least'; readonly limit: number }
  | { readonly kind: 'value-at-most'; readonly limit: number }
  | { readonly kind: 'value-at-least'; readonly limit: number };

/** One measured figure of `bench --json`: a stable id, a label, its unit and value. */
export interface Figure {
  /** Stable key, e.g. 'region-read-8b-p50'. */
  readonly id: string;
  readonly label: string;
  readonly unit: string;
  readonly value: number;
  /** The same-run floor in the same unit, or null for absolute figures. */
  readonly floor: number | null;
  readonly floorLabel: string | null;
  readonly ratio: number | null;
  readonly target: Target;
  readonly pass: boolean;
  /** How it was measured (samples, sizes, pre-faulting). */
  readonly detail: string;
}

/** A figure against a floor; the ratio is value / floor. */
export function ratioFigure(
  base: Omit<Figure, 'ratio' | 'pass'> & { floor: number; target: Target },
): Figure {
  const ratio = base.value / base.floor;
  return { ...base, ratio, pass: meets(base.target, ratio, base.value) };
}

/** A figure with an absolute target and no floor. */
export function absoluteFigure(
  base: Omit<Figure, 'ratio' | 'pass' | 'floor' | 'floorLabel'> & { target: Target },
): Figure {
  return {
    ...base,
    floor: null,
    floorLabel: null,
    ratio: null,
    pass: meets(base.target, null, base.value),
  };
}

function meets(target: Target, ratio: number | null, value: number): boolean {
  switch (target.kind) {
    case 'ratio-at-most':
      return ratio !== null && ratio <= target.limit;
    case 'ratio-at-least':
      return ratio !== null && ratio >= target.limit;
    case 'value-at-most':
      return value <= target.limit;
    case 'value-at-least':
      return value >= target.limit;
  }
}

function describeTarget(t: Target, unit: string): string {
  switch (t.kind) {
    case 'ratio-at-most':
      return `≤ ${t.limit}×`;
    case 'ratio-at-least':
      return `≥ ${t.limit}×`;
    case 'value-at-most':
      return `≤ ${t.limit} ${unit}`;
    case 'value-at-least':
      return `≥ ${t.limit} ${unit}`;
  }
}

function formatNumber(v: number): string {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** The figures as an aligned text table (one row each, then the floors' descriptions). */
export function renderTable(figures: readonly Figure[]): string {
  const header = [
    'figure',
    ...['value', 'floor', 'ratio', 'target', 'result'].map((title) => ({
      title,
      align: 'right' as const,
    })),
  ];
  const rows = figures.map((f) => [
    f.label,
    `${formatNumber(f.value)} ${f.unit}`,
    f.floor === null ? '–' : `${formatNumber(f.floor)} ${f.unit}`,
    f.ratio === null ? '–' : `${f.ratio.toFixed(2)}×`,
    describeTarget(f.target, f.unit),
    f.pass ? 'pass' : 'MISS',
  ]);
  const out = layoutTable(header, rows, { rule: true }).lines;
  const floors = figures
    .filter((f) => f.floorLabel !== null)
    .map((f) => `${f.id}: floor = ${f.floorLabel}`);
  const details = figures.map((f) => `${f.id}: ${f.detail}`);
  return [...out, '', ...floors, '', ...details].join('\n');
}

/** What a run's figures mean for the command: its exit status and its last line. */
export interface Verdict {
  /** 0, or BENCH_MISSED_EXIT when a target was missed and failing was not turned off. */
  readonly exitCode: number;
  readonly missed: readonly string[];
  readonly summary: string;
}

/** `bench`'s exit status when a target is missed (1 is "could not measure", 2 bad usage). */
export const BENCH_MISSED_EXIT = 3;

/**
 * The verdict on `figures`: exit BENCH_MISSED_EXIT when any target is missed, unless `noFail`
 * (`--no-fail`, for exploring), which reports the misses and exits 0.
 */
export function benchVerdict(figures: readonly Figure[], noFail: boolean): Verdict {
  const missed = figures.filter((f) => !f.pass).map((f) => f.id);
  if (missed.length === 0) return { exitCode: 0, missed, summary: 'every target met' };
  const list = `${missed.length} target(s) missed: ${missed.join(', ')}`;
  return noFail
    ? { exitCode: 0, missed, summary: `${list} (--no-fail: exit 0)` }
    : { exitCode: BENCH_MISSED_EXIT, missed, summary: `${list} (exit ${BENCH_MISSED_EXIT})` };
}
