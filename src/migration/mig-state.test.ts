/**
 * The migration state machine against the kernel (drivers/vfio/vfio_main.c
 * vfio_mig_get_next_state): every pair of states for this server's flags (STOP_COPY|PRE_COPY)
 * as a table written out by hand; with every flag, the combination transitions the kernel's
 * comment lists; for every flag set, each arc taken is one the kernel requires the driver to
 * implement, and unsupported states are refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MigrationFlag, MigState, migPath } from './mig-state.ts';

const { ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P } = MigState;
const ALL_STATES = [0, 1, 2, 3, 4, 5, 6, 7];
const SERVER = MigrationFlag.STOP_COPY | MigrationFlag.PRE_COPY;
const ALL = MigrationFlag.STOP_COPY | MigrationFlag.P2P | MigrationFlag.PRE_COPY;

/** [from, to, path or null for EINVAL], this server's flags; every pair not listed is EINVAL. */
const SERVER_TABLE: [MigState, MigState, MigState[]][] = [
  [STOP, STOP, []],
  [STOP, RUNNING, [RUNNING]],
  [STOP, STOP_COPY, [STOP_COPY]],
  [STOP, RESUMING, [RESUMING]],
  [STOP, PRE_COPY, [RUNNING, PRE_COPY]],
  [RUNNING, STOP, [STOP]],
  [RUNNING, RUNNING, []],
  [RUNNING, STOP_COPY, [STOP, STOP_COPY]],
  [RUNNING, RESUMING, [STOP, RESUMING]],
  [RUNNING, PRE_COPY, [PRE_COPY]],
  [STOP_COPY, STOP, [STOP]],
  [STOP_COPY, RUNNING, [STOP, RUNNING]],
  [STOP_COPY, STOP_COPY, []],
  [STOP_COPY, RESUMING, [STOP, RESUMING]],
  [RESUMING, STOP, [STOP]],
  [RESUMING, RUNNING, [STOP, RUNNING]],
  [RESUMING, STOP_COPY, [STOP, STOP_COPY]],
  [RESUMING, RESUMING, []],
  [RESUMING, PRE_COPY, [STOP, RUNNING, PRE_COPY]],
  [PRE_COPY, STOP, [RUNNING, STOP]],
  [PRE_COPY, RUNNING, [RUNNING]],
  [PRE_COPY, STOP_COPY, [STOP_COPY]],
  [PRE_COPY, RESUMING, [RUNNING, STOP, RESUMING]],
  [PRE_COPY, PRE_COPY, []],
  [ERROR, ERROR, []],
];

/** The kernel's comment: combination transitions with every flag (first state is the source). */
const KERNEL_COMBINATIONS: MigState[][] = [
  [PRE_COPY, PRE_COPY_P2P, STOP_COPY],
  [PRE_COPY, RUNNING, RUNNING_P2P],
  [PRE_COPY, RUNNING, RUNNING_P2P, STOP],
  [PRE_COPY, RUNNING, RUNNING_P2P, STOP, RESUMING],
  [PRE_COPY_P2P, RUNNING_P2P, RUNNING],
  [PRE_COPY_P2P, RUNNING_P2P, STOP],
  [PRE_COPY_P2P, RUNNING_P2P, STOP, RESUMING],
  [RESUMING, STOP, RUNNING_P2P],
  [RESUMING, STOP, RUNNING_P2P, PRE_COPY_P2P],
  [RESUMING, STOP, RUNNING_P2P, RUNNING],
  [RESUMING, STOP, RUNNING_P2P, RUNNING, PRE_COPY],
  [RESUMING, STOP, STOP_COPY],
  [RUNNING, RUNNING_P2P, PRE_COPY_P2P],
  [RUNNING, RUNNING_P2P, STOP],
  [RUNNING, RUNNING_P2P, STOP, RESUMING],
  [RUNNING, RUNNING_P2P, STOP, STOP_COPY],
  [RUNNING_P2P, RUNNING, PRE_COPY],
  [RUNNING_P2P, STOP, RESUMING],
  [RUNNING_P2P, STOP, STOP_COPY],
  [STOP, RUNNING_P2P, PRE_COPY_P2P],
  [STOP, RUNNING_P2P, RUNNING],
  [STOP, RUNNING_P2P, RUNNING, PRE_COPY],
  [STOP_COPY, STOP, RESUMING],
  [STOP_COPY, STOP, RUNNING_P2P],
  [STOP_COPY, STOP, RUNNING_P2P, RUNNING],
];

/** The arcs the kernel's comment requires a driver to implement for `flags`. */
function driverArcs(flags: number): Set<string> {
  const arcs: [MigState, MigState][] = [
    [RESUMING, STOP],
    [STOP, RESUMING],
    [STOP, STOP_COPY],
    [STOP_COPY, STOP],
  ];
  const p2p = (flags & MigrationFlag.P2P) !== 0;
  const pre = (flags & MigrationFlag.PRE_COPY) !== 0;
  if (p2p)
    arcs.push(
      [RUNNING, RUNNING_P2P],
      [RUNNING_P2P, RUNNING],
      [RUNNING_P2P, STOP],
      [STOP, RUNNING_P2P],
    );
  else arcs.push([RUNNING, STOP], [STOP, RUNNING]);
  if (pre && !p2p) arcs.push([RUNNING, PRE_COPY], [PRE_COPY, RUNNING], [PRE_COPY, STOP_COPY]);
  if (pre && p2p)
    arcs.push(
      [PRE_COPY, RUNNING],
      [PRE_COPY, PRE_COPY_P2P],
      [PRE_COPY_P2P, PRE_COPY],
      [PRE_COPY_P2P, RUNNING_P2P],
      [PRE_COPY_P2P, STOP_COPY],
      [RUNNING, PRE_COPY],
      [RUNNING_P2P, PRE_COPY_P2P],
    );
  return new Set(arcs.map(([a, b]) => `${a}>${b}`));
}

describe('migration state machine (vfio_mig_get_next_state)', () => {
  it("this server's flags: every pair of states, paths as the kernel takes them", () => {
    for (const from of ALL_STATES) {
      for (const to of [...ALL_STATES, 8, 0xabcd]) {
        const row = SERVER_TABLE.find(([a, b]) => a === from && b === to);
        assert.deepEqual(
          migPath(from, to, SERVER),
          row?.[2],
          `${MigState[from]} → ${MigState[to] ?? to}`,
        );
      }
    }
  });

  it('every flag: the combination transitions listed in vfio_main.c', () => {
    for (const [from, ...path] of KERNEL_COMBINATIONS) {
      const to = path[path.length - 1] as MigState;
      assert.deepEqual(
        migPath(from as MigState, to, ALL),
        path,
        `${MigState[from as MigState]} → ${MigState[to]}`,
      );
    }
    assert.equal(migPath(STOP_COPY, PRE_COPY, ALL), undefined, 'blocked');
    assert.equal(migPath(STOP_COPY, PRE_COPY_P2P, ALL), undefined, 'blocked');
  });

  it('every flag set: each arc is one the driver implements; unsupported states are EINVAL', () => {
    for (const flags of [1, 1 | 2, 1 | 4, 1 | 2 | 4]) {
      const arcs = driverArcs(flags);
      for (const from of ALL_STATES) {
        for (const to of ALL_STATES) {
          const path = migPath(from, to, flags);
          if (path === undefined) continue;
          let at: number = from;
          for (const next of path) {
            assert.ok(
              arcs.has(`${at}>${next}`),
              `flags ${flags}: ${MigState[at]} → ${MigState[next]}`,
            );
            at = next;
          }
        }
      }
      if (!(flags & MigrationFlag.P2P))
        assert.equal(migPath(RUNNING, RUNNING_P2P, flags), undefined);
      if (!(flags & MigrationFlag.PRE_COPY))
        assert.equal(migPath(RUNNING, PRE_COPY, flags), undefined);
      assert.equal(migPath(RUNNING, ERROR, flags), undefined, 'ERROR is never a target');
      assert.equal(migPath(ERROR, RUNNING, flags), undefined, 'ERROR is left by reset only');
    }
  });
});
