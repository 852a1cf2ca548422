/**
 * One device's migration v2 as a client drives it (include/uapi/linux/vfio.h
 * vfio_device_mig_state; vfio-user.rst "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE"; the arcs'
 * actions as the kernel's variant drivers do them, e.g. mlx5 mlx5vf_pci_step_device_state_locked):
 *
 * - RUNNING → STOP, PRE_COPY → STOP_COPY: the device stops (no DMA, no interrupt);
 *   STOP → RUNNING resumes it;
 * - RUNNING → PRE_COPY starts a saving session (StreamSaver), PRE_COPY → RUNNING drops it;
 *   STOP → STOP_COPY starts one that goes straight to its last round; STOP_COPY → STOP ends it;
 * - STOP → RESUMING starts a loading session (StreamLoader: pages are stored as they arrive);
 *   RESUMING → STOP checks the stream is whole, punches the memory it did not write and
 *   applies the saved device state. Until then the device records the load under way
 *   (setMigrationLoad: a state directory keeps it, and a restart says the memory is partly a
 *   stream's); RESUMING → STOP, a reset or the session's end clears it.
 *
 * A transition takes the kernel's path arc by arc (mig-state.ts); an arc that fails leaves the
 * device in ERROR and the request fails with its errno. ERROR is left only by DEVICE_RESET
 * (`reset`). MIG_DATA_READ is valid in PRE_COPY and STOP_COPY, MIG_DATA_WRITE in RESUMING
 * (EINVAL elsewhere, as libvfio-user answers). Ending the session (`close`) is a reset of the
 * migration: the device runs again and what was saved or loaded is dropped (the kernel's
 * release of the device file).
 */
import { VfioError, type VfioPciDevice } from '../vfio/index.ts';
import { DmaDirtyLog } from './dma-log.ts';
import { isRunningState, MigrationFlag, MigState, migPath, migStateName } from './mig-state.ts';
import { StreamLoader } from './stream-loader.ts';
import type { SaverCounts } from './stream-saver.ts';
import { StreamSaver } from './stream-saver.ts';

/** What this server advertises in VFIO_DEVICE_FEATURE_MIGRATION: STOP_COPY and PRE_COPY, no P2P. */
export const SERVER_MIGRATION_FLAGS = MigrationFlag.STOP_COPY | MigrationFlag.PRE_COPY;

/** The state machine, its saving or loading session and its DMA log, for one open device. */
export class DeviceMigration {
  readonly flags: number;
  readonly dmaLog = new DmaDirtyLog();
  #state = MigState.RUNNING;
  #saver: StreamSaver | undefined;
  #loader: StreamLoader | undefined;
  /** Stream bytes written to the loading session (RESUMING), kept past a failed load (ERROR). */
  #loaded = 0;

  constructor(
    private readonly device: VfioPciDevice,
    flags: number = SERVER_MIGRATION_FLAGS,
  ) {
    this.flags = flags;
  }

  get state(): MigState {
    return this.#state;
  }

  /** The saving session's counts, if one runs. */
  get saverCounts(): SaverCounts | undefined {
    return this.#saver?.counts;
  }

  /**
   * MIG_DEVICE_STATE SET: walks to `target` one arc at a time.
   * @throws VfioError EINVAL for an unknown, unadvertised or unreachable target (the state is
   *   unchanged); an arc's own errno (EINVAL for a bad stream at RESUMING → STOP) after which
   *   the state is ERROR.
   */
  setState(target: number): void {
    const path = migPath(this.#state, target, this.flags);
    if (path === undefined) {
      throw new VfioError(
        'EINVAL',
        `migration state ${migStateName(this.#state)} → ${migStateName(target)} is not a transition this device makes`,
      );
    }
    for (const next of path) {
      try {
        this.#step(this.#state, next);
      } catch (err) {
        this.#enterError();
        throw err;
      }
      this.#state = next;
    }
  }

  #step(from: MigState, to: MigState): void {
    const S = MigState;
    if (from === S.RESUMING && to === S.STOP) {
      const loader = this.#loader;
      this.#loader = undefined;
      loader?.finish();
      this.#loaded = 0; // loaded whole: nothing cut
      this.device.setMigrationLoad(undefined);
    } else if (from === S.STOP && to === S.RESUMING) {
      this.#loader = new StreamLoader(this.device);
      this.#loaded = 0;
      // Recorded (a state directory writes it) before any MIG_DATA_WRITE is answered: a server
      // killed mid-stream restarts knowing its memory is partly the stream's.
      this.device.setMigrationLoad(migStateName(S.RESUMING));
    } else if (from === S.RUNNING && to === S.PRE_COPY) {
      this.#saver = new StreamSaver(this.device);
    } else if (to === S.STOP_COPY) {
      this.#saver ??= new StreamSaver(this.device);
      this.#saver.startFinal();
    } else if ((from === S.STOP_COPY || from === S.PRE_COPY) && !(to === S.PRE_COPY_P2P)) {
      this.#saver = undefined;
    }
    this.device.setRunning(isRunningState(to));
  }

  #enterError(): void {
    this.#state = MigState.ERROR;
    this.#saver = undefined;
    this.#loader = undefined;
    this.device.setRunning(false);
    // A load that failed leaves memory partly the stream's until a reset (as close() says).
    this.device.setMigrationLoad(this.#loaded > 0 ? migStateName(MigState.ERROR) : undefined);
  }

  /**
   * MIG_DATA_READ of up to `size` bytes (parts to send as they are).
   * @throws VfioError EINVAL outside PRE_COPY and STOP_COPY.
   */
  read(size: number): Uint8Array[] {
    const s = this.#state;
    const saver = this.#saver;
    if ((s !== MigState.PRE_COPY && s !== MigState.STOP_COPY) || !saver)
      throw new VfioError(
        'EINVAL',
        `MIG_DATA_READ in state ${migStateName(s)} (PRE_COPY or STOP_COPY only)`,
      );
    return saver.read(size);
  }

  /**
   * MIG_DATA_WRITE of `data` (`stable`: untouched until the next write returns, StreamLoader).
   * @throws VfioError EINVAL outside RESUMING, or for a damaged stream.
   */
  write(data: Uint8Array, stable = false): void {
    const loader = this.#loader;
    if (this.#state !== MigState.RESUMING || !loader)
      throw new VfioError(
        'EINVAL',
        `MIG_DATA_WRITE in state ${migStateName(this.#state)} (RESUMING only)`,
      );
    loader.write(data, stable);
    this.#loaded += data.length;
  }

  /** MIG_DATA_SIZE: bytes a STOP_COPY would still send (an estimate when none runs yet). */
  stopCopyLength(): bigint {
    return (this.#saver ?? new StreamSaver(this.device)).pendingEstimate();
  }

  /** DEVICE_RESET: back to RUNNING from any state (ERROR included), sessions and log dropped. */
  reset(): void {
    this.#loaded = 0;
    this.#saver = undefined;
    this.#loader = undefined;
    this.dmaLog.stop();
    this.#state = MigState.RUNNING;
    this.device.setRunning(true);
    this.device.setMigrationLoad(undefined);
  }

  /**
   * The client left: as a reset (see the module header). Returns the state and the stream
   * bytes loaded when a loading session was cut mid-stream (RESUMING with data written, or
   * ERROR after a failed load): the device's memory is then partly the stream's, and stays so.
   */
  close(): { readonly state: MigState; readonly bytes: number } | undefined {
    const midStream = this.#state === MigState.RESUMING || this.#state === MigState.ERROR;
    const cut =
      midStream && this.#loaded > 0 ? { state: this.#state, bytes: this.#loaded } : undefined;
    this.reset();
    return cut;
  }
}
