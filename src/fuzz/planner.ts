/**
 * One lane's connections, planned from the lane's own random stream: which of the lane's
 * devices, how many frames (a VERSION first, usually a good one), what each frame is, how the
 * connection ends, and sometimes a second client that tries the device meanwhile. Lanes own
 * disjoint devices, so no lane's plan depends on another's timing.
 */
import { guardFrame } from './canary.ts';
import {
  type Draft,
  type DraftContext,
  draftCommand,
  draftGoodVersion,
  draftVersion,
} from './commands.ts';
import { type KnownFault, matchesKnownFault } from './known-faults.ts';
import { type BrokenFraming, brokenFrame, type FramingLimits, frameFor } from './mutate.ts';
import type { ConnectionEnd, FuzzDevice, PlannedConnection, PlannedFrame } from './plan.ts';
import { Random } from './random.ts';

/**
 * What a lane plans from: seed, devices, framing limits, max_data_xfer_size and the faults to
 * avoid.
 */
export interface PlannerOptions {
  readonly seed: number;
  readonly devices: readonly FuzzDevice[];
  readonly limits: FramingLimits;
  readonly maxDataXferSize: number;
  /** Faults known and fixed elsewhere that the plan steers around (none by default). */
  readonly avoid: ReadonlySet<KnownFault>;
}

const MAX_DRAFT_TRIES = 20;

/**
 * Plans the connections of one lane from its own random stream (the same seed gives the same
 * frames).
 */
export class LanePlanner {
  readonly #rng: Random;
  readonly #options: PlannerOptions;
  readonly #devices: readonly number[];

  /** The planner of lane `lane`, aiming at the devices of index `devices`. */
  constructor(options: PlannerOptions, lane: number, devices: readonly number[]) {
    if (devices.length === 0) throw new RangeError(`lane ${lane} has no device`);
    this.#options = options;
    this.#rng = new Random(options.seed, lane);
    this.#devices = devices;
  }

  /** The next connection, with at most `budget` (≥ 1) frames, intruder included. */
  next(budget: number): PlannedConnection {
    const rng = this.#rng;
    const device = rng.pick(this.#devices);
    const dev = this.#options.devices[device]!;
    const ctx: DraftContext = {
      device: dev,
      maxDataXferSize: this.#options.maxDataXferSize,
      dmaMapped: [],
    };
    const total = Math.max(
      1,
      Math.min(
        budget,
        rng.weighted<number>([
          [30, rng.int(1, 10)],
          [50, rng.int(11, 100)],
          [20, rng.int(101, 400)],
        ]),
      ),
    );
    const end = rng.weighted<ConnectionEnd>([
      [55, 'close'],
      [15, 'close-now'],
      [12, 'fatal'],
      [10, 'cut'],
      [8, 'misframed'],
    ]);
    const intruderFrames = end === 'close' && total >= 3 && rng.chance(0.08) ? rng.int(1, 2) : 0;
    const count = total - intruderFrames;
    const frames: PlannedFrame[] = [];
    let msgId = rng.below(0x10000);
    const nextId = () => {
      msgId = (msgId + 1) & 0xffff;
      return msgId;
    };
    for (let i = 0; i < count; i++) {
      const last = i === count - 1;
      if (i === 0 && !last) {
        const id = nextId();
        const first = () =>
          rng.weighted<() => Draft>([
            [88, () => draftGoodVersion()],
            [7, () => draftVersion(rng, ctx)],
            [5, () => draftCommand(rng, ctx)],
          ])();
        frames.push(this.#avoiding(() => frameFor(rng, first(), id, this.#options.limits)));
      } else if (last && (end === 'fatal' || end === 'misframed')) {
        const id = nextId();
        frames.push(this.#avoiding(() => this.#broken(ctx, end, id)));
      } else {
        const id = nextId();
        frames.push(
          this.#avoiding(() => frameFor(rng, draftCommand(rng, ctx), id, this.#options.limits)),
        );
      }
    }
    const intruder: PlannedFrame[] = [];
    for (let i = 0; i < intruderFrames; i++) {
      const id = nextId();
      intruder.push(
        this.#avoiding(() =>
          frameFor(
            rng,
            i === 0 ? draftGoodVersion() : draftCommand(rng, ctx),
            id,
            this.#options.limits,
          ),
        ),
      );
    }
    let guarded = 0;
    if (dev.gpu) for (const f of [...frames, ...intruder]) guarded += guardFrame(f.bytes);
    const lastLength = frames[frames.length - 1]!.bytes.length;
    const cutAt =
      end === 'cut' && lastLength > 1
        ? rng.chance(0.3)
          ? rng.int(1, Math.min(15, lastLength - 1))
          : rng.int(1, lastLength - 1)
        : lastLength;
    return { device, frames, end, cutAt, intruder, guarded };
  }

  /** A frame from `make` that steers around the faults to avoid. */
  #avoiding(make: () => PlannedFrame): PlannedFrame {
    for (let i = 0; ; i++) {
      const f = make();
      if (i >= MAX_DRAFT_TRIES || !matchesKnownFault(f, this.#options.avoid)) return f;
    }
  }

  #broken(ctx: DraftContext, end: 'fatal' | 'misframed', msgId: number): PlannedFrame {
    const rng = this.#rng;
    const how = rng.pick<BrokenFraming>(
      end === 'fatal'
        ? ['size-under-16', 'size-over-limit', 'bad-type', 'too-many-fds']
        : ['size-past-body', 'size-short-of-body'],
    );
    return brokenFrame(rng, draftCommand(rng, ctx), msgId, how, this.#options.limits);
  }
}
