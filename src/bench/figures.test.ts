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
