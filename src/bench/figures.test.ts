/**
 * The bench's judgement without timing: a figure passes or misses its target from its numbers
 * alone (ratios at most / at least, absolute caps, the edge counting as met), and the verdict
 * turns any miss into exit status 3 unless --no-fail asked for 0.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  absoluteFigure,
  BENCH_MISSED_EXIT,
  benchVerdict,
  type Figure,
  ratioFigure,
} from './figures.ts';
import { type MigrationPlan, migrationFigures } from './migration-figures.ts';

const base = { unit: 'µs', label: 'x', floorLabel: 'f', detail: 'd' };

function ratio(id: string, value: number, floor: number, limit: number, most = true): Figure {
  return ratioFigure({
    ...base,
    id,
    value,
    floor,
    target: { kind: most ? 'ratio-at-most' : 'ratio-at-least', limit },
  });
}

describe('figures', () => {
  it('ratio targets: at most and at least, the limit itself met', () => {
    assert.equal(ratio('a', 11, 10, 1.1).pass, true);
    assert.equal(ratio('a', 11.01, 10, 1.1).pass, false);
    assert.equal(ratio('b', 9, 10, 0.9, false).pass, true);
    assert.equal(ratio('b', 8.99, 10, 0.9, false).pass, false);
    assert.equal(ratio('c', 40, 10, 4).ratio, 4);
  });

  it('stop-copy vs floor: each run against the floors before and after it', () => {
    const GB = 1e9;
    const plan: MigrationPlan = {
      downtimePopulate: 0,
      hotPages: 0,
      downtimeRuns: 0,
      throughputPopulate: GB,
      throughputRuns: 3,
      memoryBudget: '4G',
    };
    const run = (ms: number) => ({
      roundBytes: [GB],
      precopyRounds: 0,
      stopCopyBytes: GB,
      totalBytes: GB,
      downtimeMs: ms,
      stopCopyMs: ms,
      totalMs: ms,
    });
    // The machine slows down and recovers: runs of 1, 3 and 1.5 s for a GB; floors of 0.5 s
    // before the first run, then 1.5, 1.5 and 0.5 s.
    const figures = migrationFigures(
      {
        downtime: [run(10)],
        stopCopy: [run(1000), run(3000), run(1500)],
        stopCopyWarm: [run(500)],
        floorMs: [500, 1500, 1500, 500],
        reportedKib: 3 * 1024 * 1024,
      },
      plan,
    );
    const f = figures.find((x) => x.id === 'migration-stop-copy-floor');
    // Runs of 1000, 333 and 667 MB/s against the floors around them, 1000, 667 and 1000 MB/s:
    // ratios 1.0, 0.5, 0.67, median 0.67, where median over median says 667 / 1333 = 0.5.
    assert.equal(f?.ratio?.toFixed(3), '0.667');
    assert.equal(f?.value.toFixed(0), '667');
    assert.equal(f?.floor?.toFixed(0), '1000');
    assert.match(f?.floorLabel ?? '', /\(2000, 667, 667, 2000 MB\/s\)/);
    assert.match(f?.detail ?? '', /ratios 1\.00, 0\.50, 0\.67/);
    const fresh = figures.find((x) => x.id === 'migration-stop-copy');
    assert.match(fresh?.detail ?? '', /\(1000, 333, 667 MB\/s\)/);
    assert.match(fresh?.detail ?? '', /free page reporting gave 3072 MiB back to the host/);
  });

  it('absolute targets', () => {
    const f = (value: number) =>
      absoluteFigure({ ...base, id: 'rss', value, target: { kind: 'value-at-most', limit: 80 } });
    assert.equal(f(80).pass, true);
    assert.equal(f(80.1).pass, false);
    assert.equal(f(80).ratio, null);
  });
});

describe('benchVerdict', () => {
  const met = [ratio('p50', 10, 10, 1.1), ratio('read', 10, 10, 0.9, false)];
  const missed = [...met, ratio('p99', 20, 10, 1.3), ratio('start', 50, 10, 4)];

  it('every target met: exit 0, with or without --no-fail', () => {
    for (const noFail of [false, true]) {
      const v = benchVerdict(met, noFail);
      assert.deepEqual([v.exitCode, v.missed, v.summary], [0, [], 'every target met']);
    }
  });

  it('a missed target: exit 3 naming each miss; --no-fail: exit 0, still naming them', () => {
    const v = benchVerdict(missed, false);
    assert.equal(v.exitCode, BENCH_MISSED_EXIT);
    assert.equal(BENCH_MISSED_EXIT, 3);
    assert.deepEqual(v.missed, ['p99', 'start']);
    assert.equal(v.summary, '2 target(s) missed: p99, start (exit 3)');
    const explore = benchVerdict(missed, true);
    assert.equal(explore.exitCode, 0);
    assert.equal(explore.summary, '2 target(s) missed: p99, start (--no-fail: exit 0)');
  });

  it('no figures at all is no miss', () => {
    assert.equal(benchVerdict([], false).exitCode, 0);
  });
});
