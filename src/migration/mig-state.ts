/**
 * The migration states and the arcs between them (include/uapi/linux/vfio.h
 * enum vfio_device_mig_state; drivers/vfio/vfio_main.c vfio_mig_get_next_state): a requested
 * transition is walked one arc at a time along the kernel's table, skipping states the device
 * does not advertise (VFIO_MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY), never passing through a
 * saving state on the way; an unsupported or unreachable target is EINVAL.
 */

/** enum vfio_device_mig_state (include/uapi/linux/vfio.h). */
export enum MigState {
  ERROR = 0,
  STOP = 1,
  RUNNING = 2,
  STOP_COPY = 3,
  RESUMING = 4,
  RUNNING_P2P = 5,
  PRE_COPY = 6,
  PRE_COPY_P2P = 7,
}

/** Number of states (VFIO_DEVICE_STATE_PRE_COPY_P2P + 1). */
export const MIG_STATE_COUNT = 8;

/** VFIO_MIGRATION_* flags of struct vfio_device_feature_migration (include/uapi/linux/vfio.h). */
export const MigrationFlag = { STOP_COPY: 1, P2P: 2, PRE_COPY: 4 } as const;

/** "PRE_COPY" for logs; `state 9` for numbers outside the enum. */
export function migStateName(state: number): string {
  return MigState[state] ?? `state ${state}`;
}

const { ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P } = MigState;

/** vfio_main.c vfio_from_fsm_table: [from][to] → the next state on the way. */
const FSM: readonly (readonly MigState[])[] = (() => {
  const row = (
    stop: MigState,
    running: MigState,
    stopCopy: MigState,
    resuming: MigState,
    runningP2p: MigState,
    preCopy: MigState,
    preCopyP2p: MigState,
  ): MigState[] => [ERROR, stop, running, stopCopy, resuming, runningP2p, preCopy, preCopyP2p];
  const t: MigState[][] = [];
  t[ERROR] = [ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR];
  t[STOP] = row(STOP, RUNNING_P2P, STOP_COPY, RESUMING, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P);
  t[RUNNING] = row(
    RUNNING_P2P,
    RUNNING,
    RUNNING_P2P,
    RUNNING_P2P,
    RUNNING_P2P,
    PRE_COPY,
    RUNNING_P2P,
  );
  t[STOP_COPY] = row(STOP, STOP, STOP_COPY, STOP, STOP, ERROR, ERROR);
  t[RESUMING] = row(STOP, STOP, STOP, RESUMING, STOP, STOP, STOP);
  t[RUNNING_P2P] = row(STOP, RUNNING, STOP, STOP, RUNNING_P2P, RUNNING, PRE_COPY_P2P);
  t[PRE_COPY] = row(RUNNING, RUNNING, PRE_COPY_P2P, RUNNING, RUNNING, PRE_COPY, PRE_COPY_P2P);
  t[PRE_COPY_P2P] = row(
    RUNNING_P2P,
    RUNNING_P2P,
    STOP_COPY,
    RUNNING_P2P,
    RUNNING_P2P,
    PRE_COPY,
    PRE_COPY_P2P,
  );
  return t;
})();

/** vfio_main.c state_flags_table: the flags a device needs for each state (ERROR: never). */
const NEEDS: readonly number[] = [
  0xffffffff,
  MigrationFlag.STOP_COPY,
  MigrationFlag.STOP_COPY,
  MigrationFlag.STOP_COPY,
  MigrationFlag.STOP_COPY,
  MigrationFlag.STOP_COPY | MigrationFlag.P2P,
  MigrationFlag.STOP_COPY | MigrationFlag.PRE_COPY,
  MigrationFlag.STOP_COPY | MigrationFlag.P2P | MigrationFlag.PRE_COPY,
];

function supported(state: number, flags: number): boolean {
  const needs = NEEDS[state];
  return needs !== undefined && (needs & flags) >>> 0 === needs >>> 0;
}

/**
 * vfio_mig_get_next_state(): the next arc from `current` towards `target` for a device with
 * migration `flags`, or undefined when the kernel answers -EINVAL (target unknown or not
 * advertised, ERROR requested, the way blocked: STOP_COPY → PRE_COPY).
 */
export function nextMigState(
  current: MigState,
  target: number,
  flags: number,
): MigState | undefined {
  if (!supported(current, flags) || !supported(target, flags)) return undefined;
  let next = FSM[current]?.[target] as MigState;
  // ERROR in the table is a blocked way (STOP_COPY → PRE_COPY): it ends the walk.
  while (next !== ERROR && !supported(next, flags)) next = FSM[next]?.[target] as MigState;
  return next === ERROR ? undefined : next;
}

/**
 * The arcs a transition from `current` to `target` takes (the states after each), [] when
 * `current` is the target, undefined when the kernel refuses it (EINVAL).
 */
export function migPath(current: MigState, target: number, flags: number): MigState[] | undefined {
  // The driver's loop (while new != current) does nothing for the current state, ERROR included.
  if (current === target) return current === ERROR || supported(target, flags) ? [] : undefined;
  const path: MigState[] = [];
  for (let at = current; at !== target; ) {
    const next = nextMigState(at, target, flags);
    if (next === undefined) return undefined;
    path.push(next);
    at = next;
  }
  return path;
}

/** Whether `state` has the device running (its vCPU-side work goes on). */
export function isRunningState(state: MigState): boolean {
  return state === RUNNING || state === PRE_COPY || state === RUNNING_P2P || state === PRE_COPY_P2P;
}
